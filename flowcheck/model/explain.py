"""Explanations: a decision per flow, and whether ``--semantics`` changes it.

``flowcheck explain`` answers "what happens to this flow, and why". Cilium deviates from the
NetworkPolicy specification in a few places (an ipBlock never matches pod IPs under Cilium, it
does under the spec; a NotIn/DoesNotExist namespaceSelector selects pods only under the spec, and
may also match world or host under Cilium); a user reading a verdict should know when the answer
depends on that, so
each explanation also decides the flow under the other semantics and carries a note when the
verdicts differ.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from flowcheck.model.engine import Decision, Model
from flowcheck.model.flows import Flow


@dataclass(frozen=True, slots=True)
class Explanation:
    flow: Flow
    decision: Decision
    semantics_note: str | None = None

    def to_json(self) -> dict[str, Any]:
        """``{"flow": {...}, "verdict": "...", "reasons": [...]}`` (+ ``semantics_note`` if any): the JSON form of
        ``flowcheck explain`` (docs/contracts.md, "The flowcheck command")."""
        out: dict[str, Any] = {"flow": self.flow.to_json(), "verdict": self.decision.verdict.value,
                               "reasons": list(self.decision.reasons)}
        if self.semantics_note:
            out["semantics_note"] = self.semantics_note
        return out


def explain(model: Model, flows: Iterable[Flow]) -> list[Explanation]:
    """Decide every flow (in order) and note where the other ``--semantics`` gives another verdict."""
    other_name = "kubernetes" if model.semantics == "cilium" else "cilium"
    other = Model(model.topology, model.policies, other_name)
    out: list[Explanation] = []
    for flow in flows:
        decision = model.decide(flow)
        theirs = other.decide(flow)
        note = None
        if theirs.verdict is not decision.verdict:
            note = (f"--semantics matters here: with --semantics {other_name} the verdict is "
                    f"{theirs.verdict.value} ({theirs.reasons[0] if theirs.reasons else 'no reason given'})")
        out.append(Explanation(flow, decision, note))
    return out


def explanations_text(explanations: Iterable[Explanation]) -> str:
    """One block per flow: the flow and verdict, then each reason, then the semantics note."""
    blocks = []
    for item in explanations:
        lines = [f"{item.flow.describe()}: {item.decision.verdict.value}"]
        lines.extend(f"  - {reason}" for reason in item.decision.reasons)
        if item.semantics_note:
            lines.append(f"  note: {item.semantics_note}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + ("\n" if blocks else "")
