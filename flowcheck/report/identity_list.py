"""``flowcheck plan --by identity --format table|markdown``: the identities, then one line per path.

A path (``flowcheck.model.identity_plan.IdentityPath``) is a source identity, a destination
identity and a port, decided once for all the workloads it stands for. The listing first names each
identity's workloads, then gives each path with its verdict, how many workload flows it stands for
and its decisive reason. Where a path covers only some workloads of an identity (its members are
decided differently, e.g. by a named port only some of them serve under that name) those are
named in brackets; a workload's flow to itself is a path of its own, shown as ``(each to itself)``.
"""

from __future__ import annotations

from collections.abc import Sequence

from flowcheck.model.identity import IdentityTable
from flowcheck.model.identity_plan import IdentityPath
from flowcheck.report.markdown import md_escape
from flowcheck.report.textutil import display_width, pad, printable
from flowcheck.verdict import Verdict

IDENTITY_HEADERS = ("IDENTITY", "WORKLOADS")
PATH_HEADERS = ("FROM", "TO", "PORT", "VERDICT", "FLOWS", "REASON")
OWN = "(each to itself)"


def _endpoint(name: str, members: tuple[str, ...], identity_members: tuple[str, ...]) -> str:
    return name if members == identity_members else f"{name} [{', '.join(members)}]"


def _row(path: IdentityPath, table: IdentityTable) -> tuple[str, ...]:
    source = _endpoint(path.source_name, path.sources, table.members[path.source])
    destination = OWN if path.own else _endpoint(path.destination_name, path.destinations,
                                                 table.members[path.destination])
    reason = path.decision.reasons[0] if path.decision.reasons else ""
    return (source, destination, f"{path.port}/{path.protocol}", path.decision.verdict.value, str(path.flow_count),
            reason)


def _aligned(rows: Sequence[tuple[str, ...]], right: frozenset[int] = frozenset()) -> list[str]:
    """Columns padded to display width (``right``: right-aligned), the last one left whole."""
    last = len(rows[0]) - 1
    widths = [max(display_width(r[i]) for r in rows) for i in range(last)]
    lines = []
    for row in rows:
        cells = [(" " * (widths[i] - display_width(cell)) + cell) if i in right else pad(cell, widths[i])
                 for i, cell in enumerate(row[:last])]
        lines.append(("  ".join(cells) + "  " + row[last]).rstrip())
    return lines


def render_identity_table(paths: Sequence[IdentityPath], table: IdentityTable) -> str:
    """The identities with their workloads, a blank line, then the paths (control characters escaped)."""
    identities = [IDENTITY_HEADERS, *((printable(name), printable(", ".join(members)))
                                      for name, members in zip(table.names, table.members, strict=True))]
    rows = [PATH_HEADERS, *(tuple(printable(cell) for cell in _row(p, table)) for p in paths)]
    return "\n".join([*_aligned(identities), "", *_aligned(rows, right=frozenset({4}))]) + "\n"


def render_identity_markdown(paths: Sequence[IdentityPath], table: IdentityTable) -> str:
    """Two GitHub-flavoured Markdown tables (identities, paths); verdicts other than allowed in bold."""
    lines = ["| Identity | Workloads |", "|---|---|"]
    lines.extend(f"| {md_escape(name)} | {md_escape(', '.join(members))} |"
                 for name, members in zip(table.names, table.members, strict=True))
    lines.extend(["", "| From | To | Port | Verdict | Flows | Reason |", "|---|---|---|---|---:|---|"])
    for path in paths:
        cells = [md_escape(cell) for cell in _row(path, table)]
        if path.decision.verdict is not Verdict.ALLOWED:
            cells[3] = f"**{cells[3]}**"
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
