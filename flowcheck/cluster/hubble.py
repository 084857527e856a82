"""Hubble flows as evidence: collect them for the probe pods, parse them, match them to one probe.

Collection execs ``hubble observe -o json --since <RFC3339> [--until <RFC3339>] --pod ns/name ...``
in every cilium agent pod (container ``cilium-agent``; no port-forward to Relay needed). Each agent
only sees its own node's flows, so all agents are asked and the answers merged: a cross-node flow
legitimately appears twice (egress on one node, ingress on the other). Not confirmed here: that
the hubble CLI in the agent image talks to the local agent without ``--server`` (the documented
``kubectl exec ds/cilium -- hubble observe`` usage relies on it), and that repeated ``--pod``
filters are OR'ed (the help says the filters are repeatable); matching is by addresses anyway.

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
    """What the harness knows about one probe: who talked to whom, on what, and when.

    Exactly what the harness's evidence queries carry: no source port, and the destination
    address the probe used.
    """

    src_ip: str
    dst_ip: str
    dst_port: int | None
    protocol: str  # TCP | UDP | ICMPv4 | ...
    start: datetime
    end: datetime
    slack_s: float = DEFAULT_SLACK_S


def match(flows: Iterable[FlowRecord], probe: ProbeFacts) -> list[FlowRecord]:
    """The flows of one probe, in time order: the request direction and the replies to it.

    Matches on addresses, protocol, destination port and the time window widened by ``slack_s``.
    L7 records (HTTP, DNS) match like their L4 connection, so the proxy's DROPPED request (the 403)
    and a ``POLICY_DENIED`` drop are both found.
    """
    lo = probe.start - timedelta(seconds=probe.slack_s)
    hi = probe.end + timedelta(seconds=probe.slack_s)
    protocol = probe.protocol.upper()
    picked = []
    for f in flows:
        if not lo <= f.time <= hi or f.protocol.upper() != protocol:
            continue
        forward = (f.src_ip == probe.src_ip and f.dst_ip == probe.dst_ip
                   and (probe.dst_port is None or f.dst_port == probe.dst_port))
        backward = (f.src_ip == probe.dst_ip and f.dst_ip == probe.src_ip
                    and (probe.dst_port is None or f.src_port == probe.dst_port))
        if forward or backward:
            picked.append(f)
    return sorted(picked, key=lambda f: (f.time, f.node_name))


# ---------------------------------------------------------------------------------------------
# Collection


def observe_argv(since: datetime, until: datetime | None, pods: Sequence[str]) -> list[str]:
    argv = ["hubble", "observe", "-o", "json", "--since", format_time(since)]
    if until is not None:
        argv += ["--until", format_time(until)]
    for pod in pods:
        argv += ["--pod", pod]
    return argv


def collect_flows(clients: Callable[[], KubeClients], agents: Sequence[str], *, since: datetime,
                  until: datetime | None, pods: Sequence[str],
                  timeout_s: float = OBSERVE_TIMEOUT_S) -> list[FlowRecord]:
    """Flows of ``pods`` (``ns/name``) between ``since`` and ``until`` from every agent, merged in time order."""
    argv = observe_argv(since, until, pods)
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
