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
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import pytest

from flowcheck.errors import TopologyError
from flowcheck.harness.backends import LiveBackend
from flowcheck.harness.expectations import Expectation, ExpectationError, make_expectation, path_text
from flowcheck.harness.live import RETRY_WAIT_S, LiveItem, Observation, live_item_for, probe
from flowcheck.model.engine import Decision, Model
from flowcheck.model.matrix import PlannedFlow
from flowcheck.report.records import CheckedFlow, decision_fields
from flowcheck.verdict import Verdict


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
        """Check every pending expectation; fail the test with all disagreements at once."""
        expectations, self._pending = self._pending, []
        if not expectations:
            return []
        context = self._context
        decisions = [e.decision if e.decision is not None else context.model.decide(e.flow) for e in expectations]
        observed, not_probed = self._probe_live(expectations, decisions)
        records = [self._record(e, d, observed.get(i), not_probed.get(i, ""))
                   for i, (e, d) in enumerate(zip(expectations, decisions, strict=True))]
        for record in records:
            context.record(record)
        self.checked.extend(records)
        failures = [r for r, e in zip(records, expectations, strict=True) if _failed(r, live_only=e.live_only)]
        if failures:
            pytest.fail(format_failures(failures, len(records)), pytrace=False)
        return records

    def _probe_live(self, expectations: Sequence[Expectation],
                    decisions: Sequence[Decision]) -> tuple[dict[int, Observation], dict[int, str]]:
        live = self._context.live
        if live is None:
            reason = f"not probed: {self._context.offline_reason or 'no live cluster'}"
            return {}, dict.fromkeys(range(len(expectations)), reason)
        items: dict[int, LiveItem] = {}
        not_probed: dict[int, str] = {}
        for index, (expectation, decision) in enumerate(zip(expectations, decisions, strict=True)):
            reference = expectation.verdict if expectation.verdict is not None else _model_reference(decision)
            item = live_item_for(live, expectation, self._context.next_key(), reference)
            if isinstance(item, str):
                not_probed[index] = f"not probed: {item}"
            else:
                items[index] = item
        results = probe(live, list(items.values()), timeout_s=self._context.probe_timeout_s,
                        retry_wait_s=self._context.retry_wait_s)
        return {index: results[item.key] for index, item in items.items()}, not_probed

    def _record(self, expectation: Expectation, decision: Decision, observation: Observation | None,
                not_probed: str) -> CheckedFlow:
        flow = expectation.flow
        if expectation.live_only and decision.verdict is Verdict.UNKNOWN and observation is None:
            not_probed = f"{LIVE_ONLY_UNSETTLED}; {not_probed}"
        return CheckedFlow(
            source=expectation.source, destination=expectation.destination, protocol=flow.protocol,
            port=flow.port, model=decision.verdict, request=expectation.request, expected=expectation.verdict,
            model_reasons=decision.reasons,
            observed=observation.verdict if observation else None,
            observed_detail=observation.detail if observation else not_probed,
            attempts=observation.attempts if observation else 0,
            evidence=observation.evidence if observation else (), test=self._test,
            **decision_fields(flow, decision),
        )


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


def _failed(record: CheckedFlow, *, live_only: bool = False) -> bool:
    if record.intent_mismatch and not (live_only and record.model is Verdict.UNKNOWN):
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
        elif record.observed_detail:
            lines.append(f"    observed  - ({record.observed_detail})")
        lines.append("")
    return "\n".join(lines).rstrip()


def _describe(record: CheckedFlow) -> str:
    return path_text(record.source, record.destination, record.protocol, record.port, record.request)
