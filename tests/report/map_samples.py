"""Synthetic inputs for the service map: a 50-workload plan, a run with two mismatches, and a diff.

Seeded and rule-based, so every call returns the same records. The plan has the shape
``flowcheck plan`` gives (every workload to every workload on every port it serves, self-flows
included) plus external destinations named the way records name them (``world (1.1.1.1)``, an
FQDN, a CIDR, ``kube-apiserver``). Verdicts follow a small rule table, the way a default-deny
repository with a few allow rules behaves: most paths are dropped.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

from flowcheck.report.records import CheckedFlow
from flowcheck.verdict import Verdict

A, D, L7, U = Verdict.ALLOWED, Verdict.DROPPED, Verdict.L7_DENIED, Verdict.UNKNOWN

NAMESPACES: dict[str, tuple[str, ...]] = {
    "frontend": ("web", "web-canary", "bff", "static", "auth-ui", "admin-ui", "cdn-sync", "ws-gateway", "search-ui"),
    "backend": ("orders", "catalog", "cart", "users", "search", "reviews", "inventory", "shipping", "notify",
                "recommend", "pricing", "gateway"),
    "data": ("postgres", "redis", "kafka", "zookeeper", "elastic", "minio", "mongo", "etl"),
    "payments": ("payments-api", "fraud", "ledger", "refunds", "billing", "invoices", "psp-adapter", "vault-agent"),
    "monitoring": ("prometheus", "grafana", "alertmanager", "loki", "tempo", "node-exporter", "blackbox"),
    "kube-system": ("coredns", "metrics-server", "hubble-relay", "cilium-operator", "kube-state", "ingress"),
}
SERVES: dict[str, tuple[tuple[int, str], ...]] = {
    "postgres": ((5432, "TCP"),), "redis": ((6379, "TCP"),), "kafka": ((9092, "TCP"),),
    "zookeeper": ((2181, "TCP"),), "elastic": ((9200, "TCP"),), "minio": ((9000, "TCP"),),
    "mongo": ((27017, "TCP"),), "coredns": ((53, "UDP"), (53, "TCP")), "grafana": ((3000, "TCP"),),
    "loki": ((3100, "TCP"),), "tempo": ((4317, "TCP"),), "prometheus": ((9090, "TCP"),),
}
DEFAULT_PORTS = ((8080, "TCP"),)
EXTERNAL = ("world (1.1.1.1)", "api.stripe.com", "s3.eu-west-1.amazonaws.com", "203.0.113.0/24", "kube-apiserver")
L7_RULE = "GET /api/.* only"


def workloads() -> list[str]:
    return [f"{ns}/{name}" for ns, names in NAMESPACES.items() for name in names]


def namespace(ref: str) -> str:
    return ref.split("/", 1)[0]


def served(ref: str) -> tuple[tuple[int, str], ...]:
    return SERVES.get(ref.split("/", 1)[1], DEFAULT_PORTS)


class Rules:
    """Which paths the synthetic policies allow; every other path is dropped (default deny)."""

    def __init__(self, seed: int = 16, *, widen_scrape: bool = False, drop_gateway_l7: bool = False,
                 close_ledger: bool = False) -> None:
        rnd = random.Random(seed)
        names = workloads()
        self.widen_scrape = widen_scrape
        self.drop_gateway_l7 = drop_gateway_l7
        self.close_ledger = close_ledger
        frontend = [w for w in names if namespace(w) == "frontend"]
        backend = [w for w in names if namespace(w) == "backend"]
        data = [w for w in names if namespace(w) == "data"]
        payments = [w for w in names if namespace(w) == "payments"]
        self.allow: dict[tuple[str, str], str] = {}
        self.l7: set[tuple[str, str]] = set()
        self.scraped = {w for w in names if namespace(w) not in ("monitoring", "data") and rnd.random() < 0.5}
        self.dns_clients = {w for w in names if rnd.random() < 0.6}
        for source in frontend:
            for target in rnd.sample(backend, 4):
                self.allow[(source, target)] = f"NetworkPolicy backend/allow-frontend ingress rule 0: allows {source}"
                if rnd.random() < 0.4:
                    self.l7.add((source, target))
        for source in backend:
            for target in rnd.sample(backend, 2) + rnd.sample(data, 2):
                if source != target:
                    self.allow[(source, target)] = f"NetworkPolicy {namespace(target)}/allow-backend ingress rule 0"
        for source in payments:
            for target in rnd.sample(payments, 3):
                if source != target:
                    self.allow[(source, target)] = "NetworkPolicy payments/intra ingress rule 0: podSelector {}"
            self.allow[(source, "data/postgres")] = "NetworkPolicy data/allow-payments ingress rule 1"
        self.allow[("backend/orders", "payments/payments-api")] = "CiliumNetworkPolicy payments/api-l7 ingress rule 0"
        self.l7.add(("backend/orders", "payments/payments-api"))
        for source, target in (("monitoring/grafana", "monitoring/prometheus"),
                               ("monitoring/grafana", "monitoring/loki"), ("monitoring/grafana", "monitoring/tempo"),
                               ("kube-system/ingress", "frontend/web"), ("kube-system/ingress", "frontend/bff"),
                               ("kube-system/hubble-relay", "monitoring/tempo"),
                               ("monitoring/prometheus", "monitoring/alertmanager")):
            self.allow[(source, target)] = f"NetworkPolicy {namespace(target)}/intra ingress rule 0"

    def decide(self, source: str, target: str, port: int, protocol: str) -> tuple[Verdict, str, str | None]:
        """(verdict, reason, what passes L7) of one workload-to-workload path."""
        if source == target:
            return A, f"{source} reaches its own IP: no policy applies", None
        if target == "kube-system/coredns":
            if protocol == "UDP" and source in self.dns_clients:
                return A, "CiliumClusterwideNetworkPolicy allow-dns egress rule 0: kube-dns UDP/53", None
            return D, f"{source} is isolated for egress; no rule allows {protocol}/{port} to kube-system/coredns", None
        scrape = source == "monitoring/prometheus" and port == served(target)[0][0]
        if scrape and (target in self.scraped or (self.widen_scrape and namespace(target) == "data")):
            return A, f"NetworkPolicy {namespace(target)}/allow-scrape ingress rule 0: from namespace monitoring", None
        reason = self.allow.get((source, target))
        if reason is not None and port == served(target)[0][0]:
            if (source, target) in self.l7 and not (self.drop_gateway_l7 and target == "backend/gateway"):
                return A, f"{reason}: through Cilium's L7 proxy (http GET /api/.*)", L7_RULE
            if self.close_ledger and target == "payments/ledger":
                return D, "NetworkPolicy payments/ledger-lockdown: no ingress rule allows it", None
            return A, reason, None
        return D, f"{target} is selected by NetworkPolicy {namespace(target)}/default-deny; no rule admits {source}", \
            None


def synthetic_plan(rules: Rules | None = None) -> tuple[CheckedFlow, ...]:
    """Every workload to every workload on every served port, and a few external destinations."""
    rules = rules or Rules()
    flows = []
    for source in workloads():
        for target in workloads():
            for port, protocol in served(target):
                verdict, reason, passes = rules.decide(source, target, port, protocol)
                flows.append(CheckedFlow(source, target, protocol, port, verdict, model_reasons=(reason,),
                                         l7_passes=passes))
    external = {
        ("payments/psp-adapter", "api.stripe.com", 443): (A, "CiliumNetworkPolicy payments/psp-egress toFQDNs"),
        ("payments/fraud", "api.stripe.com", 443): (D, "payments/fraud is isolated for egress; no toFQDNs rule"),
        ("data/etl", "s3.eu-west-1.amazonaws.com", 443): (A, "CiliumNetworkPolicy data/etl-egress toFQDNs"),
        ("monitoring/blackbox", "world (1.1.1.1)", 443): (A, "CiliumNetworkPolicy monitoring/blackbox toEntities"),
        ("monitoring/blackbox", "203.0.113.0/24", 443): (A, "NetworkPolicy monitoring/blackbox egress ipBlock"),
        ("backend/notify", "world (1.1.1.1)", 587): (U, "toPorts endPort: unsupported by the model"),
        ("kube-system/cilium-operator", "kube-apiserver", 6443): (A, "CiliumNetworkPolicy allow-apiserver"),
        ("monitoring/prometheus", "kube-apiserver", 6443): (A, "CiliumNetworkPolicy allow-apiserver"),
    }
    for (source, target, port), (verdict, reason) in external.items():
        flows.append(CheckedFlow(source, target, "TCP", port, verdict, model_reasons=(reason,)))
    return tuple(flows)


def synthetic_run() -> tuple[CheckedFlow, ...]:
    """A run of about 60 intended paths of the synthetic repository, probed, with exactly two mismatches.

    One intent disagrees with the model (frontend/admin-ui's first allowed path into backend was meant
    to be dropped) and one observation disagrees with the intent (the cluster dropped the first
    allowed DNS path; Hubble shows the drop). backend/gateway's L7 port is checked with two requests.
    """
    rnd = random.Random(7)
    plan = [f for f in synthetic_plan() if f.source != f.destination and f.port is not None]
    intent_miss = next(f for f in plan if f.source == "frontend/admin-ui" and namespace(f.destination) == "backend"
                       and f.model is A)
    live_miss = next(f for f in plan if f.destination == "kube-system/coredns" and f.protocol == "UDP" and f.model is A)
    allowed = [f for f in plan if f.model is A and f not in (intent_miss, live_miss)]
    dropped = [f for f in plan if f.model is D]
    picked = sorted([*rnd.sample(allowed, 45), *rnd.sample(dropped, 12), intent_miss, live_miss], key=lambda f: f.key)
    flows: list[CheckedFlow] = []
    for flow in picked:
        expected = D if flow is intent_miss else flow.model
        observed = D if flow is live_miss else flow.model
        if flow is live_miss:
            evidence = (_hubble(flow, "policy-verdict:none EGRESS DENIED"), _hubble(flow, "Policy denied DROPPED"))
        else:
            evidence = (_hubble(flow, "FORWARDED" if observed is A else "policy-verdict:none INGRESS DENIED"),)
        flows.append(CheckedFlow(flow.source, flow.destination, flow.protocol, flow.port, flow.model,
                                 expected=expected, model_reasons=flow.model_reasons, observed=observed,
                                 attempts=3 if observed is not expected else 1, evidence=evidence,
                                 test=f"suites/test_{namespace(flow.source)}.py::test_paths", l7_passes=flow.l7_passes))
    gateway_reason = ("CiliumNetworkPolicy backend/gateway-l7 ingress rule 0: http GET /api/.* matched",)
    denied_reason = ("CiliumNetworkPolicy backend/gateway-l7 ingress rule 0: no http rule matches POST /admin",)
    flows.append(CheckedFlow("frontend/bff", "backend/gateway", "TCP", 8080, A, request="GET /api/items", expected=A,
                             model_reasons=gateway_reason, observed=A, attempts=1, test="suites/test_l7.py::test_get"))
    flows.append(CheckedFlow("frontend/bff", "backend/gateway", "TCP", 8080, L7, request="POST /admin", expected=L7,
                             model_reasons=denied_reason, observed=L7, attempts=1, test="suites/test_l7.py::test_post",
                             evidence=("Jun 16 16:52:13.611: frontend/bff:50908 (ID:2311) -> backend/gateway:8080 "
                                       "(ID:36522) http-request DROPPED (HTTP/1.1 POST http://gateway:8080/admin)",)))
    return tuple(flows)


def _hubble(flow: CheckedFlow, what: str) -> str:
    """A line shaped like ``hubble observe`` compact output."""
    return (f"Jun 16 16:52:14.002: {flow.source}:41222 (ID:5120) -> {flow.destination}:{flow.port} (ID:36522) "
            f"{what} ({flow.protocol})")


def synthetic_diff() -> tuple[tuple[CheckedFlow, ...], tuple[CheckedFlow, ...]]:
    """(before, after): the change widens the scrape rule to data, drops gateway's L7 rule, locks ledger down."""
    after = Rules(widen_scrape=True, drop_gateway_l7=True, close_ledger=True)
    return synthetic_plan(), synthetic_plan(after)


PathSummary = tuple[frozenset[Verdict], frozenset[str | None], bool]


def _summaries(records: Iterable[CheckedFlow]) -> dict[tuple[str, str, str, int | None], PathSummary]:
    """Per path (self-flows left out): its outcomes, its L7 texts, and whether any record mismatches."""
    out: dict[tuple[str, str, str, int | None], PathSummary] = {}
    for flow in records:
        if flow.source == flow.destination:
            continue
        key = (flow.source, flow.destination, flow.protocol, flow.port)
        verdicts, l7, mismatch = out.get(key, (frozenset(), frozenset(), False))
        out[key] = (verdicts | {flow.outcome}, l7 | {flow.l7_passes}, mismatch or flow.mismatch)
    return out


def default_view_count(flows: Iterable[CheckedFlow], before: Iterable[CheckedFlow] | None = None) -> int:
    """How many edges the map's default filters draw, computed from the records without the map code.

    An edge is a distinct (source, destination, protocol, port) that is not a self-flow. By default
    every verdict but ``dropped`` is drawn, and so is every mismatch. In a diff (``before`` given),
    so is every path whose outcomes or L7 text moved, and a path that is gone but was allowed.
    """
    after = _summaries(flows)
    shown = {key for key, (verdicts, _, mismatch) in after.items() if verdicts != {D} or mismatch}
    if before is not None:
        older = _summaries(before)
        shown |= {key for key, summary in after.items() if key in older and older[key][:2] != summary[:2]}
        shown |= {key for key, summary in older.items() if key not in after and A in summary[0]}
    return len(shown)
