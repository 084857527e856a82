"""What the cluster's Cilium answers a denial with: the proxy's 403 body and the DNS proxy's reject rcode.

Both are agent options, so the classifier must take them from the cluster, not assume Cilium's
defaults (docs/live-evidence.md, "Denials the cluster configures"):

- ``http-403-msg``: the body of the L7 proxy's 403 (default ``Access denied``; the proxy appends CRLF
  unless the text ends with one). A hidden agent flag without a Helm value of its own.
- ``tofqdns-dns-reject-response-code``: ``refused`` (the default: rcode REFUSED) or ``nameError``
  (NXDOMAIN), Helm ``dnsProxy.dnsRejectResponseCode``.

Where the effective value is: the ``cilium-config`` ConfigMap (kube-system) is the cluster-wide
setting, but it may omit a key that is at its default, and an agent may run with a per-node
override (a ``CiliumNodeConfig``, node annotations). At start each agent resolves all its sources
into ``/tmp/cilium/config-map/<key>`` (``cilium-dbg build-config``; the agent's ``--config-dir``),
so that file, read inside each agent, is the value that node enforces; a missing file means the
agent default. Where the file cannot be read at all, the ConfigMap is used, then the default.
The result is per node: an HTTP denial may come from the proxy on either end of a path, a DNS
denial from the source's node.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from flowcheck.cluster.kube import KubeClients, read_or_none
from flowcheck.cluster.podexec import ExecStartError, PodTarget, exec_in_pod
from flowcheck.cluster.realization import AGENT_CONTAINER, CILIUM_NAMESPACE, EXEC_TIMEOUT_S
from flowcheck.errors import ClusterError
from flowcheck.probe.classify import CILIUM_HTTP_403_MESSAGE, ClassifierSettings

CONFIG_MAP = "cilium-config"
AGENT_CONFIG_DIR = "/tmp/cilium/config-map"
HTTP_403_KEY = "http-403-msg"
DNS_REJECT_KEY = "tofqdns-dns-reject-response-code"
DNS_REJECT_DEFAULT = "refused"
DNS_REJECT_RCODES = {"refused": "REFUSED", "nameError": "NXDOMAIN"}  # pkg/option/config.go FQDNRejectOptions
_MISSING = "No such file"


@dataclass(frozen=True, slots=True)
class NodeDenials:
    """What one node's agent answers denials with, and where each value came from."""

    node: str
    http_403_message: str
    dns_reject: str  # the option's value: refused | nameError
    source: str  # "agent", "cilium-config" or "default" (per value, joined when they differ)

    @property
    def settings(self) -> ClassifierSettings:
        return ClassifierSettings((self.http_403_message,), DNS_REJECT_RCODES[self.dns_reject])

    def to_dict(self) -> dict[str, str]:
        return {"node": self.node, "http_403_message": self.http_403_message, "dns_reject": self.dns_reject,
                "source": self.source}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NodeDenials:
        return cls(str(data["node"]), str(data["http_403_message"]), str(data["dns_reject"]), str(data["source"]))


def read_node_denials(clients: Callable[[], KubeClients], agents: Mapping[str, str], *,
                      exec_timeout_s: float = EXEC_TIMEOUT_S) -> dict[str, NodeDenials]:
    """Each node's effective settings (``agents``: node -> its cilium agent pod)."""
    config_map = read_or_none(clients(), f"reading {CILIUM_NAMESPACE}/{CONFIG_MAP}",
                              clients().core.read_namespaced_config_map, CONFIG_MAP, CILIUM_NAMESPACE)
    cluster_wide: Mapping[str, str] = (getattr(config_map, "data", None) or {}) if config_map is not None else {}
    result = {}
    for node, agent in sorted(agents.items()):
        values: dict[str, str] = {}
        sources = []
        for key, default in ((HTTP_403_KEY, ""), (DNS_REJECT_KEY, DNS_REJECT_DEFAULT)):
            value, source = _agent_value(clients, agent, key, exec_timeout_s)
            if source is None:
                value, source = (cluster_wide[key], CONFIG_MAP) if key in cluster_wide else ("", "default")
            values[key] = value or default
            sources.append(source)
        dns = values[DNS_REJECT_KEY].strip()
        if dns not in DNS_REJECT_RCODES:
            raise ClusterError(f"cilium agent {agent} (node {node}) runs with {DNS_REJECT_KEY}={dns!r}; expected one "
                               f"of {', '.join(DNS_REJECT_RCODES)}")
        result[node] = NodeDenials(node, values[HTTP_403_KEY] or CILIUM_HTTP_403_MESSAGE, dns,
                                   "/".join(dict.fromkeys(sources)))
    return result


def _agent_value(clients: Callable[[], KubeClients], agent: str, key: str,
                 timeout_s: float) -> tuple[str, str | None]:
    """The key's file in the agent's resolved configuration: (value, "agent"), ("", "agent") when the
    agent runs with its default, or ("", None) when the file cannot be read (use the ConfigMap)."""
    target = PodTarget(CILIUM_NAMESPACE, agent, AGENT_CONTAINER)
    try:
        done = exec_in_pod(clients(), target, ["cat", f"{AGENT_CONFIG_DIR}/{key}"], timeout_s=timeout_s)
    except ExecStartError:
        return "", None
    if done.returncode == 0:
        return done.stdout, "agent"
    if _MISSING in done.stderr:
        return "", "agent"
    return "", None


def describe(denials: Mapping[str, NodeDenials]) -> str:
    """One line for the run's metadata: the values, and which nodes differ."""
    distinct = {(d.http_403_message, d.dns_reject) for d in denials.values()}
    if len(distinct) <= 1:
        any_node = next(iter(denials.values()), None)
        if any_node is None:
            return ""
        return (f"{HTTP_403_KEY}={any_node.http_403_message!r}, {DNS_REJECT_KEY}={any_node.dns_reject} "
                f"(from {any_node.source})")
    return "; ".join(f"{d.node}: {HTTP_403_KEY}={d.http_403_message!r}, {DNS_REJECT_KEY}={d.dns_reject}"
                     for d in sorted(denials.values(), key=lambda d: d.node))
