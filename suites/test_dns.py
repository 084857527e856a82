"""DNS from `default`: UDP/53 to kube-system only, exactly as allow-dns-egress is written.

The team's design doc allows DNS "on UDP 53", and allow-dns-egress says exactly that. DNS also
uses TCP/53 -- resolvers retry over TCP when an answer is truncated (large records, many A records,
DNSSEC) -- and that is dropped: such lookups from `default` will time out. The policy is not changed
here; this suite states the consequence so it is a decision, not a surprise.
"""

from __future__ import annotations

import pytest

from flowcheck.harness.checker import PathChecker
from flowcheck.model.matrix import PlannedFlow

CLUSTER_NAME = "kubernetes.default.svc.cluster.local"
DEFAULT_PODS = ("default/my-api", "default/web")

pytestmark = pytest.mark.flowcheck_dns


@pytest.mark.parametrize("source", DEFAULT_PODS)
def test_default_pods_resolve_over_udp(flowcheck_paths: PathChecker, source: str) -> None:
    flowcheck_paths.expect(source, "kube-system/coredns", dns=CLUSTER_NAME, verdict="allowed")


@pytest.mark.parametrize("source", DEFAULT_PODS)
def test_dns_over_tcp_is_dropped_because_the_policy_allows_udp_only(flowcheck_paths: PathChecker, source: str) -> None:
    """TCP/53 is not in allow-dns-egress (UDP 53 only), so default's egress isolation drops it."""
    flowcheck_paths.expect(source, "kube-system/coredns", dns=CLUSTER_NAME, protocol="TCP", verdict="dropped")
    flowcheck_paths.expect(source, "kube-system/coredns", port=53, protocol="TCP", verdict="dropped")


@pytest.mark.parametrize("source", DEFAULT_PODS)
def test_default_egress_goes_nowhere_but_dns(flowcheck_paths: PathChecker, source: str) -> None:
    flowcheck_paths.expect(source, "tenant/client", port=8080, verdict="dropped")
    flowcheck_paths.expect(source, "monitoring/prometheus", port="web", verdict="dropped")
    flowcheck_paths.expect(source, "monitoring/grafana", port="http", verdict="dropped")


def test_pods_outside_default_are_not_restricted(flowcheck_paths: PathChecker) -> None:
    """No policy selects tenant or monitoring pods: their DNS, over UDP or TCP, is untouched."""
    flowcheck_paths.expect("tenant/client", "kube-system/coredns", dns=CLUSTER_NAME, verdict="allowed")
    flowcheck_paths.expect("tenant/client", "kube-system/coredns", dns=CLUSTER_NAME, protocol="TCP", verdict="allowed")
    flowcheck_paths.expect("monitoring/prometheus", "kube-system/coredns", dns=CLUSTER_NAME, verdict="allowed")


@pytest.mark.flowcheck_live
def test_default_pods_follow_the_model_everywhere(flowcheck_paths: PathChecker,
                                                  flowcheck_matrix: tuple[PlannedFlow, ...]) -> None:
    """Every other path out of `default` is probed live against the model's own prediction."""
    flowcheck_paths.expect_planned([p for p in flowcheck_matrix
                          if p.flow.source.describe() in DEFAULT_PODS
                          and not p.flow.destination.describe().startswith("kube-system/")])
