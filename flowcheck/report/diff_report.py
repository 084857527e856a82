"""A policy change as a reviewer reads it: text, Markdown (step summary, PR comment), JSON and HTML.

Every format says the same, in the same order (``flowcheck.model.plan_diff``): the declared paths
whose verdict the change flips first, then the paths it opened, closed, moved behind the L7 proxy
or out from behind it, whose L7 rules changed, and any other verdict change -- each with the model's
verdict and reasons before and after. JSON writes each side as a decided flow
(``flowcheck.model.decided_flow``); HTML is the page every report is (``html_page``) with the service
map of the change (``service_map.diff_service_maps``: opened and closed edges, and L7 moves, in
colours of their own) and the changes listed above the new truth table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any

from flowcheck.model.decided_flow import DecisionFacts, decided_flow_json, document_header
from flowcheck.model.decision import Decision
from flowcheck.model.flows import Flow
from flowcheck.model.plan_diff import ChangeKind, PathChange, PlanDiff
from flowcheck.report.html_page import render_html
from flowcheck.report.markdown import details_table, md_code, md_escape
from flowcheck.report.marks import L7_PREFIX, MARKS, Shown
from flowcheck.report.records import CheckedFlow, MatrixReport, column_label
from flowcheck.report.service_map import build_service_map, diff_service_maps
from flowcheck.report.textutil import printable
from flowcheck.verdict import Verdict


@dataclass(frozen=True, slots=True)
class DiffContext:
    """What was compared: the two sides as a reader names them (``HEAD~1 (3f2a9c1)``, ``working tree``),
    and the run's settings (topology, policies, semantics) for the header."""

    base: str
    head: str
    settings: Mapping[str, str] = field(default_factory=dict)


def request_text(flow: Flow) -> str | None:
    """The L7 request as table columns name it: ``GET /orders``, ``DNS example.com``."""
    if flow.http is not None:
        return f"{flow.http.method} {flow.http.path}"
    if flow.dns is not None:
        return f"DNS {flow.dns.query}"
    return None


def path_text(flow: Flow) -> str:
    """``tenant/client -> default/my-api:8080/TCP``, the path as the truth table names it."""
    return f"{flow.source.describe()} -> " + column_label(flow.destination.describe(), flow.protocol, flow.port,
                                                         request_text(flow))


def decision_word(decision: Decision, flow: Flow) -> str:
    """``dropped``, ``allowed``, or ``L7: GET`` for a port allowed only through the L7 proxy."""
    l7 = DecisionFacts.of(decision).l7
    if decision.verdict is Verdict.ALLOWED and l7 is not None and request_text(flow) is None:
        return f"{L7_PREFIX}{l7.passes}"
    return decision.verdict.value


def _shown(decision: Decision, flow: Flow) -> Shown:
    word = decision_word(decision, flow)
    return Shown.L7_FILTERED if word.startswith(L7_PREFIX) else Shown(decision.verdict.value)


def summary_text(diff: PlanDiff) -> str:
    """``54 paths compared, 3 of them to or from outside the cluster (self-flows left out): 6 changed -- 2 opened,
    4 closed`` (the outside count only when there are such paths)."""
    counts = [f"{len(diff.of_kind(k))} {k.heading}" for k in ChangeKind if diff.of_kind(k)]
    outside = f", {diff.outside} of them to or from outside the cluster" if diff.outside else ""
    head = f"{diff.compared} path{'s' if diff.compared != 1 else ''} compared{outside} (self-flows left out): "
    if not diff.changes:
        return head + "no path changed"
    return head + f"{len(diff.changes)} changed -- {', '.join(counts)}"


def intent_text(diff: PlanDiff) -> str | None:
    """``declared intent: 12 paths decided, 1 flipped by the change (1 now breaks it)``; None without intent."""
    if not diff.intent_checked:
        return None
    breaks = sum(1 for c in diff.intent if c.breaks_intent)
    flipped = f"{len(diff.intent)} flipped by the change" if diff.intent else "none flipped by the change"
    tail = f" ({breaks} now break{'s' if breaks == 1 else ''} it)" if breaks else ""
    return f"declared intent: {diff.intent_checked} paths decided, {flipped}{tail}"


def _intent_note(change: PathChange) -> str:
    assert change.intent is not None
    verdict = "now breaks the intent" if change.breaks_intent else (
        "now meets the intent" if change.meets_intent else "still not the intent")
    where = f"; {change.intent.declared_in}" if change.intent.declared_in else ""
    return f"expected {change.intent.expected.value}: {verdict}{where}"


# --- text ---------------------------------------------------------------------------------------


def render_diff_text(diff: PlanDiff, context: DiffContext) -> str:
    """The change as text, for a terminal or a CI log (ends with a newline)."""
    lines = [f"flowcheck diff: {printable(context.base)} -> {printable(context.head)}"]
    if context.settings:
        lines.append(", ".join(f"{printable(k)} {printable(v)}" for k, v in context.settings.items()))
    lines.append(summary_text(diff))
    intent = intent_text(diff)
    if intent:
        lines.append(intent)
    if diff.intent:
        lines.extend(["", f"DECLARED INTENT FLIPPED ({len(diff.intent)})"])
        for change in diff.intent:
            lines.extend(_change_lines(change, note=_intent_note(change)))
    for kind in ChangeKind:
        changes = diff.of_kind(kind)
        if changes:
            lines.extend(["", f"{kind.heading.upper()} ({len(changes)})"])
            for change in changes:
                lines.extend(_change_lines(change))
    return "\n".join(lines) + "\n"


def _change_lines(change: PathChange, note: str = "") -> list[str]:
    flow = change.flow
    head = (f"  {printable(path_text(flow))}: {printable(decision_word(change.before, flow))} -> "
            f"{printable(decision_word(change.after, flow))}")
    lines = [head + (f" ({printable(note)})" if note else "")]
    for side, decision in (("before:", change.before), ("after: ", change.after)):
        for i, reason in enumerate(decision.reasons or ("(no reason given)",)):
            lines.append(f"    {side if i == 0 else ' ' * len(side)} {printable(reason)}")
    return lines


# --- Markdown -------------------------------------------------------------------------------------


def render_diff_markdown(diff: PlanDiff, context: DiffContext, *, heading_level: int = 2) -> str:
    """The change as GitHub-flavoured Markdown, for the step summary or a pull-request comment."""
    h = "#" * heading_level
    lines = [f"{h} flowcheck diff: {md_code(context.base)} → {md_code(context.head)}", "",
             f"**{md_escape(summary_text(diff))}**", ""]
    intent = intent_text(diff)
    if intent:
        lines.extend([md_escape(intent), ""])
    if diff.intent:
        lines.extend([f"{h}# ⚠️ Declared intent flipped ({len(diff.intent)})", ""])
        for change in diff.intent:
            lines.extend(_change_markdown(change, note=_intent_note(change)))
        lines.append("")
    for kind in ChangeKind:
        changes = diff.of_kind(kind)
        if changes:
            lines.extend([f"{h}# {kind.heading.capitalize()} ({len(changes)})", ""])
            for change in changes:
                lines.extend(_change_markdown(change))
            lines.append("")
    lines.extend(details_table("Compared", context.settings))
    return "\n".join(lines)


def _markdown_verdict(decision: Decision, flow: Flow, *, bold: bool) -> str:
    text = md_escape(decision_word(decision, flow))
    return f"{MARKS[_shown(decision, flow)].emoji} {f'**{text}**' if bold else text}"


def _change_markdown(change: PathChange, note: str = "") -> list[str]:
    flow = change.flow
    destination = column_label(flow.destination.describe(), flow.protocol, flow.port, request_text(flow))
    was = _markdown_verdict(change.before, flow, bold=False)
    now = _markdown_verdict(change.after, flow, bold=True)
    line = f"- {md_code(flow.source.describe())} → {md_code(destination)}: {was} → {now}"
    lines = [line + (f" ({md_escape(note)})" if note else "")]
    for side, decision in (("before", change.before), ("after", change.after)):
        lines.extend(f"  - {side}: {md_escape(reason)}" for reason in decision.reasons)
    return lines


# --- JSON -----------------------------------------------------------------------------------------


def diff_json(diff: PlanDiff, context: DiffContext) -> dict[str, Any]:
    """The change as a version-2 document: counts, then each change with both sides as decided flows."""
    document = document_header("diff", base=context.base, head=context.head, **dict(context.settings))
    document["compared"] = diff.compared
    document["compared_outside"] = diff.outside
    document["counts"] = {kind.value: len(diff.of_kind(kind)) for kind in ChangeKind}
    if diff.intent_checked:
        document["intent"] = {"checked": diff.intent_checked, "flipped": [_change_json(c) for c in diff.intent]}
    document["changes"] = [_change_json(c) for c in diff.changes]
    return document


def _change_json(change: PathChange) -> dict[str, Any]:
    out: dict[str, Any] = {"change": change.kind.value}
    if change.intent is not None:
        out.update(expected=change.intent.expected.value, declared_in=change.intent.declared_in,
                   breaks_intent=change.breaks_intent)
    out["before"] = decided_flow_json(change.flow, change.before)
    out["after"] = decided_flow_json(change.flow, change.after)
    return out


# --- HTML -----------------------------------------------------------------------------------------


def render_diff_html(diff: PlanDiff, context: DiffContext, before: Sequence[CheckedFlow],
                     after: Sequence[CheckedFlow]) -> str:
    """One page: the changes listed, the service map of the change, the new plan's truth table.

    ``before`` and ``after`` are the records of the two plans (``records.decided_record``).
    """
    service_map = diff_service_maps(build_service_map(before), build_service_map(after))
    metadata = {"base": context.base, "head": context.head, **dict(context.settings)}
    return render_html(MatrixReport(tuple(after), metadata), title=f"flowcheck diff: {context.base} -> {context.head}",
                       service_map=service_map, sections=(_changes_html(diff),))


def _changes_html(diff: PlanDiff) -> str:
    parts = [f'<h2 id="changes">Changes</h2><p class="summary">{escape(summary_text(diff))}</p>']
    intent = intent_text(diff)
    if intent:
        parts.append(f"<p>{escape(intent)}</p>")
    if diff.intent:
        parts.append(f'<h3 id="intent-flipped">Declared intent flipped ({len(diff.intent)})</h3>')
        parts.append(_changes_list(diff.intent, intent=True))
    for kind in ChangeKind:
        changes = diff.of_kind(kind)
        if changes:
            parts.append(f'<h3 id="changes-{kind.value}">{escape(kind.heading.capitalize())} ({len(changes)})</h3>')
            parts.append(_changes_list(changes))
    return "\n".join(parts)


def _badge(decision: Decision, flow: Flow) -> str:
    return f'<span class="badge v-{_shown(decision, flow).value}">{escape(decision_word(decision, flow))}</span>'


def _changes_list(changes: Sequence[PathChange], *, intent: bool = False) -> str:
    items = []
    for change in changes:
        flow = change.flow
        note = f' <span class="muted">({escape(_intent_note(change))})</span>' if intent else ""
        reasons = "".join(
            f"<dt>{side}</dt><dd><ul class=\"reasons\">{''.join(f'<li>{escape(r)}</li>' for r in decision.reasons)}"
            "</ul></dd>" for side, decision in (("before", change.before), ("after", change.after)))
        items.append(f'<li class="change change-{change.kind.value}"><p class="path"><code>'
                     f"{escape(path_text(flow))}</code>: {_badge(change.before, flow)} → "
                     f"{_badge(change.after, flow)}{note}</p><dl class=\"views\">{reasons}</dl></li>")
    return f'<ul class="changes">{"".join(items)}</ul>'
