"""A small run that exercises every verdict kind and every kind of mismatch.

Built from ``CheckedFlow`` values the way the plugin will build them; the evidence lines have the
shape of ``hubble observe`` compact output (recorded: ``tests/data/cluster/hubble-flows-reference.jsonl``).
"""

from __future__ import annotations

from flowcheck.report.records import CheckedFlow, MatrixReport
from flowcheck.verdict import Verdict

A, D, L7, U, R, E = (Verdict.ALLOWED, Verdict.DROPPED, Verdict.L7_DENIED, Verdict.UNKNOWN, Verdict.REFUSED,
                     Verdict.ERROR)

WEB = "default/web"
CLIENT = "tenant/client"
PROM = "monitoring/prometheus"


def sample_flows() -> tuple[CheckedFlow, ...]:
    return (
        CheckedFlow(WEB, "default/my-api", "TCP", 8080, A, request="GET /orders", expected=A,
                    model_reasons=("CiliumNetworkPolicy default/allow-get-only ingress rule 0: http GET /.* matched",),
                    observed=A, attempts=1, test="suites/test_api.py::test_web_may_get_orders"),
        CheckedFlow(WEB, "default/my-api", "TCP", 8080, L7, request="POST /orders", expected=L7,
                    model_reasons=("CiliumNetworkPolicy default/allow-get-only ingress rule 0: no http rule "
                                   "matches POST /orders",),
                    observed=L7, attempts=1,
                    evidence=("Jun 16 16:52:13.611: default/web:50908 (ID:2311) -> default/my-api:8080 (ID:36522) "
                              "http-request DROPPED (HTTP/1.1 POST http://my-api:8080/orders)",),
                    test="suites/test_api.py::test_web_may_not_post_orders"),
        CheckedFlow(CLIENT, "default/my-api", "TCP", 8080, D, expected=D,
                    model_reasons=("NetworkPolicy default/default-deny-ingress selects default/my-api; no ingress "
                                   "rule admits tenant/client",),
                    observed=D, attempts=1,
                    evidence=("Jun 16 16:52:14.002: tenant/client:41222 (ID:5120) -> default/my-api:8080 (ID:36522) "
                              "policy-verdict:none INGRESS DENIED (TCP Flags: SYN)",),
                    test="suites/test_tenancy.py::test_tenant_cannot_reach_my_api"),
        CheckedFlow(CLIENT, "kube-system/coredns", "UDP", 53, A, request="DNS A my-api.default.svc.cluster.local",
                    expected=A,
                    model_reasons=("CiliumNetworkPolicy tenant/allow-dns egress rule 0: kube-system/coredns "
                                   "UDP/53 matched",),
                    observed=D, attempts=3,
                    evidence=("Jun 16 16:52:15.100: tenant/client:38111 (ID:5120) -> kube-system/coredns:53 "
                              "(ID:102) policy-verdict:none EGRESS DENIED (UDP)",
                              "Jun 16 16:52:15.100: tenant/client:38111 (ID:5120) -> kube-system/coredns:53 "
                              "(ID:102) Policy denied DROPPED (UDP)"),
                    test="suites/test_dns.py::test_tenant_resolves_services"),
        CheckedFlow(PROM, "default/my-api", "TCP", 9090, D, expected=A,
                    model_reasons=("NetworkPolicy default/allow-prometheus ingress rule 0: namespaceSelector "
                                   "team=observability does not match namespace monitoring (labels: none)",),
                    observed=D, attempts=3,
                    evidence=("Jun 16 16:52:16.400: monitoring/prometheus:60002 (ID:7001) -> default/my-api:9090 "
                              "(ID:36522) policy-verdict:none INGRESS DENIED (TCP Flags: SYN)",),
                    test="suites/test_monitoring.py::test_prometheus_scrapes_my_api"),
        CheckedFlow(PROM, "kube-system/coredns", "UDP", 53, A, expected=A,
                    model_reasons=("no policy selects monitoring/prometheus for egress",),
                    observed=R, observed_detail="ICMP port unreachable: nothing listens on 53/UDP", attempts=1,
                    test="suites/test_dns.py::test_prometheus_resolves"),
        CheckedFlow(WEB, "kube-system/coredns", "UDP", 53, A, expected=A,
                    model_reasons=("CiliumNetworkPolicy default/allow-dns egress rule 0: kube-system/coredns "
                                   "UDP/53 matched",),
                    observed=E, observed_detail="exec into default/web failed: container not running",
                    attempts=0, test="suites/test_dns.py::test_web_resolves"),
        CheckedFlow(CLIENT, "default/my-api", "ICMP", None, D, request="echo-request", expected=D,
                    model_reasons=("NetworkPolicy default/default-deny-ingress selects default/my-api; ICMP is not "
                                   "admitted by any rule",),
                    observed=D, attempts=1, test="suites/test_tenancy.py::test_tenant_cannot_ping_my_api"),
        CheckedFlow(WEB, "world", "TCP", 443, U, request="fqdn api.example.com",
                    model_reasons=("CiliumNetworkPolicy default/egress-fqdn egress rule 0: toFQDNs needs the "
                                   "DNS answers the source saw at run time; the model cannot decide",),
                    observed_detail="external destinations are not probed",
                    test="suites/test_egress.py::test_web_reaches_example_api"),
    )


def sample_report() -> MatrixReport:
    return MatrixReport(sample_flows(), {"cilium_version": "1.16.5", "kind_node_image": "kindest/node:v1.31.0",
                                         "run": "nightly #42"})
