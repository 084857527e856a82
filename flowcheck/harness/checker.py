"""``flowcheck_paths``: the object suites declare intended paths on, and the two checks each one gets.

A suite calls ``flowcheck_paths.expect(...)`` for every path it cares about; at the end of the test (or at an
explicit ``flowcheck_paths.check()``) every expectation is checked against the policy model -- always, no
cluster needed -- and, when a live back end is attached, probed on the cluster. The test fails
when intent and model disagree (that fails in every pull request), or when the cluster did
something else (that fails nightly and before upgrades), and the message shows all three views
side by side: expected, model (with its reasons) and observed (with the Hubble flows). A probe
that could not observe a verdict (``error``, or ``refused`` where a server should answer) is a
failure too, never a pass.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import pytest

from flowcheck.errors import TopologyError
from flowcheck.harness.backends import LiveBackend, ProbeRoute
from flowcheck.harness.expectations import Expectation, ExpectationError, make_expectation, path_text
from flowcheck.harness.live import (
    REALIZATION_TIMEOUT_S,
    RETRY_WAIT_S,
    ControlFinder,
    LiveItem,
    Observation,
    live_items_for,
    probe,
)
from flowcheck.harness.run_ledger import RunLedger
from flowcheck.model.engine import Decision, Model
from flowcheck.model.flows import Flow
from flowcheck.model.matrix import PlannedFlow
from flowcheck.report.records import CheckedFlow, decision_fields
from flowcheck.verdict import Verdict

NOT_CHECKED = "not checked"
CHANGED_DURING_RUN = "the path changed during the run"


@dataclass(slots=True)
class HarnessContext:
    """What every ``flowcheck_paths`` object of a run shares."""

    model: Model
    live: LiveBackend | None
    offline_reason: str | None
    probe_timeout_s: float
    record: Callable[[CheckedFlow], None]
    next_key: Callable[[], int]
    retry_wait_s: float = RETRY_WAIT_S
    ledger: RunLedger = dataclasses.field(default_factory=RunLedger)
    realization_timeout_s: float = REALIZATION_TIMEOUT_S


LIVE_ONLY_UNSETTLED = "live only, and the model cannot decide it: only a cluster can check it"
"""How the record of a live-only path the model answered ``unknown`` for, and no cluster probed, says so."""


class PathChecker:
    """The ``flowcheck_paths`` fixture: declare intended paths, then ``check()`` them (done for you at test end)."""

    def __init__(self, context: HarnessContext, test: str) -> None:
        self._context = context
        self._test = test
        self._pending: list[Expectation] = []
        self.checked: list[CheckedFlow] = []

    @property
    def pending(self) -> int:
        return len(self._pending)

    def expect(self, source: str, destination: str, *, verdict: str | Verdict, port: int | str | None = None,
               protocol: str | None = None, http: str | None = None, headers: Mapping[str, str] | None = None,
               host: str | None = None, dns: str | None = None, qtype: str = "A",
               live_only: bool = False) -> Expectation:
        """Declare that ``source`` -> ``destination`` on ``port`` (a number or the destination's port
        name) must end as ``verdict`` (``allowed``, ``dropped`` or ``l7-denied``). ``http="POST /x"``
        makes it an HTTP request (``headers``, ``host`` optional), ``dns="name"`` a DNS query
        (UDP/53 unless ``protocol``/``port`` say otherwise). Either end may be outside the topology
        (``world``, ``kube-apiserver``, ``api.example.com``, ``1.1.1.1``, ``10.0.0.0/8``); ``live_only``
        says only a cluster can settle the path (a model ``unknown`` is then reported, not failed)."""
        try:
            expectation = make_expectation(self._context.model.topology, source, destination, verdict=verdict,
                                           port=port, protocol=protocol, http=http, headers=headers, host=host,
                                           dns=dns, qtype=qtype, live_only=live_only)
        except (ExpectationError, TopologyError) as exc:
            mistake = f"{exc.message} (topology {exc.path})" if isinstance(exc, TopologyError) else str(exc)
        else:
            self._pending.append(expectation)
            return expectation
        # A mistake in the suite, not in flowcheck: one line saying where and what, no traceback (and
        # outside the except block, so pytest shows no chained exception either).
        given = {"port": port, "protocol": protocol, "http": http, "headers": headers, "host": host, "dns": dns,
                 "qtype": qtype if qtype != "A" else None, "verdict": verdict, "live_only": live_only or None}
        call = ", ".join([repr(source), repr(destination),
                          *(f"{name}={value!r}" for name, value in given.items() if value is not None)])
        pytest.fail(f"{_caller()}: flowcheck_paths.expect({call}): {mistake}", pytrace=False)

    def add(self, expectation: Expectation) -> None:
        """Declare an expectation already built and checked (an entry of an intent file)."""
        self._pending.append(expectation)

    def expect_planned(self, planned: Sequence[PlannedFlow]) -> None:
        """Probe the model's own predictions (the generated matrix): the model is the reference.

        Each planned decision is kept, so the check reuses it instead of deciding the flow again."""
        self._pending.extend(Expectation(p.flow, None, decision=p.decision) for p in planned)

    def check(self) -> list[CheckedFlow]:
        """Check every pending expectation; fail the test with all disagreements at once.

        Whatever stops the check part-way (Ctrl-C, a bug) still records the expectations it had taken,
        as not checked, so the run's report counts them instead of losing them."""
        expectations, self._pending = self._pending, []
        if not expectations:
            return []
        context = self._context
        try:
            decisions = [e.decision if e.decision is not None else context.model.decide(e.flow) for e in expectations]
            observed, not_probed = self._probe_live(expectations, decisions)
        except BaseException as exc:
            self.record_unchecked(expectations, f"{NOT_CHECKED}: the check stopped ({type(exc).__name__}: {exc})")
            raise
        made = [(record, e) for i, (e, d) in enumerate(zip(expectations, decisions, strict=True))
                for record in self._records(e, d, observed.get(i, []), not_probed.get(i, ""))]
        records = [record for record, _ in made]
        for record in records:
            context.record(record)
        self.checked.extend(records)
        failures = [r for r, _ in made if _failed(r)]
        if failures:
            pytest.fail(format_failures(failures, len(records)), pytrace=False)
        return records

    def record_unchecked(self, expectations: Sequence[Expectation] | None = None, reason: str = "") -> None:
        """Record expectations (by default the pending ones) as declared but not checked, with why."""
        if expectations is None:
            expectations, self._pending = self._pending, []
        for expectation in expectations:
            flow = expectation.flow
            decision = expectation.decision
            if decision is None:
                with contextlib.suppress(Exception):  # the model is what may have failed
                    decision = self._context.model.decide(flow)
            reasons = decision.reasons if decision else ("not decided: the check did not run",)
            record = CheckedFlow(source=expectation.source, destination=expectation.destination, protocol=flow.protocol,
                                 port=flow.port, model=decision.verdict if decision else Verdict.UNKNOWN,
                                 request=expectation.request, expected=expectation.verdict,
                                 model_reasons=reasons, observed_detail=reason or NOT_CHECKED, test=self._test)
            self._context.record(record)
            self.checked.append(record)

    def _probe_live(self, expectations: Sequence[Expectation], decisions: Sequence[Decision]
                    ) -> tuple[dict[int, list[Observation]], dict[int, str]]:
        live = self._context.live
        if live is None:
            reason = f"not probed: {self._context.offline_reason or 'no live cluster'}"
            return {}, dict.fromkeys(range(len(expectations)), reason)
        items: dict[int, list[LiveItem]] = {}
        not_probed: dict[int, str] = {}
        for index, (expectation, decision) in enumerate(zip(expectations, decisions, strict=True)):
            reference = expectation.verdict if expectation.verdict is not None else _model_reference(decision)
            made = live_items_for(live, expectation, self._context.next_key, reference)
            if isinstance(made, str):
                not_probed[index] = f"not probed: {made}"
            else:
                items[index] = made
        results = probe(live, [item for made in items.values() for item in made],
                        timeout_s=self._context.probe_timeout_s, retry_wait_s=self._context.retry_wait_s,
                        ledger=self._context.ledger, where=self._test,
                        controls=allowed_paths_into(self._context.model, live),
                        realization_timeout_s=self._context.realization_timeout_s)
        return {index: [results[item.key] for item in made] for index, made in items.items()}, not_probed

    def _records(self, expectation: Expectation, decision: Decision, observations: Sequence[Observation],
                 not_probed: str) -> list[CheckedFlow]:
        """One record per route the path was probed on (one, not probed, when it was not)."""
        flow = expectation.flow
        if expectation.live_only and decision.verdict is Verdict.UNKNOWN and not observations:
            not_probed = f"{LIVE_ONLY_UNSETTLED}; {not_probed}"
        base = CheckedFlow(
            source=expectation.source, destination=expectation.destination, protocol=flow.protocol,
            port=flow.port, model=decision.verdict, request=expectation.request, expected=expectation.verdict,
            model_reasons=decision.reasons, observed_detail=not_probed, test=self._test,
            live_only=expectation.live_only, **decision_fields(flow, decision))
        if not observations:
            return [base]
        return [_with_route(dataclasses.replace(
            base, observed=o.verdict, observed_detail=_detail(o), attempts=o.attempts, evidence=o.evidence,
            evidence_state=o.evidence_state), o.route) for o in observations]


def _detail(observation: Observation) -> str:
    if observation.conflict:
        return f"{observation.detail} -- and {observation.conflict}: {CHANGED_DURING_RUN}"
    return observation.detail


def _with_route(record: CheckedFlow, route: ProbeRoute | None) -> CheckedFlow:
    if route is None:
        return record
    return dataclasses.replace(record, source_node=route.source_node, destination_node=route.destination_node,
                               placement=route.placement, probed_via=f"{route.source} -> {route.destination}")


def allowed_paths_into(model: Model, live: LiveBackend) -> ControlFinder:
    """Control paths for the live probing: flows the model predicts allowed into a workload, from sources the
    agent can run in, on the TCP and UDP ports the workload serves (at most a few)."""
    def find(destination: str) -> list[Flow]:
        target = model.topology.workload(destination)
        found = []
        for source in model.topology.workloads:
            if source.ref == destination or live.cannot_probe_from(source.ref):
                continue
            for port in target.ports:
                if port.protocol not in ("TCP", "UDP"):
                    continue
                flow = Flow.between(source.ref, destination, port=port.port, protocol=port.protocol)
                if model.decide(flow).verdict is Verdict.ALLOWED:
                    found.append(flow)
                    break
            if len(found) >= 3:
                break
        return found

    return find


def _caller() -> str:
    """``file:line`` of the suite's ``flowcheck_paths.expect`` call (two frames up: ``expect``, then its caller)."""
    frame = sys._getframe(2)
    filename = frame.f_code.co_filename
    with contextlib.suppress(ValueError):  # on another drive (Windows): keep the absolute path
        filename = os.path.relpath(filename)
    return f"{filename}:{frame.f_lineno}"


def _model_reference(decision: Decision) -> Verdict | None:
    """With no stated intent the model is the reference -- unless it could not decide."""
    return None if decision.verdict is Verdict.UNKNOWN else decision.verdict


def _failed(record: CheckedFlow) -> bool:
    if record.intent_mismatch:  # never for a live-only path the model cannot decide (``CheckedFlow.live_only``)
        return True
    if CHANGED_DURING_RUN in record.observed_detail:
        return True
    if record.observed is None:
        return False
    if record.observed in (Verdict.ERROR, Verdict.REFUSED):
        return True
    if record.expected is None and record.model is Verdict.UNKNOWN:
        return False  # nothing to compare the observation with; the report still shows it
    return record.live_mismatch


def format_failures(failures: Sequence[CheckedFlow], total: int) -> str:
    """The failure message: every disagreeing path with expected, model and observed side by side."""
    lines = [f"flowcheck: {len(failures)} of {total} paths do not behave as intended", ""]
    for record in failures:
        lines.append(f"✗ {_describe(record)}")
        if record.expected is not None:
            lines.append(f"    expected  {record.expected.value}")
        marker = "   <- intent and model disagree" if record.intent_mismatch else ""
        lines.append(f"    model     {record.model.value}{marker}")
        lines.extend(f"      {reason}" for reason in record.model_reasons)
        if record.observed is not None:
            attempts = f" after {record.attempts} probes" if record.attempts > 1 else ""
            problem = "   <- the probe itself failed: not a verdict" if record.observed in (
                Verdict.ERROR, Verdict.REFUSED) else ""
            lines.append(f"    observed  {record.observed.value}{attempts}: {record.observed_detail}{problem}")
            lines.extend(f"    hubble    {line}" for line in record.evidence)
            if record.evidence_state == "none":
                lines.append("    hubble    (no evidence: no flow confirmed or contradicted this observation)")
        elif record.observed_detail:
            lines.append(f"    observed  - ({record.observed_detail})")
        lines.append("")
    return "\n".join(lines).rstrip()


def _describe(record: CheckedFlow) -> str:
    text = path_text(record.source, record.destination, record.protocol, record.port, record.request)
    if record.probed_via:
        where = f"{record.placement}: " if record.placement else ""
        text += f"  [{where}{record.probed_via}]"
    return text
