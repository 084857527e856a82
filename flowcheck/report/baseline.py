"""Baselines: what every flow did in one run, to diff against another run (before/after a Cilium upgrade).

A baseline keeps, per flow key (``CheckedFlow.key``: source, destination, protocol, port, L7
request), the verdict the run *showed* and its *basis*:

- ``observed`` -- the flow was probed; the verdict is what the cluster did (including ``refused``
  and ``error``, which are outcomes worth noticing when they appear or disappear);
- ``model`` -- the flow was never probed (an offline run, or a destination the live cluster cannot
  probe); the verdict is the model's prediction. Such flows are still recorded and compared -- on
  their model verdicts -- so a baseline of an offline run shows which paths a policy change moved.

Comparison matches flows by key and reports three kinds of difference, all of which make
``flowcheck baseline compare`` exit 1:

- ``changed`` -- the verdict differs, or the basis differs (probed in one run, only modelled in the
  other): a before/after comparison in which one side did not probe cannot vouch that nothing
  changed;
- ``new`` -- the flow is only in the new run;
- ``removed`` -- the flow is only in the old run (lost coverage is a difference too).

If one run checked the same key several times (two tests probing the same path), the entry keeps
every distinct verdict (``verdicts`` is a sorted list, usually of one); observed verdicts take
precedence over model ones. Run metadata (Cilium version, node image, ...) is carried along and its
differences are printed, but they are context, not changes.

File format (``kind: flowcheck-baseline``, ``format: 1``)::

    {"kind": "flowcheck-baseline", "format": 1, "metadata": {"cilium_version": "1.16.5"},
     "flows": [{"from": "default/web", "to": "default/my-api", "protocol": "TCP", "port": 8080,
                "request": "GET /", "verdicts": ["allowed"], "basis": "observed"}]}
"""

from __future__ import annotations

import enum
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flowcheck.report.files import load_json_file, matrix_location, write_text_atomic
from flowcheck.report.records import (
    CheckedFlow,
    FieldReader,
    MatrixReport,
    ReportFileError,
    column_label,
    report_from_json,
)
from flowcheck.report.textutil import printable
from flowcheck.verdict import Verdict

BASELINE_KIND = "flowcheck-baseline"
BASELINE_FORMAT_VERSION = 1

FlowKey = tuple[str, str, str, int | None, str]


class Basis(enum.StrEnum):
    """Where a baseline verdict comes from."""

    OBSERVED = "observed"
    MODEL = "model"


@dataclass(frozen=True, slots=True)
class BaselineEntry:
    """One flow of a baseline: its identity, verdict(s) and basis."""

    source: str
    destination: str
    protocol: str
    port: int | None
    request: str | None
    verdicts: tuple[Verdict, ...]
    basis: Basis

    @property
    def key(self) -> FlowKey:
        return (self.source, self.destination, self.protocol, self.port, self.request or "")

    @property
    def path(self) -> str:
        """``default/web -> default/my-api:8080/TCP GET /`` -- the same label the truth table uses."""
        return f"{self.source} -> {column_label(self.destination, self.protocol, self.port, self.request)}"

    @property
    def not_a_verdict(self) -> bool:
        """The probe showed no policy verdict (``error``/``refused``): never a pass, even if unchanged."""
        return any(v in (Verdict.ERROR, Verdict.REFUSED) for v in self.verdicts)

    def describe(self) -> str:
        """``dropped``, ``allowed+dropped`` (inconsistent within the run), ``+ (model only, not probed)``."""
        text = "+".join(v.value for v in self.verdicts)
        return text if self.basis is Basis.OBSERVED else f"{text} (model only, not probed)"

    def to_json(self) -> dict[str, Any]:
        return {
            "from": self.source,
            "to": self.destination,
            "protocol": self.protocol,
            "port": self.port,
            "request": self.request,
            "verdicts": [v.value for v in self.verdicts],
            "basis": self.basis.value,
        }


@dataclass(frozen=True, slots=True)
class Baseline:
    """Every flow of a run with the verdict it showed, plus the run's metadata."""

    entries: tuple[BaselineEntry, ...]
    metadata: Mapping[str, str] = field(default_factory=dict)

    def by_key(self) -> dict[FlowKey, BaselineEntry]:
        return {e.key: e for e in self.entries}

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": BASELINE_KIND,
            "format": BASELINE_FORMAT_VERSION,
            "metadata": dict(self.metadata),
            "flows": [e.to_json() for e in self.entries],
        }


def _sort_key(key: FlowKey) -> tuple[str, str, str, int, str]:
    source, destination, protocol, port, request = key
    return (source, destination, protocol, -1 if port is None else port, request)


def _verdict_order(verdicts: Iterable[Verdict]) -> tuple[Verdict, ...]:
    order = list(Verdict)
    return tuple(sorted(set(verdicts), key=order.index))


def record_baseline(report: MatrixReport, metadata: Mapping[str, str] | None = None) -> Baseline:
    """The baseline of a run: per flow key, the observed verdict(s), else the model's. ``metadata`` overrides."""
    groups: dict[FlowKey, list[CheckedFlow]] = {}
    for flow in report.flows:
        groups.setdefault(flow.key, []).append(flow)
    entries = []
    for key in sorted(groups, key=_sort_key):
        flows = groups[key]
        observed = [f.observed for f in flows if f.observed is not None]
        first = flows[0]
        entries.append(BaselineEntry(
            source=first.source, destination=first.destination, protocol=first.protocol, port=first.port,
            request=first.request or None,
            verdicts=_verdict_order(observed) if observed else _verdict_order(f.model for f in flows),
            basis=Basis.OBSERVED if observed else Basis.MODEL,
        ))
    return Baseline(tuple(entries), {**report.metadata, **(metadata or {})})


def baseline_from_json(data: Any, *, path: str = "<memory>") -> Baseline:
    """Parse a baseline document; errors name the file and the field (``flows[2].verdicts``)."""
    if not isinstance(data, dict):
        raise ReportFileError(path, "", f"expected a JSON object, got {type(data).__name__}")
    if data.get("kind") != BASELINE_KIND:
        raise ReportFileError(path, "kind", f"expected {BASELINE_KIND!r}, got {data.get('kind')!r}")
    if data.get("format") != BASELINE_FORMAT_VERSION:
        raise ReportFileError(path, "format", f"expected {BASELINE_FORMAT_VERSION}, got {data.get('format')!r}")
    metadata = data.get("metadata", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise ReportFileError(path, "metadata", "expected an object of strings")
    flows = data.get("flows")
    if not isinstance(flows, list):
        raise ReportFileError(path, "flows", "expected a list of flow entries")
    entries: list[BaselineEntry] = []
    seen: dict[FlowKey, int] = {}
    for index, item in enumerate(flows):
        entry = _entry_from_json(item, path, f"flows[{index}]")
        if entry.key in seen:
            raise ReportFileError(path, f"flows[{index}]",
                                  f"duplicate flow {entry.path} (also flows[{seen[entry.key]}])")
        seen[entry.key] = index
        entries.append(entry)
    return Baseline(tuple(entries), {str(k): v for k, v in metadata.items()})


def _entry_from_json(data: Any, path: str, where: str) -> BaselineEntry:
    # Where a check reads as matrix.json's does, the same reader words the error the same way; ``port``,
    # ``request``, ``verdicts`` and ``basis`` have messages of their own.
    reader = FieldReader(path, where)
    item = reader.mapping(data, "")
    port = item.get("port")
    if port is not None and (not isinstance(port, int) or isinstance(port, bool)):
        raise ReportFileError(path, f"{where}.port", f"expected an integer or null, got {port!r}")
    request = item.get("request")
    if request is not None and not isinstance(request, str):
        raise ReportFileError(path, f"{where}.request", f"expected a string or null, got {request!r}")
    raw_verdicts = item.get("verdicts")
    if not isinstance(raw_verdicts, list) or not raw_verdicts:
        raise ReportFileError(path, f"{where}.verdicts", f"expected a non-empty list of verdicts, got {raw_verdicts!r}")
    verdicts = []
    for i, raw in enumerate(raw_verdicts):
        try:
            if not isinstance(raw, str):
                raise ValueError(f"expected a verdict name, got {raw!r}")
            verdicts.append(Verdict.parse(raw))
        except ValueError as exc:
            raise ReportFileError(path, f"{where}.verdicts[{i}]", str(exc)) from None
    basis_text = item.get("basis")
    if basis_text not in {b.value for b in Basis}:
        raise ReportFileError(path, f"{where}.basis", f"expected 'observed' or 'model', got {basis_text!r}")
    basis = Basis(basis_text)
    return BaselineEntry(reader.string(item, "from"), reader.string(item, "to"), reader.string(item, "protocol"),
                         port, request or None, _verdict_order(verdicts), basis)


def read_baseline(path: str | os.PathLike[str]) -> Baseline:
    """Read a baseline file -- or a run's ``matrix.json`` / report directory, or ``flowcheck plan`` JSON
    (either version), recorded on the fly.

    Accepting a run or a plan directly lets ``compare OLD NEW`` take them as they are, without a
    separate ``record`` step. A JSON object with ``"kind": "flowcheck-baseline"`` is a baseline;
    anything else is read as a report (``records.report_from_json``), which names what it expected.
    """
    location = matrix_location(path)
    name = os.fspath(location)
    data = load_json_file(location)
    if isinstance(data, dict) and data.get("kind") == BASELINE_KIND:
        return baseline_from_json(data, path=name)
    return record_baseline(report_from_json(data, path=name))


def dump_baseline(baseline: Baseline) -> str:
    """The baseline as JSON text with one flow per line, so a baseline kept in git diffs flow by flow."""
    document = baseline.to_json()
    flows = document.pop("flows")
    head = json.dumps(document, indent=2, ensure_ascii=False)
    lines = [head[: head.rindex("}")].rstrip() + ',\n  "flows": [']
    lines.append(",\n".join(f"    {json.dumps(flow, ensure_ascii=False)}" for flow in flows))
    lines.append("  ]\n}\n")
    return "\n".join(line for line in lines if line)


def write_baseline(baseline: Baseline, path: str | os.PathLike[str]) -> Path:
    target = Path(path)
    write_text_atomic(target, dump_baseline(baseline))
    return target


class ChangeKind(enum.StrEnum):
    CHANGED = "changed"
    NEW = "new"
    REMOVED = "removed"


@dataclass(frozen=True, slots=True)
class FlowChange:
    """One difference between two baselines; ``before`` is None for new flows, ``after`` for removed ones."""

    kind: ChangeKind
    before: BaselineEntry | None
    after: BaselineEntry | None

    @property
    def entry(self) -> BaselineEntry:
        """The entry that names the flow (the new one when there is one)."""
        found = self.after if self.after is not None else self.before
        if found is None:
            raise ValueError("a FlowChange needs a before or an after entry")
        return found

    def describe(self) -> str:
        """``tenant/client -> default/my-api:8080/TCP: dropped -> allowed``."""
        if self.before is not None and self.after is not None:
            return f"{self.entry.path}: {self.before.describe()} -> {self.after.describe()}"
        return f"{self.entry.path}: {self.entry.describe()}"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "before": None if self.before is None else self.before.to_json(),
            "after": None if self.after is None else self.after.to_json(),
        }


@dataclass(frozen=True, slots=True)
class MetadataChange:
    key: str
    before: str | None
    after: str | None


@dataclass(frozen=True, slots=True)
class BaselineDiff:
    """The differences between an old and a new baseline, in flow order."""

    changes: tuple[FlowChange, ...]
    compared: int
    """Flows present in both (whether or not they changed)."""
    metadata_changes: tuple[MetadataChange, ...] = ()
    unverified: tuple[BaselineEntry, ...] = ()
    """Flows of the new baseline whose probe showed no verdict (error/refused): an unchanged error is
    still not a pass (docs/contracts.md, "Verdicts"), so they fail a comparison too."""

    @property
    def changed(self) -> tuple[FlowChange, ...]:
        return tuple(c for c in self.changes if c.kind is ChangeKind.CHANGED)

    @property
    def new(self) -> tuple[FlowChange, ...]:
        return tuple(c for c in self.changes if c.kind is ChangeKind.NEW)

    @property
    def removed(self) -> tuple[FlowChange, ...]:
        return tuple(c for c in self.changes if c.kind is ChangeKind.REMOVED)

    @property
    def has_changes(self) -> bool:
        """Any difference at all (changed, new or removed)."""
        return bool(self.changes)

    @property
    def failed(self) -> bool:
        """What makes ``compare`` exit 1: a difference, or a flow the new run could not observe."""
        return self.has_changes or bool(self.unverified)

    def to_json(self) -> dict[str, Any]:
        return {
            "compared": self.compared,
            "changed": len(self.changed),
            "new": len(self.new),
            "removed": len(self.removed),
            "changes": [c.to_json() for c in self.changes],
            "metadata_changes": [{"key": m.key, "before": m.before, "after": m.after}
                                 for m in self.metadata_changes],
            "not_a_verdict": [e.to_json() for e in self.unverified],
        }


def compare_baselines(old: Baseline, new: Baseline) -> BaselineDiff:
    """Every flow whose verdict (or basis) changed, every new and every removed flow, sorted by flow."""
    before = old.by_key()
    after = new.by_key()
    changes: list[FlowChange] = []
    for key in sorted(before.keys() | after.keys(), key=_sort_key):
        was, now = before.get(key), after.get(key)
        if was is None:
            changes.append(FlowChange(ChangeKind.NEW, None, now))
        elif now is None:
            changes.append(FlowChange(ChangeKind.REMOVED, was, None))
        elif (was.verdicts, was.basis) != (now.verdicts, now.basis):
            changes.append(FlowChange(ChangeKind.CHANGED, was, now))
    metadata_changes = tuple(
        MetadataChange(k, old.metadata.get(k), new.metadata.get(k))
        for k in sorted(old.metadata.keys() | new.metadata.keys())
        if old.metadata.get(k) != new.metadata.get(k)
    )
    unverified = tuple(after[key] for key in sorted(after, key=_sort_key) if after[key].not_a_verdict)
    return BaselineDiff(tuple(changes), len(before.keys() & after.keys()), metadata_changes, unverified)


def render_diff(diff: BaselineDiff, *, old_label: str = "old", new_label: str = "new") -> str:
    """The comparison as text: one labelled line per difference, then a summary (ends with a newline)."""
    lines = [f"baseline compare: {printable(old_label)} -> {printable(new_label)}"]
    for meta in diff.metadata_changes:
        lines.append(f"  run {printable(meta.key)}: {printable(meta.before or '(unset)')} -> "
                     f"{printable(meta.after or '(unset)')}")
    width = max(len(kind.value) for kind in ChangeKind)
    for change in diff.changes:
        lines.append(f"{change.kind.value.upper().ljust(width)}  {printable(change.describe())}")
    for entry in diff.unverified:
        lines.append(f"NOT A VERDICT  {printable(entry.path)}: {entry.describe()} (the probe failed; never a pass)")
    if diff.has_changes:
        total = len(diff.changes)
        lines.append(f"{total} difference{'s' if total != 1 else ''} ({len(diff.changed)} changed, "
                     f"{len(diff.new)} new, {len(diff.removed)} removed); {diff.compared} flows in both runs")
    else:
        lines.append(f"no changes: {diff.compared} flow{'s' if diff.compared != 1 else ''} compared, every "
                     "verdict the same")
    return "\n".join(lines) + "\n"
