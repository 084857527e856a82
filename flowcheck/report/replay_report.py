"""Hubble flows replayed against the policies, as a reviewer reads it: text, Markdown and JSON.

The headline comes first: with a base, the observed paths the change newly drops (allowed before,
dropped or denied by the proxy after); without one, the observed paths the cluster carried that the
policies would drop. Then every distinct observed path with what the cluster did to its records and
what the model decides, and last what was not replayed -- every record counted by reason, with
examples -- so a reader knows how much of the export the answer covers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flowcheck.model.decided_flow import decided_flow_json, document_header
from flowcheck.model.decision import Decision
from flowcheck.model.replay import ObservedPath, Replay, ReplayedPath
from flowcheck.report.diff_report import decision_word, path_text
from flowcheck.report.markdown import md_code, md_escape
from flowcheck.report.textutil import printable


@dataclass(frozen=True, slots=True)
class ReplayContext:
    """What was replayed: the export's name, its lines that were not flows, the base's name (None without
    one), and the settings (topology, policies, semantics)."""

    source: str
    not_flows: int = 0
    base: str | None = None
    settings: Mapping[str, str] = field(default_factory=dict)


def headline(result: Replay) -> str:
    """``4 observed paths would be newly dropped by this change`` (or what these policies would drop)."""
    count = len(result.would_drop)
    paths = f"{count} observed path{'s' if count != 1 else ''}"
    if result.with_base:
        return (f"{paths} would be newly dropped by this change (allowed before it, dropped or denied by the proxy "
                "after)")
    return f"{paths} the cluster carried would be dropped (or denied by the proxy) by these policies"


def coverage(result: Replay, context: ReplayContext) -> str:
    """``26 flow records, 14 distinct paths; 7 records not replayed (below); 1 line was not a flow``."""
    observed = result.observed
    parts = [f"{observed.records} flow record{'s' if observed.records != 1 else ''}",
             f"{len(observed.paths)} distinct path{'s' if len(observed.paths) != 1 else ''}"]
    if observed.skipped_records:
        parts.append(f"{observed.skipped_records} record{'s' if observed.skipped_records != 1 else ''} "
                     "not replayed (below)")
    if context.not_flows:
        parts.append(f"{context.not_flows} line{'s' if context.not_flows != 1 else ''} "
                     f"{'were' if context.not_flows != 1 else 'was'} not a flow (lost events, node status, not JSON)")
    return "; ".join(parts)


def observed_text(path: ObservedPath) -> str:
    """``seen 3 times: FORWARDED 3``, ``seen once: REDIRECTED``."""
    times = "once" if path.records == 1 else f"{path.records} times"
    verdicts = ", ".join(verdict if len(path.verdicts) == 1 else f"{verdict} {count}"
                         for verdict, count in sorted(path.verdicts.items()))
    return f"seen {times}: {verdicts}"


def model_text(item: ReplayedPath, arrow: str = "->") -> str:
    """``allowed``, ``L7: GET -> dropped`` (before -> after, with a base)."""
    flow = item.path.flow
    after = decision_word(item.after, flow)
    return after if item.before is None else f"{decision_word(item.before, flow)} {arrow} {after}"


def _reasons(lines: list[str], item: ReplayedPath, indent: str) -> None:
    sides: list[tuple[str, Decision]] = [("before:", item.before)] if item.before is not None else []
    sides.append(("after: " if item.before is not None else "model: ", item.after))
    for side, decision in sides:
        for i, reason in enumerate(decision.reasons or ("(no reason given)",)):
            lines.append(f"{indent}{side if i == 0 else ' ' * len(side)} {printable(reason)}")


def render_replay_text(result: Replay, context: ReplayContext) -> str:
    """The replay as text (ends with a newline)."""
    lines = [f"flowcheck replay: {printable(context.source)}: {coverage(result, context)}"]
    if context.base is not None:
        lines.append(f"compared with the policies at {printable(context.base)}")
    if context.settings:
        lines.append(", ".join(f"{printable(k)} {printable(v)}" for k, v in context.settings.items()))
    lines.extend(["", headline(result) + (":" if result.would_drop else ".")])
    for item in result.would_drop:
        lines.append(f"  {printable(path_text(item.path.flow))}: {printable(model_text(item))}; "
                     f"{observed_text(item.path)}")
        _reasons(lines, item, "    ")
    lines.extend(["", f"observed paths ({len(result.paths)}):"])
    for item in result.paths:
        mark = "!" if item.would_drop else " "
        lines.append(f" {mark} {printable(path_text(item.path.flow))}: {observed_text(item.path)}; model "
                     f"{printable(model_text(item))}")
    if result.observed.skipped:
        lines.extend(["", f"not replayed ({result.observed.skipped_records} records):"])
        for skipped in result.observed.skipped:
            lines.append(f"  {skipped.records} {skipped.reason.meaning}")
            lines.extend(f"      e.g. {printable(example)}" for example in skipped.examples)
    return "\n".join(lines) + "\n"


def render_replay_markdown(result: Replay, context: ReplayContext, *, heading_level: int = 2) -> str:
    """The replay as GitHub-flavoured Markdown (step summary, PR comment)."""
    h = "#" * heading_level
    lines = [f"{h} flowcheck replay: {md_code(context.source)}", "", md_escape(coverage(result, context)), ""]
    if context.base is not None:
        lines.extend([f"Compared with the policies at {md_code(context.base)}.", ""])
    lines.extend([f"**{md_escape(headline(result))}**", ""])
    for item in result.would_drop:
        lines.append(f"- {md_code(path_text(item.path.flow))}: {md_escape(model_text(item, '→'))}; "
                     f"{md_escape(observed_text(item.path))}")
        if item.before is not None:
            lines.extend(f"  - before: {md_escape(r)}" for r in item.before.reasons)
        lines.extend(f"  - {'after' if item.before is not None else 'model'}: {md_escape(r)}"
                     for r in item.after.reasons)
    lines.extend(["", f"{h}# Observed paths ({len(result.paths)})", "", "| Path | Observed | Model |",
                  "| --- | --- | --- |"])
    for item in result.paths:
        model = md_escape(model_text(item, "→"))
        lines.append(f"| {md_escape(path_text(item.path.flow))} | {md_escape(observed_text(item.path))} | "
                     f"{f'**{model}**' if item.would_drop else model} |")
    if result.observed.skipped:
        lines.extend(["", f"{h}# Not replayed ({result.observed.skipped_records} records)", ""])
        for skipped in result.observed.skipped:
            lines.append(f"- {skipped.records} {md_escape(skipped.reason.meaning)}")
            lines.extend(f"  - e.g. {md_code(example)}" for example in skipped.examples)
    return "\n".join(lines) + "\n"


def replay_json(result: Replay, context: ReplayContext) -> dict[str, Any]:
    """The replay as a version-2 document: each path's observations and decided flow(s)."""
    document = document_header("replay", source=context.source, base=context.base, **dict(context.settings))
    document["records"] = result.observed.records
    document["not_flows"] = context.not_flows
    document["headline"] = {"text": headline(result), "paths": len(result.would_drop)}
    document["paths"] = [_path_json(item) for item in result.paths]
    document["not_replayed"] = [{"reason": s.reason.value, "meaning": s.reason.meaning, "records": s.records,
                                 "examples": list(s.examples)} for s in result.observed.skipped]
    return document


def _path_json(item: ReplayedPath) -> dict[str, Any]:
    path = item.path
    out: dict[str, Any] = {
        "observed": {"records": path.records, "verdicts": dict(path.verdicts), "carried": path.carried,
                     "first": path.first.isoformat(), "last": path.last.isoformat(), "nodes": list(path.nodes),
                     "example": path.example},
        "would_drop": item.would_drop,
    }
    if item.before is not None:
        out["before"] = decided_flow_json(path.flow, item.before)
    out["after"] = decided_flow_json(path.flow, item.after)
    return out
