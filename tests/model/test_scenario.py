"""This repository's scenario: manifests/network-policies/ against fixtures/topology.yaml.

What the four policies mean together (the comments in the manifests state the intent):

* default-deny-ingress isolates every `default` pod for ingress;
* allow-get-only lets any peer send HTTP GET to my-api:8080 -- anything else there gets a 403;
* allow-monitoring-scrape lets monitoring/prometheus (namespace AND label) scrape port `metrics`;
* allow-dns-egress lets `default` pods send UDP/53 to kube-system -- and, being an egress policy,
  isolates every `default` pod for egress: TCP/53 is dropped, and so is pod-to-pod traffic inside
  `default` (web -> my-api:8080 GET is dropped at web's egress, before my-api's ingress rule matters).
"""

from __future__ import annotations

import pytest

from flowcheck.model.engine import Model
from flowcheck.model.flows import EntityEndpoint, Flow, HttpRequest, WorkloadEndpoint
from flowcheck.model.identity import Entity
from flowcheck.model.matrix import decide_matrix
from flowcheck.model.policies import load_policies
from flowcheck.model.topology import load_topology
from flowcheck.verdict import Verdict
from tests.conftest import POLICIES_DIR, REPO_ROOT

GET = HttpRequest("GET", "/")
POST = HttpRequest("POST", "/")


@pytest.fixture(scope="module")
def model() -> Model:
    return Model(load_topology(REPO_ROOT / "fixtures" / "topology.yaml"), load_policies([POLICIES_DIR]))


def decide(model: Model, src: str, dst: str, port: int, protocol: str = "TCP",
           http: HttpRequest | None = None) -> Verdict:
    return model.decide(Flow.between(src, dst, port=port, protocol=protocol, http=http)).verdict


def test_default_pods_receive_only_get_on_my_api_and_prometheus_scrapes(model: Model) -> None:
    """Every flow into `default` from outside it: only GET my-api:8080 and prometheus -> :9090 pass."""
    allowed = set()
    for planned in decide_matrix(model):
        flow = planned.flow
        if not flow.destination.describe().startswith("default/") or flow.source.describe().startswith("default/"):
            continue
        if planned.decision.verdict is Verdict.ALLOWED:
            allowed.add((flow.source.describe(), flow.destination.describe(), flow.port))
    # TCP/8080 to my-api is allowed at L4 for every source (the proxy then judges each request).
    assert allowed == {
        ("monitoring/prometheus", "default/my-api", 8080), ("monitoring/grafana", "default/my-api", 8080),
        ("tenant/client", "default/my-api", 8080), ("kube-system/coredns", "default/my-api", 8080),
        ("monitoring/prometheus", "default/my-api", 9090), ("monitoring/prometheus", "default/web", 9090),
    }
    for src in ("monitoring/prometheus", "monitoring/grafana", "tenant/client", "kube-system/coredns"):
        assert decide(model, src, "default/my-api", 8080, http=GET) is Verdict.ALLOWED
        assert decide(model, src, "default/my-api", 8080, http=POST) is Verdict.L7_DENIED
        assert decide(model, src, "default/web", 8080) is Verdict.DROPPED


def test_post_to_my_api_is_l7_denied_naming_the_policy(model: Model) -> None:
    d = model.decide(Flow.between("tenant/client", "default/my-api", port=8080, http=POST))
    assert d.verdict is Verdict.L7_DENIED
    assert d.reasons[0] == ("CiliumNetworkPolicy default/allow-get-only ingress rule 0: http POST / does not match "
                            "http GET (Envoy answers 403)")


def test_only_prometheus_in_monitoring_may_scrape(model: Model) -> None:
    """grafana: right namespace, wrong label; tenant/client: right label, wrong namespace (AND, not OR)."""
    assert decide(model, "monitoring/prometheus", "default/web", 9090) is Verdict.ALLOWED
    assert decide(model, "monitoring/prometheus", "default/my-api", 9090) is Verdict.ALLOWED
    assert decide(model, "monitoring/grafana", "default/my-api", 9090) is Verdict.DROPPED
    assert decide(model, "tenant/client", "default/my-api", 9090) is Verdict.DROPPED


def test_dns_udp_is_allowed_and_tcp_is_dropped(model: Model) -> None:
    for src in ("default/web", "default/my-api"):
        assert decide(model, src, "kube-system/coredns", 53, "UDP") is Verdict.ALLOWED
        d = model.decide(Flow.between(src, "kube-system/coredns", port=53, protocol="TCP"))
        assert d.verdict is Verdict.DROPPED
        assert d.reasons[0].startswith("NetworkPolicy default/allow-dns-egress egress: no rule allows TCP/53 to "
                                       "kube-system/coredns")


def test_dns_egress_policy_isolates_pod_to_pod_egress_inside_default(model: Model) -> None:
    """allow-dns-egress isolates default's egress: web -> my-api:8080 GET is dropped at web's egress."""
    d = model.decide(Flow.between("default/web", "default/my-api", port=8080, http=GET))
    assert d.verdict is Verdict.DROPPED
    assert d.reasons[0] == ("NetworkPolicy default/allow-dns-egress egress: no rule allows TCP/8080 to "
                            "default/my-api (default/web is isolated for egress)")
    # The ingress side alone would have let the GET through; both sides are reported.
    assert "CiliumNetworkPolicy default/allow-get-only ingress rule 0: http GET matched" in d.reasons
    assert decide(model, "default/my-api", "monitoring/prometheus", 9090) is Verdict.DROPPED
    world = Flow(WorkloadEndpoint("default/web"), EntityEndpoint(Entity.WORLD, "1.1.1.1"), "TCP", 443)
    assert model.decide(world).verdict is Verdict.DROPPED


def test_pods_outside_default_are_unrestricted(model: Model) -> None:
    assert decide(model, "tenant/client", "monitoring/grafana", 3000) is Verdict.ALLOWED
    assert decide(model, "monitoring/grafana", "kube-system/coredns", 53, "TCP") is Verdict.ALLOWED


def test_the_kubelet_still_reaches_default_pods(model: Model) -> None:
    """allow-localhost (docs/semantics.md [Host, nodes and allow-localhost]): host -> local pod is allowed despite
    default-deny-ingress."""
    flow = Flow(EntityEndpoint(Entity.HOST), WorkloadEndpoint("default/web"), "TCP", 8080)
    assert model.decide(flow).verdict is Verdict.ALLOWED


def test_plan_covers_every_pair_and_self_flows_are_allowed(model: Model) -> None:
    """The plan is square (every workload to every served port of every workload); a pod reaching its
    own IP stays inside its network namespace, so self-flows are allowed without consulting policy."""
    planned = decide_matrix(model)
    served = sum(len(w.ports) for w in model.topology.workloads)
    assert len(planned) == len(model.topology.workloads) * served
    selfs = [p for p in planned if p.flow.source == p.flow.destination]
    assert len(selfs) == served
    assert all(p.decision.verdict is Verdict.ALLOWED and "its own IP" in p.decision.reasons[0] for p in selfs)
    assert decide_matrix(model, port=53, protocol="udp")[0].flow.protocol == "UDP"
    # The plan's fast path gives exactly what decide() gives.
    for p in planned:
        assert model.decide(p.flow) == p.decision
