"""Hubble flows as evidence: collect them for the probe pods, parse them, match them to one probe.

Collection execs ``hubble observe -o json --since <RFC3339> [--until <RFC3339>] --pod ns/name ...
[--port <client port> ...]`` in every cilium agent pod (container ``cilium-agent``; no port-forward to
Relay needed; inside the agent image ``hubble`` talks to the local agent's socket). Each agent only
sees its own node's flows, so all agents are asked and the answers merged: a cross-node flow
legitimately appears twice (egress on one node, ingress on the other). The hubble CLI ORs repeated
``--pod`` values and repeated ``--port`` values, and builds ``(source_pod AND source_port) OR
(destination_pod AND destination_port)`` from them (hubble ``cmd/observe/flows_filter.go``), so
``--pod P --port <the probe's source port>`` returns one client connection in both directions --
requests, replies and the L7 response records -- and little else (docs/live-evidence.md).
Matching one probe's flows is then done here on the 5-tuple.

Each line is a ``GetFlowsResponse`` in protojson; the records are parsed by
``flowcheck.model.hubble_flow`` (pure, shared with ``flowcheck replay``) and re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flowcheck.cluster.kube import KubeClients
from flowcheck.cluster.podexec import PodTarget, exec_in_pod
from flowcheck.cluster.process import tail
from flowcheck.cluster.realization import AGENT_CONTAINER, CILIUM_NAMESPACE
from flowcheck.errors import ClusterError
from flowcheck.model.hubble_flow import DNS_RCODES as DNS_RCODES
from flowcheck.model.hubble_flow import TCP_FLAG_ORDER as TCP_FLAG_ORDER
from flowcheck.model.hubble_flow import DnsInfo as DnsInfo
from flowcheck.model.hubble_flow import FlowEndpoint as FlowEndpoint
from flowcheck.model.hubble_flow import FlowRecord as FlowRecord
from flowcheck.model.hubble_flow import HttpInfo as HttpInfo
from flowcheck.model.hubble_flow import HubblePolicy as HubblePolicy
from flowcheck.model.hubble_flow import parse_flow_line as parse_flow_line
from flowcheck.model.hubble_flow import parse_flow_lines as parse_flow_lines
from flowcheck.model.hubble_flow import parse_time as parse_time

OBSERVE_TIMEOUT_S = 60.0
DEFAULT_SLACK_S = 1.0  # clock skew between the harness and the nodes, and event-timestamp jitter


def format_time(when: datetime) -> str:
    """``--since``/``--until`` value: RFC3339 in UTC with microseconds."""
    if when.tzinfo is None:
        raise ValueError("a naive datetime is ambiguous; pass an aware one (e.g. datetime.now(UTC))")
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# ---------------------------------------------------------------------------------------------
# Matching one probe to its flows


@dataclass(frozen=True, slots=True)
class ProbeFacts:
    """What the harness knows about one probe: its 5-tuple (the source port the agent reported, when it
    did) and when it ran."""

    src_ip: str
    dst_ip: str  # empty: any (a destination known by name only, e.g. an FQDN; then src_port must be known)
    dst_port: int | None
    protocol: str  # TCP | UDP | ICMPv4 | ...
    start: datetime
    end: datetime
    slack_s: float = DEFAULT_SLACK_S
    src_port: int | None = None

    def is_request(self, flow: FlowRecord) -> bool:
        """``flow`` goes from the probe's socket to its destination (the request direction)."""
        return (flow.src_ip == self.src_ip and (not self.dst_ip or flow.dst_ip == self.dst_ip)
                and (self.dst_port is None or flow.dst_port == self.dst_port)
                and (self.src_port is None or flow.src_port == self.src_port))

    def is_reply(self, flow: FlowRecord) -> bool:
        """``flow`` comes back from the destination to the probe's socket (the reply direction)."""
        return ((not self.dst_ip or flow.src_ip == self.dst_ip) and flow.dst_ip == self.src_ip
                and (self.dst_port is None or flow.src_port == self.dst_port)
                and (self.src_port is None or flow.dst_port == self.src_port))


def match(flows: Iterable[FlowRecord], probe: ProbeFacts) -> list[FlowRecord]:
    """The flows of one probe, in time order: the request direction and the replies to it.

    Matches on the 5-tuple -- addresses, protocol, destination port and, when the agent reported it,
    the probe's source port (so two probes of one batch to the same destination never get each
    other's flows) -- within the time window widened by ``slack_s``. L7 records (HTTP, DNS) carry
    their connection's ports and match like it, so the proxy's DROPPED request, its 403 response and
    a ``POLICY_DENIED`` drop are all found.
    """
    lo = probe.start - timedelta(seconds=probe.slack_s)
    hi = probe.end + timedelta(seconds=probe.slack_s)
    protocol = probe.protocol.upper()
    picked = [f for f in flows if lo <= f.time <= hi and f.protocol.upper() == protocol
              and (probe.is_request(f) or probe.is_reply(f))]
    return sorted(picked, key=lambda f: (f.time, f.node_name))


# ---------------------------------------------------------------------------------------------
# Collection


def observe_argv(since: datetime, until: datetime | None, pods: Sequence[str],
                 ports: Sequence[int] = ()) -> list[str]:
    """The ``hubble observe`` command; ``ports`` (the probes' source ports) narrow it to those connections."""
    argv = ["hubble", "observe", "-o", "json", "--since", format_time(since)]
    if until is not None:
        argv += ["--until", format_time(until)]
    for pod in pods:
        argv += ["--pod", pod]
    for port in sorted(set(ports)):
        argv += ["--port", str(port)]
    return argv


def collect_flows(clients: Callable[[], KubeClients], agents: Sequence[str], *, since: datetime,
                  until: datetime | None, pods: Sequence[str], ports: Sequence[int] = (),
                  timeout_s: float = OBSERVE_TIMEOUT_S) -> list[FlowRecord]:
    """Flows of ``pods`` (``ns/name``) between ``since`` and ``until`` from every agent, merged in time order;
    with ``ports``, only the connections of those client ports (see ``observe_argv``)."""
    argv = observe_argv(since, until, pods, ports)
    seen: set[str] = set()
    flows: list[FlowRecord] = []
    for agent in agents:
        target = PodTarget(CILIUM_NAMESPACE, agent, AGENT_CONTAINER)
        try:
            result = exec_in_pod(clients(), target, argv, timeout_s=timeout_s)
        except ClusterError as exc:  # could not start, the stream broke, or the API server is unreachable
            raise ClusterError(f"cannot collect Hubble flows from {agent}: {exc}") from exc
        if result.returncode != 0:
            raise ClusterError(f"`hubble observe` failed in {agent} (exit {result.returncode}){tail(result, 4)}")
        for record in parse_flow_lines(result.stdout):
            key = record.uuid or record.raw
            if key in seen:
                continue
            seen.add(key)
            flows.append(record)
    return sorted(flows, key=lambda f: (f.time, f.node_name))
