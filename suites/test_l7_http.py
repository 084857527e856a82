"""my-api answers HTTP GET on 8080 and nothing else (CiliumNetworkPolicy allow-get-only).

Other methods reach Cilium's Envoy proxy and are answered there with 403 `Access denied` -- an
`l7-denied` verdict, proven to come from the proxy (the probe server would have answered 200 with
its identity). Any other port of my-api stays dropped by default-deny-ingress, except the metrics
port for Prometheus.
"""

from __future__ import annotations

import pytest

from flowcheck.harness.checker import PathChecker

CLIENTS = ("tenant/client", "monitoring/grafana", "monitoring/prometheus")

pytestmark = pytest.mark.flowcheck_l7


@pytest.mark.parametrize("source", CLIENTS)
def test_get_on_my_api_is_allowed(flowcheck_paths: PathChecker, source: str) -> None:
    flowcheck_paths.expect(source, "default/my-api", port=8080, http="GET /", verdict="allowed")
    flowcheck_paths.expect(source, "default/my-api", port=8080, http="GET /orders/42", verdict="allowed")


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_other_methods_are_l7_denied_by_the_proxy(flowcheck_paths: PathChecker, method: str) -> None:
    flowcheck_paths.expect("tenant/client", "default/my-api", port=8080, http=f"{method} /orders", verdict="l7-denied")


def test_a_header_does_not_unlock_other_methods(flowcheck_paths: PathChecker) -> None:
    flowcheck_paths.expect("tenant/client", "default/my-api", port=8080, http="POST /", headers={"X-Token": "42"},
                 verdict="l7-denied")


def test_other_ports_of_my_api_are_dropped(flowcheck_paths: PathChecker) -> None:
    flowcheck_paths.expect("tenant/client", "default/my-api", port="metrics", http="GET /", verdict="dropped")
    flowcheck_paths.expect("monitoring/grafana", "default/my-api", port="metrics", verdict="dropped")
