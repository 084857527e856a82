"""The truth table every format draws: rows = sources, columns = destination:port, one cell per pair.

Building the grid once keeps the terminal, Markdown and HTML renderings identical in content and
lets each renderer be only about drawing; the legend's entries (``legend_entries``) are decided here
for the same reason. Rows and columns are sorted (sources by name, columns by
destination, port, protocol and request) so a report merged from pytest-xdist workers -- whose
order varies from run to run -- renders the same every time. Mismatches are numbered in table
order (row by row, left to right), which is the order of the list under the table, so ``!3`` in a
cell is entry 3 below.

A pair checked more than once (the same path in two tests) keeps all its flows; the cell shows each
distinct outcome and every mismatch number, and is coloured by its first mismatching flow (else
its first flow), so a disagreement is never hidden behind an agreeing duplicate.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from flowcheck.report.marks import (
    EMPTY_CELL,
    MARKS,
    MISMATCH_MARK,
    PREDICTED_MARK,
    Shown,
    legend_meaning,
    shown,
    shown_text,
)
from flowcheck.report.records import CheckedFlow, port_label
from flowcheck.verdict import Verdict


@dataclass(frozen=True, slots=True)
class Mismatch:
    """A mismatching flow and its number in the list under the table."""

    number: int
    flow: CheckedFlow


@dataclass(frozen=True, slots=True)
class Cell:
    """The flows of one source/column pair, with their mismatch numbers."""

    flows: tuple[CheckedFlow, ...]
    mismatches: tuple[Mismatch, ...]
    predicted: bool
    """True when nothing in this cell was probed although other cells of the run were."""

    @property
    def outcomes(self) -> tuple[Verdict, ...]:
        """Distinct outcomes (observed when probed, else the model's), in flow order."""
        return tuple(dict.fromkeys(f.outcome for f in self.flows))

    @property
    def shown(self) -> tuple[Shown, ...]:
        """Distinct kinds the cell shows (``self``, ``l7-filtered`` or an outcome), in flow order."""
        return tuple(dict.fromkeys(shown(f) for f in self.flows))

    @property
    def tone(self) -> Shown:
        """What colours the cell: the first mismatching flow's kind, else the first flow's."""
        return shown(self.mismatches[0].flow if self.mismatches else self.flows[0])

    @property
    def tone_verdict(self) -> Verdict:
        """The verdict behind the cell's colour: the first mismatching flow's outcome, else the first flow's."""
        return self.mismatches[0].flow.outcome if self.mismatches else self.flows[0].outcome

    @property
    def mismatch(self) -> bool:
        return bool(self.mismatches)

    @property
    def label(self) -> str:
        """What the cell says without mismatch references: ``~dropped``, ``allowed/dropped``, ``L7: GET``, ``self``."""
        return (PREDICTED_MARK if self.predicted else "") + "/".join(dict.fromkeys(shown_text(f) for f in self.flows))

    def text(self) -> str:
        """The cell as plain text: ``~dropped``, ``allowed !2``, ``allowed/dropped !1 !3``."""
        refs = " ".join(f"{MISMATCH_MARK}{m.number}" for m in self.mismatches)
        return f"{self.label} {refs}" if refs else self.label


@dataclass(frozen=True, slots=True)
class ColumnParts:
    """A column label split where a narrow header may wrap: destination, ``:port/protocol``, request."""

    destination: str
    where: str
    request: str


@dataclass(frozen=True, slots=True)
class TruthTable:
    sources: tuple[str, ...]
    columns: tuple[str, ...]
    column_parts: Mapping[str, ColumnParts]
    cells: Mapping[tuple[str, str], Cell]
    mismatches: tuple[Mismatch, ...]
    flows: tuple[CheckedFlow, ...]
    """Every flow, in table order."""
    probed: bool
    """At least one flow was probed on a live cluster (else every cell is the model's prediction)."""

    def cell(self, source: str, column: str) -> Cell | None:
        return self.cells.get((source, column))

    def cell_text(self, source: str, column: str) -> str:
        found = self.cell(source, column)
        return EMPTY_CELL if found is None else found.text()

    @property
    def comparable(self) -> bool:
        """Some flow states an intent or was probed, so a mismatch is possible (False for a model plan)."""
        return any(f.expected is not None or f.observed is not None for f in self.flows)

    @property
    def legend_verdicts(self) -> tuple[Verdict, ...]:
        """The verdicts a legend explains: the model's four, plus ``refused``/``error`` when anything was probed."""
        return tuple(v for v in Verdict if self.probed or v not in (Verdict.REFUSED, Verdict.ERROR))

    @property
    def legend_kinds(self) -> tuple[Shown, ...]:
        """What a legend explains: the verdicts, ``l7-filtered`` always (a plan can show it), ``self`` when shown."""
        verdicts = {Shown(v.value) for v in self.legend_verdicts}
        has_self = any(Shown.SELF in c.shown for c in self.cells.values())
        return tuple(k for k in Shown if k in verdicts or k is Shown.L7_FILTERED or (k is Shown.SELF and has_self))

    @property
    def has_predicted_cells(self) -> bool:
        return any(c.predicted for c in self.cells.values())


class LegendKind(enum.Enum):
    """What a legend entry explains; each format draws the kinds differently (emoji, badge, bold)."""

    VERDICT = "verdict"
    MISMATCH = "mismatch"
    PREDICTED = "predicted"
    EMPTY = "empty"


@dataclass(frozen=True, slots=True)
class LegendEntry:
    """One entry of a table's legend: the mark as cells show it, and what it means."""

    kind: LegendKind
    mark: str
    meaning: str
    shown: Shown | None = None
    """What a ``VERDICT`` entry explains: a verdict, ``l7-filtered`` or ``self`` (None for the other kinds)."""


def legend_entries(table: TruthTable) -> list[LegendEntry]:
    """What a legend of ``table`` explains, in order: its verdicts, then ``!N`` when a mismatch is
    possible, ``~verdict`` when some cells are only predicted, and the empty cell."""
    entries = [LegendEntry(LegendKind.VERDICT, MARKS[k].word,
                           legend_meaning(k, probed=table.probed), k)
               for k in table.legend_kinds]
    if table.comparable:
        entries.append(LegendEntry(LegendKind.MISMATCH, f"{MISMATCH_MARK}N", "mismatch N, listed below"))
    if table.has_predicted_cells:
        entries.append(LegendEntry(LegendKind.PREDICTED, f"{PREDICTED_MARK}verdict",
                                   "predicted by the model, not probed"))
    entries.append(LegendEntry(LegendKind.EMPTY, EMPTY_CELL, "not checked"))
    return entries


def _column_sort_key(flow: CheckedFlow) -> tuple[str, int, str, str]:
    return (flow.destination, -1 if flow.port is None else flow.port, flow.protocol, flow.request or "")


def _column_parts(flow: CheckedFlow) -> ColumnParts:
    """Split ``flow.column`` so that ``destination + where + (" " + request)`` is the label again."""
    return ColumnParts(flow.destination, port_label(flow.protocol, flow.port), flow.request or "")


def build_truth_table(flows: Iterable[CheckedFlow]) -> TruthTable:
    """Arrange ``flows`` into the grid (sorted rows and columns, numbered mismatches)."""
    all_flows = list(flows)
    probed = any(f.observed is not None for f in all_flows)
    column_keys: dict[str, tuple[str, int, str, str]] = {}
    column_parts: dict[str, ColumnParts] = {}
    grouped: dict[tuple[str, str], list[CheckedFlow]] = {}
    for flow in all_flows:
        column_keys.setdefault(flow.column, _column_sort_key(flow))
        column_parts.setdefault(flow.column, _column_parts(flow))
        grouped.setdefault((flow.source, flow.column), []).append(flow)
    sources = tuple(sorted({f.source for f in all_flows}))
    columns = tuple(sorted(column_keys, key=lambda c: (column_keys[c], c)))

    cells: dict[tuple[str, str], Cell] = {}
    mismatches: list[Mismatch] = []
    ordered: list[CheckedFlow] = []
    for source in sources:
        for column in columns:
            cell_flows = grouped.get((source, column))
            if not cell_flows:
                continue
            cell_mismatches = []
            for flow in cell_flows:
                ordered.append(flow)
                if flow.mismatch:
                    numbered = Mismatch(len(mismatches) + 1, flow)
                    mismatches.append(numbered)
                    cell_mismatches.append(numbered)
            predicted = probed and all(f.observed is None for f in cell_flows)
            cells[(source, column)] = Cell(tuple(cell_flows), tuple(cell_mismatches), predicted)
    return TruthTable(sources, columns, column_parts, cells, tuple(mismatches), tuple(ordered), probed)


@dataclass(frozen=True, slots=True)
class Summary:
    """Counts for the line above every table, per path: ``by_shown`` and ``disagreeing`` add up to ``flows``.

    A path can have several records -- probed same-node and cross-node, or expected by two tests -- so
    ``records`` may exceed ``flows``; a path whose records show different verdicts is counted once, in
    ``disagreeing`` (the notes and the mismatch list say which and why).
    """

    flows: int
    probed: int
    by_shown: Mapping[Shown, int]
    mismatches: int
    intent_mismatches: int
    live_mismatches: int
    comparable: bool
    records: int = 0
    disagreeing: int = 0
    unprobed: int = 0  # paths meant to be probed where no probe ran (the agent could not run, policy not realized)

    @property
    def by_outcome(self) -> Mapping[Verdict, int]:
        """Counts by outcome, self-flows left out (and L7-filtered paths counted as allowed)."""
        out = {v: self.by_shown.get(Shown(v.value), 0) for v in Verdict}
        out[Verdict.ALLOWED] += self.by_shown.get(Shown.L7_FILTERED, 0)
        return out

    def text(self) -> str:
        """``54 flows (none probed): 20 allowed, 6 allowed through the L7 proxy, 22 dropped; 6 self-flows (a
        workload to its own IP) not counted; 3 mismatches (1 intent vs model, 2 live)``; the counts add up to
        the flows, and the two mismatch counts can overlap (a path whose intent, model and observation all differ)."""
        if not self.flows:
            return "no flows checked"
        probed = f" ({self.probed} probed)" if self.probed else " (none probed)"
        if self.unprobed:
            probed = f"{probed[:-1]}, {self.unprobed} could not be probed)"
        counts = ", ".join(f"{n} {_COUNTED[k]}" for k, n in self.by_shown.items() if n and k is not Shown.SELF)
        own = self.by_shown.get(Shown.SELF, 0)
        if own:
            plural = "s" if own != 1 else ""
            own_text = f"{own} self-flow{plural} (a workload to its own IP) not counted"
            counts = f"{counts}; {own_text}" if counts else own_text
        if self.disagreeing:
            split = f"{self.disagreeing} whose records disagree"
            counts = f"{counts}, {split}" if counts else split
        records = f" in {self.records} records" if self.records > self.flows else ""
        head = f"{self.flows} flow{'s' if self.flows != 1 else ''}{records}{probed}: {counts}"
        if not self.comparable:
            return head
        if self.mismatches:
            both = "; a path can be both" if self.intent_mismatches + self.live_mismatches > self.mismatches else ""
            tail = (f"{self.mismatches} mismatch{'es' if self.mismatches != 1 else ''} "
                    f"({self.intent_mismatches} intent vs model, {self.live_mismatches} live{both})")
        else:
            tail = "no mismatches"
        return f"{head}; {tail}"


_COUNTED = {k: k.value for k in Shown} | {Shown.L7_FILTERED: "allowed through the L7 proxy"}


def summarize(table: TruthTable) -> Summary:
    by_path: dict[tuple[str, str, str, int | None, str], set[Shown]] = {}
    probed_paths: set[tuple[str, str, str, int | None, str]] = set()
    unprobed_paths: set[tuple[str, str, str, int | None, str]] = set()
    for flow in table.flows:
        by_path.setdefault(flow.key, set()).add(shown(flow))
        if flow.observed is Verdict.ERROR and not flow.attempts:
            unprobed_paths.add(flow.key)  # an error with no attempt: no probe ran (an exec or realization failure)
        elif flow.observed is not None:
            probed_paths.add(flow.key)
    by_shown = dict.fromkeys(Shown, 0)
    for kinds in by_path.values():
        if len(kinds) == 1:
            by_shown[next(iter(kinds))] += 1
    return Summary(
        flows=len(by_path),
        probed=len(probed_paths),
        by_shown=by_shown,
        mismatches=len(table.mismatches),
        intent_mismatches=sum(1 for m in table.mismatches if m.flow.intent_mismatch),
        live_mismatches=sum(1 for m in table.mismatches if m.flow.live_mismatch),
        comparable=table.comparable,
        records=len(table.flows),
        disagreeing=sum(1 for kinds in by_path.values() if len(kinds) > 1),
        unprobed=len(unprobed_paths - probed_paths),
    )
