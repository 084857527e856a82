"""The truth table as plain text for terminals and CI logs.

CI log viewers show a fixed-width font, strip or mangle tabs, and may not understand colour, so
the table is boxed with ASCII rules, padded with spaces by *display width* (``textutil``), and its
marks are words (``allowed``, ``dropped !1``), never colour alone. Colour (ANSI SGR) is added only
when the caller asks (``color=True``; the caller decides from ``isatty()`` and ``NO_COLOR``), after
padding, so it cannot disturb alignment.

Wide matrices stay readable: when the table with full column headers is wider than ``max_width``,
columns are numbered (``[1]``, ``[2]``, ...) with a key printed above the table; when even that is
too wide, the columns are split into blocks, each repeating the source column. Names are never
truncated -- a report that hides part of a path is not evidence.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from flowcheck.report.marks import (
    MARKS,
    MISMATCH_MARK,
    Shown,
    cell_basis,
    expected_text,
    mismatch_kinds,
    observed_text,
)
from flowcheck.report.notices import SHOWN_AS_NOTICE, run_notices
from flowcheck.report.records import CheckedFlow, MatrixReport
from flowcheck.report.textutil import display_width, pad, printable
from flowcheck.report.truth_table import Mismatch, TruthTable, build_truth_table, legend_entries, summarize

DEFAULT_MAX_WIDTH = 120
"""Columns a table may take before it switches to numbered headers (the project's line length)."""

_SOURCE_HEADER = "source \\ destination"
_SOURCE_HEADER_NUMBERED = "source"
_RESET = "\x1b[0m"


def render_table(report: MatrixReport, *, color: bool = False, max_width: int = DEFAULT_MAX_WIDTH,
                 title: str = "flowcheck truth table") -> str:
    """The run's truth table, legend and mismatch list as text (ends with a newline)."""
    table = build_truth_table(report.flows)
    lines = [f"{printable(title)}: {summarize(table).text()}"]
    lines.extend(f"note: {printable(notice)}" for notice in run_notices(report))
    if report.metadata:
        lines.append("run: " + ", ".join(f"{printable(k)}={printable(v)}" for k, v in report.metadata.items()
                                         if k not in SHOWN_AS_NOTICE))
    if not table.flows:
        return "\n".join(lines) + "\n"
    lines.append("")
    lines.extend(_table_lines(table, color=color, max_width=max_width))
    lines.append("")
    lines.extend(_legend_lines(table))
    if table.mismatches:
        lines.append("")
        lines.extend(mismatch_lines(table.mismatches, color=color))
    return "\n".join(lines) + "\n"


def render_plan_table(flows: Iterable[CheckedFlow], *, metadata: Mapping[str, str] | None = None,
                      color: bool = False, max_width: int = DEFAULT_MAX_WIDTH) -> str:
    """The model's plan (flows with model verdicts only) as a text truth table."""
    report = MatrixReport(tuple(flows), dict(metadata or {}))
    return render_table(report, color=color, max_width=max_width, title="flowcheck plan (model verdicts)")


def _table_lines(table: TruthTable, *, color: bool, max_width: int) -> list[str]:
    sources = [printable(s) for s in table.sources]
    columns = [printable(c) for c in table.columns]
    texts = [[printable(table.cell_text(s, c)) for c in table.columns] for s in table.sources]

    full = _column_widths(_SOURCE_HEADER, sources, columns, texts)
    if _boxed_width(full) <= max_width:
        return _boxed(table, _SOURCE_HEADER, columns, list(range(len(columns))), full, texts, color)

    numbered = [f"[{i + 1}]" for i in range(len(columns))]
    widths = _column_widths(_SOURCE_HEADER_NUMBERED, sources, numbered, texts)
    lines = ["columns:"]
    key_width = display_width(numbered[-1])
    lines.extend(f"  {pad(n, key_width)} {c}" for n, c in zip(numbered, columns, strict=True))
    blocks = _blocks(widths, max_width)
    for block in blocks:
        lines.append("")
        if len(blocks) > 1:
            lines.append(f"columns {block[0] + 1}-{block[-1] + 1} of {len(columns)}:")
        block_widths = [widths[0], *(widths[i + 1] for i in block)]
        lines.extend(_boxed(table, _SOURCE_HEADER_NUMBERED, numbered, block, block_widths, texts, color))
    return lines


def _column_widths(source_header: str, sources: Sequence[str], headers: Sequence[str],
                   texts: Sequence[Sequence[str]]) -> list[int]:
    widths = [max([display_width(source_header), *(display_width(s) for s in sources)])]
    for j, header in enumerate(headers):
        widths.append(max([display_width(header), *(display_width(row[j]) for row in texts)]))
    return widths


def _boxed_width(widths: Sequence[int]) -> int:
    """``| a | b |``: each column adds its width plus three (space, space, bar), plus the first bar."""
    return 1 + sum(w + 3 for w in widths)


def _blocks(widths: Sequence[int], max_width: int) -> list[list[int]]:
    """Split column indexes into blocks whose boxed width (with the source column) fits ``max_width``.

    A single column wider than the budget still gets a block of its own: it cannot be narrowed
    without truncating a name.
    """
    blocks: list[list[int]] = [[]]
    used = _boxed_width(widths[:1])
    for index, width in enumerate(widths[1:]):
        if blocks[-1] and used + width + 3 > max_width:
            blocks.append([])
            used = _boxed_width(widths[:1])
        blocks[-1].append(index)
        used += width + 3
    return blocks


def _boxed(table: TruthTable, source_header: str, headers: Sequence[str], column_indexes: Sequence[int],
           widths: Sequence[int], texts: Sequence[Sequence[str]], color: bool) -> list[str]:
    """One boxed table of the source column and ``column_indexes``; ``widths`` has one entry for each."""
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    header_rule = "+" + "+".join("=" * (w + 2) for w in widths) + "+"
    header_cells = [source_header, *(headers[j] for j in column_indexes)]
    lines = [rule, _row(header_cells, widths), header_rule]
    for i, source in enumerate(table.sources):
        cells = [printable(source)]
        styles: list[str | None] = [None]
        for j in column_indexes:
            cells.append(texts[i][j])
            cell = table.cell(source, table.columns[j])
            styles.append(None if cell is None or not color else _sgr(cell.tone, cell.mismatch))
        lines.append(_row(cells, widths, styles))
    lines.append(rule)
    return lines


def _row(cells: Sequence[str], widths: Sequence[int], styles: Sequence[str | None] | None = None) -> str:
    parts = []
    for k, (text, width) in enumerate(zip(cells, widths, strict=True)):
        padded = pad(text, width)
        style = styles[k] if styles else None
        parts.append(f"\x1b[{style}m{padded}{_RESET}" if style else padded)
    return "| " + " | ".join(parts) + " |"


def _sgr(kind: Shown, mismatch: bool) -> str:
    """Green/red/yellow/cyan/dim foreground; a mismatched cell is bold and reversed so it stands out."""
    colour = MARKS[kind].ansi
    return f"1;7;{colour}" if mismatch else colour


def _legend_lines(table: TruthTable) -> list[str]:
    """One line per mark, so the legend reads as a list in any log viewer (no wrapping needed)."""
    entries = legend_entries(table)
    width = max(len(entry.mark) for entry in entries)
    return [f"legend (cells show {cell_basis(table.probed)}):",
            *(f"  {entry.mark.ljust(width)}  {entry.meaning}" for entry in entries)]


def mismatch_lines(mismatches: Sequence[Mismatch], *, color: bool = False) -> list[str]:
    """The numbered mismatch list: path, what disagrees, the three views, reasons, Hubble flows, test."""
    lines = [f"mismatches ({len(mismatches)}):"]
    for item in mismatches:
        flow = item.flow
        number = f"{MISMATCH_MARK}{item.number}"
        if color:
            number = f"\x1b[1;31m{number}{_RESET}"
        lines.append(f"  {number} {printable(flow.source)} -> {printable(flow.column)}")
        indent = "     "
        lines.extend(f"{indent}{kind}" for kind in mismatch_kinds(flow))
        lines.append(f"{indent}expected: {expected_text(flow)} | model: {flow.model.value} | "
                     f"observed: {printable(observed_text(flow))}")
        lines.append(f"{indent}model reasons:" + ("" if flow.model_reasons else " (none given)"))
        lines.extend(f"{indent}  - {printable(r)}" for r in flow.model_reasons)
        if flow.observed is not None:
            lines.append(f"{indent}hubble flows:" + ("" if flow.evidence else " (none captured)"))
            lines.extend(f"{indent}  {printable(e)}" for e in flow.evidence)
        if flow.test:
            lines.append(f"{indent}test: {printable(flow.test)}")
    return lines
