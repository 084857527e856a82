"""Prometheus scrapes the metrics port (9090) of the pods in `default`; nobody else can.

allow-monitoring-scrape puts namespaceSelector and podSelector in ONE `from` entry, so both must
match: the pod must be labelled app.kubernetes.io/name=prometheus AND live in `monitoring`.
grafana (right namespace, wrong label) and tenant/client (right label, wrong namespace) prove both
halves. The policy opens port 9090 only: Prometheus gets nothing else in `default`, except what
allow-get-only opens to everyone (GET on my-api's 8080).
"""

from __future__ import annotations

import pytest

from flowcheck.harness.checker import PathChecker

SCRAPED = ("default/my-api", "default/web")


@pytest.mark.parametrize("target", SCRAPED)
def test_prometheus_scrapes_metrics(flowcheck_paths: PathChecker, target: str) -> None:
    flowcheck_paths.expect("monitoring/prometheus", target, port="metrics", http="GET /metrics", verdict="allowed")


@pytest.mark.parametrize("target", SCRAPED)
def test_scrape_needs_both_the_namespace_and_the_label(flowcheck_paths: PathChecker, target: str) -> None:
    flowcheck_paths.expect("monitoring/grafana", target, port="metrics", http="GET /metrics", verdict="dropped")
    flowcheck_paths.expect("tenant/client", target, port="metrics", http="GET /metrics", verdict="dropped")


def test_prometheus_gets_no_other_port(flowcheck_paths: PathChecker) -> None:
    flowcheck_paths.expect("monitoring/prometheus", "default/web", port=8080, verdict="dropped")
    flowcheck_paths.expect("monitoring/prometheus", "default/my-api", port=8080, http="GET /", verdict="allowed")
    flowcheck_paths.expect("monitoring/prometheus", "default/my-api", port=8080, http="POST /", verdict="l7-denied")
