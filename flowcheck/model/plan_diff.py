"""What a policy change does: the reachability of one topology under two policy sets, path by path.

``flowcheck diff`` answers a reviewer's question about a pull request -- which paths does this change
open, close or move behind the L7 proxy? -- by deciding the whole plan (every workload to every
port every workload serves) under the policies before and after, and comparing each path's two
decisions. The topology names no end outside the cluster, so the paths to and from outside are
those a rule of *either* policy set names (``mentioned.rule_paths``: entities, CIDR blocks and
their except blocks, FQDNs, on the rule's ports; 443/TCP as an example for a rule without one): a
change that adds ``toEntities: [world]`` opens a path only the new rule names, one that removes a
``toFQDNs`` rule closes a path only the old rule names. A change is one of (``ChangeKind``, in the
order a report lists them):

* ``opened`` -- not allowed before, allowed after; ``closed`` -- the other way (allowed means the
  verdict is ``allowed``, through the L7 proxy or not);
* ``now-l7-filtered`` -- allowed before with nothing filtering it, allowed after only through the L7
  proxy (``Decision.l7``: what passes is named); ``no-longer-l7-filtered`` -- the other way;
  ``l7-changed`` -- filtered on both sides, by other rules (what passes differs);
* ``verdict-changed`` -- any other change of verdict (``dropped`` to ``unknown``, ...).

Self-flows are left out: no policy governs a pod's own IP, so no change can move them. Declared
intent (``IntentPath``: a path with the verdict its author expects, from a suites run's report) is
decided under both policy sets too, and every intended path whose verdict the change flips is
reported first -- it is what a reviewer must see before anything else.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from flowcheck.model.decided_flow import DecisionFacts
from flowcheck.model.decision import DecidedBy, Decision
from flowcheck.model.engine import Model
from flowcheck.model.flows import Flow, WorkloadEndpoint
from flowcheck.model.matrix import PlannedFlow, decide_matrix
from flowcheck.model.mentioned import RulePath, rule_paths
from flowcheck.verdict import Verdict


class ChangeKind(enum.StrEnum):
    """How a change moved one path; the values are the JSON names, the order the order of a report."""

    OPENED = "opened"
    CLOSED = "closed"
    NOW_L7_FILTERED = "now-l7-filtered"
    NO_LONGER_L7_FILTERED = "no-longer-l7-filtered"
    L7_CHANGED = "l7-changed"
    VERDICT_CHANGED = "verdict-changed"

    @property
    def heading(self) -> str:
        """``opened``, ``now L7-filtered``, ``other verdict changes``: how a report heads its section."""
        return _TITLES[self]


_TITLES = {ChangeKind.OPENED: "opened", ChangeKind.CLOSED: "closed", ChangeKind.NOW_L7_FILTERED: "now L7-filtered",
           ChangeKind.NO_LONGER_L7_FILTERED: "no longer L7-filtered", ChangeKind.L7_CHANGED: "L7 rules changed",
           ChangeKind.VERDICT_CHANGED: "other verdict changes"}


@dataclass(frozen=True, slots=True)
class IntentPath:
    """A declared path: the flow, the verdict its author expects, and where it was declared (a test id)."""

    flow: Flow
    expected: Verdict
    declared_in: str = ""


@dataclass(frozen=True, slots=True)
class PathChange:
    """One path the change moved, with the decision before and after (their reasons say why)."""

    kind: ChangeKind
    flow: Flow
    before: Decision
    after: Decision
    intent: IntentPath | None = None

    @property
    def breaks_intent(self) -> bool:
        """An intended path that met its intent before and does not after."""
        return self.intent is not None and self.before.verdict is self.intent.expected \
            and self.after.verdict is not self.intent.expected

    @property
    def meets_intent(self) -> bool:
        """An intended path that meets its intent after the change."""
        return self.intent is not None and self.after.verdict is self.intent.expected


@dataclass(frozen=True, slots=True)
class PlanDiff:
    """Every path compared (``compared``, self-flows left out; ``outside`` of them to or from outside the
    cluster), the ones the change moved, and the declared paths whose verdict it flips (``intent``;
    ``intent_checked`` of them were decided)."""

    compared: int
    changes: tuple[PathChange, ...]
    intent: tuple[PathChange, ...] = ()
    intent_checked: int = 0
    outside: int = 0

    def of_kind(self, kind: ChangeKind) -> tuple[PathChange, ...]:
        return tuple(c for c in self.changes if c.kind is kind)

    @property
    def changed(self) -> bool:
        return bool(self.changes or self.intent)


def change_kind(flow: Flow, before: Decision, after: Decision) -> ChangeKind | None:
    """How ``before`` -> ``after`` moved ``flow``, or None when it did not (rules in the module docstring)."""
    was, now = before.verdict is Verdict.ALLOWED, after.verdict is Verdict.ALLOWED
    if was != now:
        return ChangeKind.OPENED if now else ChangeKind.CLOSED
    if not was:
        return ChangeKind.VERDICT_CHANGED if before.verdict is not after.verdict else None
    if flow.http is not None or flow.dns is not None:
        return None  # a request the proxy judged: allowed both times
    filtered_before, filtered_after = DecisionFacts.of(before).l7, DecisionFacts.of(after).l7
    if filtered_before is None and filtered_after is None:
        return None
    if filtered_before is None:
        return ChangeKind.NOW_L7_FILTERED
    if filtered_after is None:
        return ChangeKind.NO_LONGER_L7_FILTERED
    return ChangeKind.L7_CHANGED if filtered_before.passes != filtered_after.passes else None


def is_outside(flow: Flow) -> bool:
    """Whether one end of ``flow`` is outside the cluster (an entity, a block, an FQDN), not a workload."""
    return not (isinstance(flow.source, WorkloadEndpoint) and isinstance(flow.destination, WorkloadEndpoint))


def diff_decisions(pairs: Iterable[tuple[Flow, Decision, Decision]]) -> PlanDiff:
    """The paths compared and the changed ones in report order (by kind, then in the order given)."""
    compared = outside = 0
    changes: list[PathChange] = []
    for flow, before, after in pairs:
        if DecidedBy.SELF in (before.decided_by, after.decided_by):
            continue
        compared += 1
        outside += is_outside(flow)
        kind = change_kind(flow, before, after)
        if kind is not None:
            changes.append(PathChange(kind, flow, before, after))
    order = list(ChangeKind)
    return PlanDiff(compared, tuple(sorted(changes, key=lambda c: order.index(c.kind))), outside=outside)


def diff_plans(old: Sequence[PlannedFlow], new: Sequence[PlannedFlow]) -> PlanDiff:
    """Two plans of one topology (the same flows in the same order), compared path by path."""
    if len(old) != len(new) or any(o.flow != n.flow for o, n in zip(old, new, strict=True)):
        raise ValueError("the two plans have different flows; a diff needs one topology")
    return diff_decisions((n.flow, o.decision, n.decision) for o, n in zip(old, new, strict=True))


def outside_paths(*models: Model) -> tuple[RulePath, ...]:
    """The paths to or from outside the cluster that a rule of any of ``models`` names, each path once (as the
    first rule to name it), in order."""
    found: dict[Flow, RulePath] = {}
    for model in models:
        for path in rule_paths(model):
            if is_outside(path.flow):
                found.setdefault(path.flow, path)
    return tuple(found.values())


def example_port_notes(paths: Iterable[RulePath]) -> tuple[str, ...]:
    """What a reader of the diff must know of a port that is only an example: the rule names none."""
    return tuple(dict.fromkeys(
        f"{p.rule.describe()}: names no port; {p.flow.source.describe()} -> {p.flow.destination.describe()} is "
        f"compared on {p.flow.protocol}/{p.flow.port} as an example (the rule treats every port alike)"
        for p in paths if p.example_port))


def decide_paths(before: Model, after: Model, outside: Sequence[RulePath] | None = None,
                 ) -> tuple[list[PlannedFlow], list[PlannedFlow]]:
    """The paths a diff compares, decided under each model: the plan of the topology, then the paths to or
    from outside the cluster that a rule of either model names (``outside``: ``outside_paths``)."""
    flows = [p.flow for p in (outside_paths(before, after) if outside is None else outside)]
    return ([*decide_matrix(before), *(PlannedFlow(f, before.decide(f)) for f in flows)],
            [*decide_matrix(after), *(PlannedFlow(f, after.decide(f)) for f in flows)])


def intent_flips(before: Model, after: Model, intent: Iterable[IntentPath]) -> tuple[PathChange, ...]:
    """The declared paths whose verdict differs under the two models, in the order declared."""
    flipped = []
    for path in intent:
        was, now = before.decide(path.flow), after.decide(path.flow)
        if was.verdict is not now.verdict:
            kind = change_kind(path.flow, was, now) or ChangeKind.VERDICT_CHANGED
            flipped.append(PathChange(kind, path.flow, was, now, path))
    return tuple(flipped)


def diff_models(before: Model, after: Model, intent: Sequence[IntentPath] = (),
                plans: tuple[Sequence[PlannedFlow], Sequence[PlannedFlow]] | None = None) -> PlanDiff:
    """What the change from ``before`` to ``after`` does: every path ``decide_paths`` gives (or ``plans``, when
    the caller decided them already), compared, and the declared paths it flips."""
    old, new = plans if plans is not None else decide_paths(before, after)
    return replace(diff_plans(old, new), intent=intent_flips(before, after, intent), intent_checked=len(intent))
