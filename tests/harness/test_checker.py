"""The ``flowcheck_paths`` checker against a fake live back end: batching, retries, failures, records,
evidence per probe, placement, realization, reachability.

The fake executor answers plans the way the real agent prints results, so the library's real plan
building, result parsing and classification run here; only the cluster is scripted -- by a fixed
table written from the policy text (``scenario_decider``), never by the model the expectations are
checked against, so "observed == expected" is a real cross-check of model and table.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import pytest

from flowcheck.harness.checker import HarnessContext, PathChecker
from flowcheck.harness.live import MAX_ROUNDS
from flowcheck.model.engine import Decision, Model
from flowcheck.model.flows import Flow
from flowcheck.model.matrix import decide_matrix
from flowcheck.model.policies import load_policies
from flowcheck.model.topology import load_topology
from flowcheck.report.records import CheckedFlow
from flowcheck.verdict import Verdict
from tests.conftest import POLICIES_DIR, REPO_ROOT
from tests.harness.fakes import FakeBackend, FakeExecutor, addresses_for, scenario_decider


@pytest.fixture(scope="module")
def model() -> Model:
    return Model(load_topology(REPO_ROOT / "fixtures" / "topology.yaml"), load_policies([POLICIES_DIR]))


def _checker(model: Model, backend: FakeBackend | None, recorded: list[CheckedFlow]) -> PathChecker:
    counter = itertools.count()
    context = HarnessContext(model=model, live=backend, offline_reason="--flowcheck-cluster=none", probe_timeout_s=0.5,
                             record=recorded.append, next_key=lambda: next(counter), retry_wait_s=0.0)
    return PathChecker(context, "tests/harness/test_checker.py::demo")


def _backend(model: Model, overrides: Mapping[str, Sequence[str]] | None = None, *, hubble: bool = True,
             contradict: Sequence[str] = (), lagging: Sequence[Sequence[str]] = ()) -> FakeBackend:
    executor = FakeExecutor(addresses_for(model.topology), scenario_decider(overrides))
    existing = [w.ref for w in model.topology.workloads if w.existing]
    return FakeBackend(executor, existing, hubble=hubble, contradict=contradict, lagging=lagging)


def test_offline_checks_the_model_and_records_why_nothing_was_probed(model: Model) -> None:
    recorded: list[CheckedFlow] = []
    paths = _checker(model, None, recorded)
    paths.expect("tenant/client", "default/my-api", port=8080, http="POST /", verdict="l7-denied")
    [record] = paths.check()
    assert (record.expected, record.model, record.observed) == (Verdict.L7_DENIED, Verdict.L7_DENIED, None)
    assert record.observed_detail == "not probed: --flowcheck-cluster=none"
    assert recorded == [record]


def test_intent_and_model_disagreeing_fails_offline_with_the_reasons(model: Model) -> None:
    paths = _checker(model, None, [])
    paths.expect("tenant/client", "default/my-api", port=8080, http="POST /", verdict="allowed")
    with pytest.raises(pytest.fail.Exception) as failure:
        paths.check()
    text = str(failure.value)
    assert "1 of 1 paths do not behave as intended" in text
    assert "expected  allowed" in text
    assert "model     l7-denied   <- intent and model disagree" in text
    assert "CiliumNetworkPolicy default/allow-get-only ingress rule 0" in text


def test_all_probes_of_one_source_go_in_one_agent_run(model: Model) -> None:
    backend = _backend(model)
    paths = _checker(model, backend, [])
    for port in (8080, 9090):
        paths.expect("tenant/client", "default/web", port=port, verdict="dropped")
    paths.expect("tenant/client", "default/my-api", port=8080, http="GET /", verdict="allowed")
    paths.expect("monitoring/prometheus", "default/web", port=9090, verdict="allowed")
    records = paths.check()
    runs = sorted((source, len(ids)) for source, ids in backend.executor.runs)
    assert runs == [("monitoring/prometheus", 1), ("tenant/client", 3)]
    assert all(r.observed == r.expected and r.attempts == 1 for r in records)


def test_a_result_that_agrees_is_never_reprobed_and_a_drop_costs_one_probe(model: Model) -> None:
    backend = _backend(model, {"tenant/client->default/my-api:9090": ["allowed", "dropped"]})
    paths = _checker(model, backend, [])
    paths.expect("tenant/client", "default/my-api", port=9090, verdict="dropped")
    paths.expect("tenant/client", "default/web", port=8080, verdict="dropped")
    flaky, steady = paths.check()
    assert flaky.attempts == 2
    assert steady.attempts == 1
    second_round = backend.executor.runs[1]
    assert second_round == ("tenant/client", [second_round[1][0]])
    assert len(backend.executor.runs) == 2


def test_persistent_disagreement_stops_after_the_bounded_rounds_and_fails_with_evidence(model: Model) -> None:
    backend = _backend(model, {"tenant/client->default/web:8080": ["allowed"]})
    paths = _checker(model, backend, [])
    paths.expect("tenant/client", "default/web", port=8080, verdict="dropped")
    with pytest.raises(pytest.fail.Exception) as failure:
        paths.check()
    assert len(backend.executor.runs) == MAX_ROUNDS
    [checked] = paths.checked
    assert (checked.observed, checked.attempts) == (Verdict.ALLOWED, MAX_ROUNDS)
    text = str(failure.value)
    assert f"observed  allowed after {MAX_ROUNDS} probes: TCP connected; HTTP request answered by " in text
    assert "hubble    FORWARDED ingress default/web:8080 -> tenant/client:" in text  # the last probe's own flow


def test_a_probe_error_is_a_failure_never_a_pass(model: Model) -> None:
    backend = _backend(model, {"tenant/client->default/web:8080": ["refused"]})
    paths = _checker(model, backend, [])
    paths.expect("tenant/client", "default/web", port=8080, verdict="dropped")
    with pytest.raises(pytest.fail.Exception, match="the probe itself failed: not a verdict"):
        paths.check()


def test_l7_denial_is_observed_from_envoys_403(model: Model) -> None:
    backend = _backend(model)
    paths = _checker(model, backend, [])
    paths.expect("tenant/client", "default/my-api", port=8080, http="DELETE /orders", verdict="l7-denied")
    [record] = paths.check()
    assert record.observed is Verdict.L7_DENIED
    assert "denied by Cilium's L7 proxy" in record.observed_detail
    assert record.evidence_state == "confirmed"
    assert record.evidence[0].startswith("DROPPED ingress tenant/client:4")
    assert record.evidence[0].endswith("-> default/my-api:8080 HTTP DELETE / (request)")


def test_every_probe_is_checked_against_its_own_flows_in_one_query(model: Model) -> None:
    backend = _backend(model)
    paths = _checker(model, backend, [])
    paths.expect("tenant/client", "default/my-api", port=8080, http="GET /", verdict="allowed")
    paths.expect("tenant/client", "default/web", port=8080, verdict="dropped")
    allowed, dropped = paths.check()
    assert (allowed.evidence_state, dropped.evidence_state) == ("confirmed", "confirmed")
    assert allowed.evidence[0].startswith("FORWARDED")
    assert dropped.evidence[0].startswith("DROPPED POLICY_DENIED")
    [queries] = backend.evidence_calls
    assert [q.source_port for q in queries] == [40000, 40001]  # the 5-tuple the agent reported


def test_existing_sources_are_not_probed_and_say_why(model: Model) -> None:
    backend = _backend(model)
    paths = _checker(model, backend, [])
    paths.expect("kube-system/coredns", "default/web", port=8080, verdict="dropped")
    [record] = paths.check()
    assert record.observed is None
    assert record.observed_detail == "not probed: kube-system/coredns is an existing pod"
    assert backend.executor.runs == []


def test_dns_to_an_existing_resolver_is_a_dns_probe(model: Model) -> None:
    backend = _backend(model)
    paths = _checker(model, backend, [])
    paths.expect("default/web", "kube-system/coredns", dns="kubernetes.default.svc.cluster.local",
                 verdict="allowed")
    paths.expect("default/web", "kube-system/coredns", dns="kubernetes.default.svc.cluster.local",
                 protocol="TCP", verdict="dropped")
    udp, tcp = paths.check()
    assert (udp.observed, tcp.observed) == (Verdict.ALLOWED, Verdict.DROPPED)
    assert udp.request == "DNS A kubernetes.default.svc.cluster.local"


def test_the_model_matrix_is_probed_against_the_models_own_verdicts(model: Model) -> None:
    """The fixed table agrees with the model on every path from tenant/client but the scripted one."""
    backend = _backend(model, {"tenant/client->default/web:9090": ["allowed"]})
    paths = _checker(model, backend, [])
    paths.expect_planned([p for p in decide_matrix(model) if p.flow.source.describe() == "tenant/client"])
    with pytest.raises(pytest.fail.Exception) as failure:
        paths.check()
    assert "1 of 9 paths do not behave as intended" in str(failure.value)
    assert "tenant/client -> default/web TCP/9090" in str(failure.value)
    assert all(r.expected is None for r in paths.checked)


def test_a_table_that_disagrees_with_the_model_fails_the_check(model: Model) -> None:
    """The fake cluster decides independently of the model: the check can fail (the failing variant of
    every passing test above)."""
    backend = _backend(model, {"monitoring/prometheus->default/web:9090": ["dropped"]})
    paths = _checker(model, backend, [])
    paths.expect("monitoring/prometheus", "default/web", port=9090, verdict="allowed")
    with pytest.raises(pytest.fail.Exception, match="observed  dropped after 3 probes"):
        paths.check()


def test_a_planned_flow_keeps_its_planned_decision_and_is_not_decided_again(
        model: Model, monkeypatch: pytest.MonkeyPatch) -> None:
    planned = [p for p in decide_matrix(model) if p.flow.source.describe() == "tenant/client"]
    decided: list[Flow] = []
    decide = model.decide

    def counting_decide(flow: Flow) -> Decision:
        decided.append(flow)
        return decide(flow)

    monkeypatch.setattr(model, "decide", counting_decide)
    paths = _checker(model, None, [])
    paths.expect_planned(planned)
    paths.expect("tenant/client", "default/my-api", port=8080, http="POST /", verdict="l7-denied")
    *matrix, stated = paths.check()
    assert [(r.model, r.model_reasons) for r in matrix] == [(p.decision.verdict, p.decision.reasons) for p in planned]
    assert stated.model is Verdict.L7_DENIED
    assert len(decided) == 1  # only the stated expectation needed the model
