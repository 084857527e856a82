"""One line per flow with its decisive reason: ``flowcheck plan --format table|markdown``.

The truth tables (``terminal``, ``markdown``, ``html_page``) show the whole matrix at a glance;
this listing is for reading *why*: each flow with the model's first reason, unabridged. It lives
here, not in the model, so it shares the report layer's escaping (Markdown) and display-width
padding (terminal) instead of approximating them.
"""

from __future__ import annotations

from collections.abc import Iterable

from flowcheck.report.markdown import md_escape
from flowcheck.report.marks import Shown, shown, shown_text
from flowcheck.report.records import CheckedFlow
from flowcheck.report.textutil import display_width, pad, printable
from flowcheck.verdict import Verdict

HEADERS = ("FROM", "TO", "PORT", "VERDICT", "REASON")


def _row(flow: CheckedFlow) -> tuple[str, str, str, str, str]:
    port = f"{flow.port}/{flow.protocol}" if flow.port is not None else flow.protocol
    reason = flow.model_reasons[0] if flow.model_reasons else ""
    return (flow.source, flow.destination, port, _verdict(flow), reason)


def _verdict(flow: CheckedFlow) -> str:
    """The verdict, and what the truth tables show beside it: ``allowed (L7: GET)``, ``allowed (self)``."""
    if shown(flow) in (Shown.L7_FILTERED, Shown.SELF):
        return f"{flow.model.value} ({shown_text(flow)})"
    return flow.model.value


def render_flow_table(flows: Iterable[CheckedFlow]) -> str:
    """Aligned columns (by display width, control characters escaped), the reason last and whole."""
    rows = [HEADERS, *(tuple(printable(cell) for cell in _row(f)) for f in flows)]
    widths = [max(display_width(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(pad(cell, widths[i]) for i, cell in enumerate(r[:4])) + "  " + r[4] for r in rows]
    return "\n".join(line.rstrip() for line in lines) + "\n"


def render_flow_markdown(flows: Iterable[CheckedFlow]) -> str:
    """A GitHub-flavoured Markdown table; every cell escaped, verdicts other than allowed in bold."""
    lines = ["| From | To | Port | Verdict | Reason |", "|---|---|---|---|---|"]
    for flow in flows:
        cells = [md_escape(cell) for cell in _row(flow)]
        if flow.model is not Verdict.ALLOWED:
            cells[3] = f"**{cells[3]}**"
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
