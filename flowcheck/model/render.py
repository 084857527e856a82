"""Renderings of a plan for the ``flowcheck plan`` command: JSON (a contract), a table, Markdown.

The JSON form is design §4 exactly -- scripts depend on it. The table and Markdown forms are one
row per flow with the first (decisive) reason; the matrix-shaped truth tables live in
``flowcheck.report``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flowcheck.model.flows import Flow
from flowcheck.model.matrix import PlannedFlow

_HEADERS = ("FROM", "TO", "PORT", "VERDICT", "REASON")


def plan_json(planned: Sequence[PlannedFlow]) -> dict[str, Any]:
    """``{"results": [{"from", "to", "port", "protocol", "verdict", "reasons"}, ...]}`` (design §4)."""
    return {"results": [
        {"from": p.flow.source.describe(), "to": p.flow.destination.describe(), "port": p.flow.port,
         "protocol": p.flow.protocol, "verdict": p.decision.verdict.value, "reasons": list(p.decision.reasons)}
        for p in planned]}


def _row(p: PlannedFlow) -> tuple[str, str, str, str, str]:
    return (p.flow.source.describe(), p.flow.destination.describe(), _port(p.flow), p.decision.verdict.value,
            p.decision.reasons[0] if p.decision.reasons else "")


def _port(flow: Flow) -> str:
    return f"{flow.port}/{flow.protocol}" if flow.port is not None else flow.protocol


def plan_table(planned: Sequence[PlannedFlow]) -> str:
    """Aligned columns, one flow per line; the reason column is the decisive reason, unabridged."""
    rows = [_HEADERS, *(_row(p) for p in planned)]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(r[:4])) + "  " + r[4] for r in rows]
    return "\n".join(line.rstrip() for line in lines) + "\n"


def plan_markdown(planned: Sequence[PlannedFlow]) -> str:
    """A GitHub-flavoured Markdown table (pipes in reasons escaped)."""
    lines = ["| From | To | Port | Verdict | Reason |", "|---|---|---|---|---|"]
    for p in planned:
        cells = [c.replace("|", "\\|") for c in _row(p)]
        cells[3] = f"**{cells[3]}**" if cells[3] != "allowed" else cells[3]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
