"""Nothing reaches the pods in `default` except the paths the policies deliberately open.

`default-deny-ingress` isolates every pod in `default` for ingress. Two policies open holes:
`allow-monitoring-scrape` (Prometheus in `monitoring`, and only it, on the `metrics` port 9090) and
`allow-get-only` (my-api's 8080 from any peer, but only HTTP GET -- see test_l7_http.py). And
`allow-dns-egress`, being an egress policy, isolates `default` for egress: pods inside `default`
cannot reach each other either, not even my-api's open port.
"""

from __future__ import annotations

import pytest

from flowcheck.harness.checker import PathChecker

OUTSIDE_DEFAULT = ("tenant/client", "monitoring/grafana", "monitoring/prometheus")


@pytest.mark.parametrize("destination", ["default/my-api", "default/web"])
def test_only_prometheus_reaches_the_metrics_port(flowcheck_paths: PathChecker, destination: str) -> None:
    flowcheck_paths.expect("monitoring/prometheus", destination, port="metrics", verdict="allowed")
    flowcheck_paths.expect("monitoring/grafana", destination, port="metrics", verdict="dropped")
    flowcheck_paths.expect("tenant/client", destination, port="metrics", verdict="dropped")


def test_web_accepts_nothing_on_its_http_port(flowcheck_paths: PathChecker) -> None:
    for source in OUTSIDE_DEFAULT:
        flowcheck_paths.expect(source, "default/web", port=8080, verdict="dropped")


def test_my_api_http_port_is_open_at_l4_to_any_peer(flowcheck_paths: PathChecker) -> None:
    """allow-get-only names no peer, so a TCP connection from anywhere is accepted (by Cilium's
    proxy); what it may *send* is judged per request (test_l7_http.py)."""
    for source in OUTSIDE_DEFAULT:
        flowcheck_paths.expect(source, "default/my-api", port=8080, verdict="allowed")


def test_pods_inside_default_cannot_reach_each_other(flowcheck_paths: PathChecker) -> None:
    """allow-dns-egress isolates default's egress: only UDP/53 to kube-system leaves a default pod,
    so even my-api's port 8080, open to everyone else, is dropped at the sender."""
    flowcheck_paths.expect("default/web", "default/my-api", port=8080, verdict="dropped")
    flowcheck_paths.expect("default/web", "default/my-api", port=8080, http="GET /", verdict="dropped")
    flowcheck_paths.expect("default/web", "default/my-api", port="metrics", verdict="dropped")
    flowcheck_paths.expect("default/my-api", "default/web", port=8080, verdict="dropped")
    flowcheck_paths.expect("default/my-api", "default/web", port="metrics", verdict="dropped")
