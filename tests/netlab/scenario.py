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
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from flowcheck.harness.backends import SetupRequest
from flowcheck.model.topology import Topology
from tests.harness.fakes import ExecutorBackend
from tests.netlab.executor import LabExecutor
from tests.netlab.lab import NFT_TABLE, NetLab

NETLAB_DIR = Path(__file__).resolve().parent
PROXY_UPSTREAM_PORT = 18080  # my-api's real server behind the L7 proxy, on loopback inside the pod
L7_PROXIED = {("default/my-api", 8080): ("GET",)}  # allow-get-only


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


def enforce_repository_policies(lab: NetLab, topology: Topology, *, skip: Sequence[str] = ()) -> None:
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
        if workload.namespace == "default":  # default-deny-ingress, and the two policies opening it
            if "scrape" not in skip:
                rules += [f"ip saddr {address(p)} tcp dport 9090 accept" for p in prometheus]
            rules += [f"tcp dport {port} accept" for (ref, port) in L7_PROXIED if ref == pod]
            rules.append("drop")
        lab.nft(pod, "\n".join(f"add rule inet {NFT_TABLE} ingress {rule}" for rule in rules))


class LabBackend(ExecutorBackend[LabExecutor]):
    """``LiveBackend`` over the lab: existing workloads cannot run the agent; no Hubble here."""

    def __init__(self, lab: NetLab, existing: Sequence[str]) -> None:
        super().__init__(LabExecutor(lab), existing, description="network-namespace lab (tests/netlab)",
                         existing_reason="{workload} is an existing workload")


class LabProvider:
    """``BackendProvider`` for one pytest process (no xdist): the lab lives in this provider."""

    def __init__(self, *, skip_rules: Sequence[str] = ()) -> None:
        self.skip_rules = tuple(skip_rules)
        self.lab: NetLab | None = None
        self.existing: list[str] = []

    def set_up(self, request: SetupRequest) -> dict[str, Any]:
        request.progress("starting the network-namespace lab")
        self.lab = start_scenario(request.topology)
        try:
            enforce_repository_policies(self.lab, request.topology, skip=self.skip_rules)
        except BaseException:
            self.lab.close()
            raise
        self.existing = [w.ref for w in request.topology.workloads if w.existing]
        return {"lab": self.lab.prefix, "existing": self.existing}

    def attach(self, state: Mapping[str, Any]) -> LabBackend:
        assert self.lab is not None and self.lab.prefix == state["lab"], "the lab lives in the process that made it"
        return LabBackend(self.lab, state["existing"])

    def tear_down(self, state: Mapping[str, Any], *, failed: bool) -> None:
        if self.lab is not None:
            with contextlib.suppress(Exception):
                self.lab.close()
