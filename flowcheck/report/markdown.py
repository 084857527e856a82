"""The truth table as GitHub-flavoured Markdown, for ``$GITHUB_STEP_SUMMARY`` and pull-request comments.

GitHub renders step summaries with its Markdown sanitiser: no CSS, no colour, so a cell's colour is
an emoji beside its word (green/red/orange circles as in ``marks``; a yellow circle for the outcomes
that are not policy verdicts) and a mismatch is bold with its ``!N`` reference. Every name is
escaped -- a workload called ``<script>`` or a path containing ``|`` must neither inject HTML nor
break the table -- and Hubble lines go into fenced code blocks whose fence is longer than any
backtick run inside them.

A step summary is limited to 1 MiB per step (GitHub refuses larger ones and shows an error instead
of the summary); ``append_step_summary`` cuts an oversize report at a line boundary and says so,
pointing at the full report artifact.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from flowcheck.report.marks import (
    EMPTY_CELL,
    MARKS,
    MISMATCH_MARK,
    cell_basis,
    expected_text,
    mismatch_kinds,
    observed_text,
)
from flowcheck.report.notices import run_notices
from flowcheck.report.records import CheckedFlow, MatrixReport
from flowcheck.report.truth_table import (
    Cell,
    LegendEntry,
    LegendKind,
    Mismatch,
    TruthTable,
    build_truth_table,
    legend_entries,
    summarize,
)

STEP_SUMMARY_MAX_BYTES = 1024 * 1024
"""GitHub's documented limit for one step's summary ("up to a size of 1024k")."""

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>|#!~&])")


def md_escape(text: str) -> str:
    """Escape Markdown/HTML metacharacters (and ``|`` for tables); newlines become spaces."""
    flat = " ".join(text.splitlines()) if ("\n" in text or "\r" in text) else text
    return _MD_SPECIAL.sub(r"\\\1", flat)


def md_code(text: str) -> str:
    """``text`` as an inline code span whose fence is longer than any backtick run inside it.

    For prose and lists only: inside a table cell a ``|`` would still end the cell.
    """
    flat = " ".join(text.splitlines())
    longest = max((len(run) for run in re.findall(r"`+", flat)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if flat.startswith("`") or flat.endswith("`") else ""
    return f"{fence}{pad}{flat}{pad}{fence}"


def render_markdown(report: MatrixReport, *, title: str = "flowcheck truth table", heading_level: int = 2) -> str:
    """The run's table, legend, mismatch list and metadata as GitHub-flavoured Markdown."""
    table = build_truth_table(report.flows)
    h = "#" * heading_level
    lines = [f"{h} {md_escape(title)}", "", summarize(table).text(), ""]
    lines.extend(line for notice in run_notices(report) for line in (f"> **Note**: {md_escape(notice)}", ""))
    if table.flows:
        lines.extend(_table_lines(table))
        lines.append("")
        lines.extend(_legend_lines(table))
        lines.append("")
        if table.mismatches:
            lines.append(f"{h}# Mismatches ({len(table.mismatches)})")
            lines.append("")
            lines.extend(_mismatch_lines(table.mismatches))
            lines.append("")
    lines.extend(details_table("Run metadata", report.metadata))
    return "\n".join(lines)


def details_table(summary: str, rows: Mapping[str, str]) -> list[str]:
    """A folded ``key | value`` table (``<details>``), or nothing when there are no rows."""
    if not rows:
        return []
    return ["<details><summary>" + md_escape(summary) + "</summary>", "", "| key | value |", "| --- | --- |",
            *(f"| {md_escape(k)} | {md_escape(v)} |" for k, v in rows.items()), "", "</details>", ""]


def render_plan_markdown(flows: Iterable[CheckedFlow], *, metadata: Mapping[str, str] | None = None) -> str:
    """The model's plan (flows with model verdicts only) as a Markdown truth table."""
    report = MatrixReport(tuple(flows), dict(metadata or {}))
    return render_markdown(report, title="flowcheck plan (model verdicts)")


def _cell_markdown(cell: Cell | None) -> str:
    if cell is None:
        return EMPTY_CELL
    body = f"{MARKS[cell.tone].emoji} {md_escape(cell.label)}"
    if not cell.mismatches:
        return body
    refs = " ".join(f"{MISMATCH_MARK}{m.number}" for m in cell.mismatches)
    return f"**{body} {md_escape(refs)}**"


def _table_lines(table: TruthTable) -> list[str]:
    header = "| source \\\\ destination | " + " | ".join(md_escape(c) for c in table.columns) + " |"
    rule = "| --- |" + " :---: |" * len(table.columns)
    rows = [
        f"| {md_escape(source)} | " + " | ".join(_cell_markdown(table.cell(source, c)) for c in table.columns) + " |"
        for source in table.sources
    ]
    return [header, rule, *rows]


def _legend_lines(table: TruthTable) -> list[str]:
    items = [_legend_item(entry) for entry in legend_entries(table)]
    return [f"Cells show {cell_basis(table.probed)}. " + " · ".join(items)]


def _legend_item(entry: LegendEntry) -> str:
    """``🟢 allowed: reached the server``, ``**\\!N**: mismatch N, listed below``, ``-: not checked``."""
    mark = md_escape(entry.mark)
    if entry.shown is not None:
        mark = f"{MARKS[entry.shown].emoji} {mark}"
    elif entry.kind is LegendKind.MISMATCH:
        mark = f"**{mark}**"
    return f"{mark}: {entry.meaning}"


def _fenced(lines: Iterable[str], indent: str) -> list[str]:
    body = [" ".join(line.splitlines()) for line in lines]
    longest = max((len(run) for line in body for run in re.findall(r"`+", line)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{indent}{fence}text", *(f"{indent}{line}" for line in body), f"{indent}{fence}"]


def _mismatch_lines(mismatches: Iterable[Mismatch]) -> list[str]:
    lines: list[str] = []
    for item in mismatches:
        flow = item.flow
        lines.append(f"{item.number}. **{md_escape(MISMATCH_MARK)}{item.number}** "
                     f"{md_code(flow.source)} → {md_code(flow.column)}")
        indent = "   "
        for kind in mismatch_kinds(flow):
            lines.append(f"{indent}- {md_escape(kind)}")
        lines.append(f"{indent}- expected **{md_escape(expected_text(flow))}** · "
                     f"model **{md_escape(flow.model.value)}** · observed **{md_escape(observed_text(flow))}**")
        if flow.model_reasons:
            lines.append(f"{indent}- model reasons:")
            lines.extend(f"{indent}  - {md_escape(r)}" for r in flow.model_reasons)
        else:
            lines.append(f"{indent}- model reasons: (none given)")
        if flow.observed is not None:
            if flow.evidence:
                lines.append(f"{indent}- Hubble flows:")
                lines.append("")
                lines.extend(_fenced(flow.evidence, indent + "  "))
                lines.append("")
            else:
                lines.append(f"{indent}- Hubble flows: (none captured)")
        if flow.test:
            lines.append(f"{indent}- test: {md_code(flow.test)}")
    return lines


def append_step_summary(markdown: str, *, environ: Mapping[str, str] | None = None,
                        max_bytes: int = STEP_SUMMARY_MAX_BYTES) -> Path | None:
    """Append ``markdown`` to the file named by ``$GITHUB_STEP_SUMMARY``; return its path, or None if unset.

    Other steps of the job may already have written to the summary, so this appends, as GitHub's
    documentation prescribes. An oversize report is cut at a line boundary with a note, because
    GitHub would otherwise drop the whole summary.
    """
    env = os.environ if environ is None else environ
    target = env.get("GITHUB_STEP_SUMMARY")
    if not target:
        return None
    path = Path(target)
    text = markdown if markdown.endswith("\n") else markdown + "\n"
    existing = path.stat().st_size if path.exists() else 0
    budget = max_bytes - existing
    if len(text.encode()) > budget:
        text = _cut(text, budget)
    with path.open("a", encoding="utf-8") as summary:
        summary.write(text)
    return path


def _cut(text: str, budget: int) -> str:
    """The longest run of whole lines that fits ``budget`` bytes with the note, closing an open code fence."""
    note = ("\n> **Summary truncated**: GitHub limits a step summary to 1 MiB. The full table is in "
            "`report.md` / `report.html` of the report artifact.\n")
    kept: list[str] = []
    used = 0
    open_fence = ""
    for line in text.splitlines(keepends=True):
        closing = f"{open_fence}\n" if open_fence else ""
        size = len(line.encode())
        if used + size + len(closing.encode()) + len(note.encode()) > budget:
            break
        kept.append(line)
        used += size
        stripped = line.strip()
        if not open_fence and stripped.startswith("```"):
            open_fence = stripped[: len(stripped) - len(stripped.lstrip("`"))]
        elif open_fence and stripped == open_fence:
            open_fence = ""
    if used == 0 and len(note.encode()) > budget:
        return ""
    return "".join(kept) + (f"{open_fence}\n" if open_fence else "") + note
