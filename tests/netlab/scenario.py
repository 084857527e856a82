"""This repository's scenario as a lab "cluster": its workloads as lab pods, its policies as nftables.

Used by the end-to-end test of the harness (tests/harness/test_e2e_netlab.py): the real suites run
their live path -- plan, batched probes from each source pod, classification, comparison with the
model, reports -- against lab pods on real packets. The lab is test support, not a product back end.

``enforce_repository_policies`` is a translation of manifests/network-policies written by hand from
the policy text, the way Cilium enforces them -- NOT derived from flowcheck's model -- so the model
and the lab agreeing on every path is a real cross-check:

- default-deny-ingress: every `default` pod drops new inbound connections (replies pass: stateful);
- allow-monitoring-scrape: ... except TCP 9090 from monitoring/prometheus;
- allow-get-only: my-api's 8080 accepts any peer at L4 and its L7 proxy (``denyproxy.py``, Envoy's
  403 bytes) forwards only GET to the real probe server behind it;
- allow-dns-egress: every `default` pod may only open UDP 53 to kube-system pods; TCP 53 and
  everything else it sends is dropped (silently, where it arrives: see ``enforce_repository_policies``).

``existing: true`` workloads (kube-dns) run a real resolver (``resolver.py``, dnslib) instead of the
probe server, so they answer as a foreign application would.

Like a cluster, the lab reports two more things the harness relies on: whether the rules are in place
yet (each pod's chain ends with a marker rule, ``REALIZED_MARKER``, written last -- the lab's "endpoint
realized the revision"), and Hubble-shaped evidence from nftables' packet traces
(``tests/netlab/hubble.py``). ``LabProvider(late_rules_s=...)`` applies the rules late, as a slow agent
would; ``extra_rules`` adds rules (a policy that breaks a path).
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from flowcheck.cluster.hubble import FlowRecord, match
from flowcheck.harness.backends import EvidenceQuery, SetupRequest
from flowcheck.model.topology import Topology
from tests.harness.fakes import ExecutorBackend
from tests.netlab.executor import LabExecutor
from tests.netlab.hubble import LabHubble
from tests.netlab.lab import NFT_TABLE, NetLab

NETLAB_DIR = Path(__file__).resolve().parent
PROXY_UPSTREAM_PORT = 18080  # my-api's real server behind the L7 proxy, on loopback inside the pod
L7_PROXIED = {("default/my-api", 8080): ("GET",)}  # allow-get-only
REALIZED_MARKER = "flowcheck-lab-realized"


def start_scenario(topology: Topology) -> NetLab:
    """A lab with one pod per workload of ``topology``, serving its ports (a resolver for kube-dns)."""
    lab = NetLab()
    lab.start()
    try:
        for workload in topology.workloads:
            if workload.existing:
                lab.add_pod(workload.ref)
                lab.spawn(workload.ref, [sys.executable, NETLAB_DIR / "resolver.py", "--port", "53"],
                          ready='"event":"ready"')
                continue
            tcp = [p.port for p in workload.ports if p.protocol == "TCP"]
            udp = [p.port for p in workload.ports if p.protocol == "UDP"]
            proxied = {port: methods for (ref, port), methods in L7_PROXIED.items() if ref == workload.ref}
            served = [port for port in tcp if port not in proxied] + ([PROXY_UPSTREAM_PORT] if proxied else [])
            lab.add_pod(workload.ref, http=served, udp=udp, wait=False)
            for port, methods in proxied.items():
                lab.spawn(workload.ref, [sys.executable, NETLAB_DIR / "denyproxy.py", "--listen", str(port),
                                         "--upstream", f"127.0.0.1:{PROXY_UPSTREAM_PORT}", "--allow",
                                         ",".join(methods)], ready='"event":"ready"')
        lab.wait_ready()
    except BaseException:
        lab.close()
        raise
    return lab


def enforce_repository_policies(lab: NetLab, topology: Topology, *, skip: Sequence[str] = (),
                                extra: Mapping[str, Sequence[str]] | None = None) -> None:
    """nftables equivalent of manifests/network-policies (see the module docstring).

    Every rule sits on the receiving pod's input hook and drops silently, as Cilium does (an output-hook
    drop would make the sender's kernel answer EPERM, which a Cilium drop never does); default's egress
    isolation is therefore enforced where its packets arrive, by source address. Replies of allowed
    connections pass (``ct state established``), as Cilium's policy is stateful.
    ``skip`` leaves a policy out (``"scrape"``, ``"dns-egress"``), to show what a cluster that does not
    enforce it looks like to the harness.
    """
    address = lab.address_of
    default_pods = [w.ref for w in topology.workloads if w.namespace == "default"]
    prometheus = [w.ref for w in topology.workloads if w.namespace == "monitoring"
                  and w.labels.get("app.kubernetes.io/name") == "prometheus"]
    for workload in topology.workloads:
        pod = workload.ref
        rules = ["iif lo accept", "ct state established,related accept"]
        if "dns-egress" not in skip:  # allow-dns-egress: default pods reach only UDP 53 in kube-system
            for sender in (p for p in default_pods if p != pod):
                if workload.namespace == "kube-system":
                    rules.append(f"ip saddr {address(sender)} udp dport 53 accept")
                rules.append(f"ip saddr {address(sender)} drop")
        rules[2:2] = (extra or {}).get(pod, ())  # after the stateful accept, before anything this policy set opens
        if workload.namespace == "default":  # default-deny-ingress, and the two policies opening it
            if "scrape" not in skip:
                rules += [f"ip saddr {address(p)} tcp dport 9090 accept" for p in prometheus]
            rules += [f"tcp dport {port} accept" for (ref, port) in L7_PROXIED if ref == pod]
            rules.append("drop")
        rules.append(f'counter comment "{REALIZED_MARKER}"')  # written last: the rules above are all in place
        lab.nft(pod, "\n".join(f"add rule inet {NFT_TABLE} ingress {rule}" for rule in rules))


def unrealized(lab: NetLab, pods: Sequence[str]) -> list[str]:
    """The pods whose rules are not in place yet (no ``REALIZED_MARKER`` in their chain)."""
    lagging = []
    for pod in pods:
        listed = subprocess.run(["ip", "netns", "exec", lab.pod(pod).netns, "nft", "list", "ruleset"],
                                capture_output=True, text=True, check=False).stdout
        if REALIZED_MARKER not in listed:
            lagging.append(f"{pod}: the lab's rules are not in place yet")
    return lagging


class LabBackend(ExecutorBackend[LabExecutor]):
    """``LiveBackend`` over the lab: existing workloads cannot run the agent; realization from the rules'
    marker; evidence from the lab's Hubble (when it runs one)."""

    def __init__(self, lab: NetLab, existing: Sequence[str], *, hubble: LabHubble | None = None,
                 enforced: bool = True) -> None:
        super().__init__(LabExecutor(lab), existing, description="network-namespace lab (tests/netlab)",
                         existing_reason="{workload} is an existing workload")
        self.lab = lab
        self.hubble = hubble
        self.enforced = enforced

    def unrealized(self) -> Sequence[str]:
        return unrealized(self.lab, list(self.lab.pods)) if self.enforced else ()

    def evidence(self, queries: Sequence[EvidenceQuery], since: datetime,
                 until: datetime) -> Mapping[str, Sequence[FlowRecord]] | None:
        if self.hubble is None:
            return None
        time.sleep(0.2)  # the last traces of the batch are still on their way through `nft monitor`
        flows = self.hubble.flows()
        return {q.probe_id: tuple(match(flows, q.facts(since, until))) for q in queries}


class LabProvider:
    """``BackendProvider`` for one pytest process (no xdist): the lab lives in this provider.

    ``skip_rules`` leaves policies out; ``extra_rules`` adds rules per pod; ``late_rules_s`` applies all
    the rules that long after the set-up returns (a slow agent); ``hubble`` runs the lab's Hubble."""

    def __init__(self, *, skip_rules: Sequence[str] = (), extra_rules: Mapping[str, Sequence[str]] | None = None,
                 late_rules_s: float = 0.0, hubble: bool = True) -> None:
        self.skip_rules = tuple(skip_rules)
        self.extra_rules = dict(extra_rules or {})
        self.late_rules_s = late_rules_s
        self.use_hubble = hubble
        self.lab: NetLab | None = None
        self.hubble: LabHubble | None = None
        self.existing: list[str] = []

    def set_up(self, request: SetupRequest) -> dict[str, Any]:
        request.progress("starting the network-namespace lab")
        self.lab = start_scenario(request.topology)
        lab = self.lab
        try:
            if self.use_hubble:
                self.hubble = LabHubble(lab)
                self.hubble.start()

            def enforce() -> None:
                enforce_repository_policies(lab, request.topology, skip=self.skip_rules, extra=self.extra_rules)

            if self.late_rules_s:
                threading.Timer(self.late_rules_s, enforce).start()
            else:
                enforce()
        except BaseException:
            self.tear_down({}, failed=True)
            raise
        self.existing = [w.ref for w in request.topology.workloads if w.existing]
        return {"lab": lab.prefix, "existing": self.existing}

    def attach(self, state: Mapping[str, Any]) -> LabBackend:
        assert self.lab is not None and self.lab.prefix == state["lab"], "the lab lives in the process that made it"
        return LabBackend(self.lab, state["existing"], hubble=self.hubble)

    def tear_down(self, state: Mapping[str, Any], *, failed: bool) -> None:
        if self.hubble is not None:
            with contextlib.suppress(Exception):
                self.hubble.stop()
        if self.lab is not None:
            with contextlib.suppress(Exception):
                self.lab.close()
