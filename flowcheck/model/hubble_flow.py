"""Hubble's flow records, parsed: what ``hubble observe -o json`` prints, as typed data.

Two parts of flowcheck read these records: the cluster layer collects them as the evidence of a
probe (``flowcheck.cluster.hubble``), and ``flowcheck replay`` decides the paths a cluster really
carried against the policies (``flowcheck.model.replay``). The parsing is pure, so it lives here,
below both.

Each line is a ``GetFlowsResponse`` in protojson with proto field names (cilium/cilium
``api/v1/observer/observer.proto``; the flow itself is ``api/v1/flow/flow.proto``): ``{"flow":
{...}, "node_name": ..., "time": ...}``; 64-bit integers arrive as strings, zero/false/empty fields
are omitted, enums are strings, and a few names are not snake case (``IP``, ``Type``,
``ipVersion``, ``l4.TCP``/``UDP``/``ICMPv4``). Lines that are not flows (node status, lost events,
log noise) give None; unknown fields are ignored. L7 denials by the proxy are ``Type: L7`` with
verdict ``DROPPED`` and no ``drop_reason_desc`` (Hubble leaves it at DROP_REASON_UNKNOWN, which
protojson omits); L3/L4 default-deny drops carry ``drop_reason_desc: POLICY_DENIED``. An HTTP
response record has source and destination swapped to the response's direction and
``is_reply: true``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

TCP_FLAG_ORDER = ("SYN", "FIN", "RST", "PSH", "ACK", "URG", "ECE", "CWR", "NS")
DNS_RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}

_TIME_RE = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})$")


@dataclass(frozen=True, slots=True)
class FlowEndpoint:
    """``flow.source`` / ``flow.destination``."""

    namespace: str
    pod_name: str
    identity: int
    labels: tuple[str, ...]

    def display(self, ip: str) -> str:
        if self.pod_name:
            return f"{self.namespace}/{self.pod_name}" if self.namespace else self.pod_name
        reserved = [lab.split(":", 1)[1] for lab in self.labels if lab.startswith("reserved:")]
        return f"{ip} ({reserved[0]})" if reserved and ip else (reserved[0] if reserved else ip or "?")


@dataclass(frozen=True, slots=True)
class HubblePolicy:
    """A policy as a Hubble flow names it: one entry of ``*_allowed_by`` / ``*_denied_by`` (the policy
    that allowed or denied the flow, at the revision the agent enforced)."""

    name: str
    namespace: str
    kind: str
    revision: int | None

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name


@dataclass(frozen=True, slots=True)
class HttpInfo:
    code: int | None
    method: str
    url: str
    protocol: str
    headers: tuple[tuple[str, str], ...] = ()
    """``l7.http.headers`` (``{key, value}`` pairs), as the proxy logged them."""


@dataclass(frozen=True, slots=True)
class DnsInfo:
    query: str
    rcode: int | None
    ips: tuple[str, ...]
    qtypes: tuple[str, ...]
    rrtypes: tuple[str, ...]

    @property
    def rcode_name(self) -> str:
        if self.rcode is None:
            return "NOERROR"
        return DNS_RCODES.get(self.rcode, str(self.rcode))


@dataclass(frozen=True, slots=True)
class FlowRecord:
    """One Hubble flow, typed; ``raw`` keeps the line as received for reports."""

    time: datetime
    time_text: str
    uuid: str
    node_name: str
    verdict: str
    drop_reason_desc: str
    flow_type: str  # L3_L4 | L7 | SOCK | ...
    event_type: int | None
    event_sub_type: int | None
    traffic_direction: str
    is_reply: bool | None
    src_ip: str
    dst_ip: str
    ip_version: str
    protocol: str  # TCP | UDP | ICMPv4 | ICMPv6 | SCTP | ""
    src_port: int | None
    dst_port: int | None
    tcp_flags: tuple[str, ...]
    source: FlowEndpoint
    destination: FlowEndpoint
    l7_type: str  # REQUEST | RESPONSE | SAMPLE | ""
    http: HttpInfo | None
    dns: DnsInfo | None
    latency_ns: int | None
    trace_observation_point: str
    policy_match_type: int | None
    egress_allowed_by: tuple[HubblePolicy, ...]
    ingress_allowed_by: tuple[HubblePolicy, ...]
    egress_denied_by: tuple[HubblePolicy, ...]
    ingress_denied_by: tuple[HubblePolicy, ...]
    summary_text: str  # Hubble's own (deprecated) Summary field
    raw: str
    source_names: tuple[str, ...] = ()
    """``flow.source_names``: the DNS names the source IP was learnt for (Cilium's DNS proxy)."""
    destination_names: tuple[str, ...] = ()
    """``flow.destination_names``: the DNS names the destination IP was learnt for (toFQDNs destinations)."""
    icmp_type: int | None = None
    """``l4.ICMPv4.type`` / ``l4.ICMPv6.type`` (8 is an IPv4 echo request; zero is omitted by protojson)."""

    @property
    def denied_by(self) -> tuple[HubblePolicy, ...]:
        return self.ingress_denied_by + self.egress_denied_by

    @property
    def allowed_by(self) -> tuple[HubblePolicy, ...]:
        return self.ingress_allowed_by + self.egress_allowed_by

    def summary(self) -> str:
        """One line for reports, e.g.
        ``DROPPED POLICY_DENIED ingress tenant/client:41234 -> default/my-api:9090 TCP SYN``."""
        parts = [self.verdict or "UNKNOWN_VERDICT"]
        if self.drop_reason_desc:
            parts.append(self.drop_reason_desc)
        direction = self.traffic_direction.removeprefix("TRAFFIC_DIRECTION_").lower()
        if direction and direction != "unknown":
            parts.append(direction)
        parts.append(f"{_hostport(self.source.display(self.src_ip), self.src_port)} -> "
                     f"{_hostport(self.destination.display(self.dst_ip), self.dst_port)}")
        parts.append(self._detail())
        line = " ".join(p for p in parts if p)
        if self.denied_by:
            line += f" (by {', '.join(map(str, self.denied_by))})"
        elif self.allowed_by:
            line += f" (allowed by {', '.join(map(str, self.allowed_by))})"
        return line

    def _detail(self) -> str:
        if self.http is not None:
            h = self.http
            if self.l7_type == "RESPONSE" or h.code:
                return f"{h.protocol or 'HTTP'} {h.code if h.code is not None else '?'} ({h.method} {h.url})".strip()
            return f"{h.protocol or 'HTTP'} {h.method} {h.url} ({self.l7_type.lower() or 'l7'})".strip()
        if self.dns is not None:
            d = self.dns
            types = " ".join(d.qtypes)
            if self.l7_type == "RESPONSE":
                answer = f" {','.join(d.ips)}" if d.ips else ""
                return f"DNS answer {d.query} {types} {d.rcode_name}{answer}".replace("  ", " ")
            return f"DNS query {d.query} {types}".strip()
        if self.protocol == "TCP":
            return "TCP " + ", ".join(self.tcp_flags) if self.tcp_flags else "TCP"
        return self.protocol


def _hostport(host: str, port: int | None) -> str:
    return f"{host}:{port}" if port is not None else host


# ---------------------------------------------------------------------------------------------
# Parsing


def parse_time(text: str) -> datetime:
    """RFC3339 with up to nanoseconds (Python keeps microseconds)."""
    m = _TIME_RE.match(text.strip())
    if not m:
        raise ValueError(f"not an RFC3339 time: {text!r}")
    base, frac, zone = m.groups()
    micro = (frac or "").ljust(6, "0")[:6]
    return datetime.fromisoformat(f"{base}.{micro}{'+00:00' if zone == 'Z' else zone}").astimezone(UTC)


def parse_flow_lines(text: str) -> list[FlowRecord]:
    """Every flow in ``hubble observe -o json`` output; other lines are skipped."""
    flows = []
    for line in text.splitlines():
        record = parse_flow_line(line)
        if record is not None:
            flows.append(record)
    return flows


def parse_flow_line(line: str) -> FlowRecord | None:
    """One line -> ``FlowRecord``, or None for anything that is not a flow."""
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        data = json.loads(line)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("flow"), dict):
        return None
    flow: Mapping[str, Any] = data["flow"]
    time_text = str(flow.get("time") or data.get("time") or "")
    try:
        when = parse_time(time_text)
    except ValueError:
        return None
    ip = _map(flow.get("IP"))
    l4 = _map(flow.get("l4"))
    protocol = ""
    icmp_type: int | None = None
    src_port: int | None = None
    dst_port: int | None = None
    flags: tuple[str, ...] = ()
    for name in ("TCP", "UDP", "SCTP"):
        if name in l4:
            body = _map(l4[name])
            protocol = name
            # protojson omits zero values: a present L4 header without a port field means port 0
            src_port = _opt_int(body.get("source_port")) or 0
            dst_port = _opt_int(body.get("destination_port")) or 0
            if name == "TCP":
                raw_flags = _map(body.get("flags"))
                flags = tuple(f for f in TCP_FLAG_ORDER if raw_flags.get(f))
            break
    else:
        for name in ("ICMPv4", "ICMPv6"):
            if name in l4:
                protocol = name
                icmp_type = _opt_int(_map(l4[name]).get("type")) or 0
                break
    l7 = _map(flow.get("l7"))
    http = None
    dns = None
    if "http" in l7:
        h = _map(l7["http"])
        headers = tuple((str(_map(item).get("key") or ""), str(_map(item).get("value") or ""))
                        for item in h.get("headers") or () if isinstance(item, dict) and _map(item).get("key"))
        http = HttpInfo(_opt_int(h.get("code")), str(h.get("method") or ""), str(h.get("url") or ""),
                        str(h.get("protocol") or ""), headers)
    if "dns" in l7:
        d = _map(l7["dns"])
        dns = DnsInfo(str(d.get("query") or ""), _opt_int(d.get("rcode")), _strs(d.get("ips")), _strs(d.get("qtypes")),
                      _strs(d.get("rrtypes")))
    event = _map(flow.get("event_type"))
    is_reply = flow.get("is_reply")
    if not isinstance(is_reply, bool):
        reply = flow.get("reply")
        is_reply = reply if isinstance(reply, bool) else None
    return FlowRecord(
        time=when, time_text=time_text, uuid=str(flow.get("uuid") or ""),
        node_name=str(flow.get("node_name") or data.get("node_name") or ""),
        verdict=str(flow.get("verdict") or ""), drop_reason_desc=str(flow.get("drop_reason_desc") or ""),
        flow_type=str(flow.get("Type") or ""), event_type=_opt_int(event.get("type")),
        event_sub_type=_opt_int(event.get("sub_type")),
        traffic_direction=str(flow.get("traffic_direction") or ""), is_reply=is_reply,
        src_ip=str(ip.get("source") or ""), dst_ip=str(ip.get("destination") or ""),
        ip_version=str(ip.get("ipVersion") or ""), protocol=protocol, src_port=src_port, dst_port=dst_port,
        tcp_flags=flags, source=_endpoint(flow.get("source")), destination=_endpoint(flow.get("destination")),
        l7_type=str(l7.get("type") or ""), http=http, dns=dns, latency_ns=_opt_int(l7.get("latency_ns")),
        trace_observation_point=str(flow.get("trace_observation_point") or ""),
        policy_match_type=_opt_int(flow.get("policy_match_type")),
        egress_allowed_by=_policies(flow.get("egress_allowed_by")),
        ingress_allowed_by=_policies(flow.get("ingress_allowed_by")),
        egress_denied_by=_policies(flow.get("egress_denied_by")),
        ingress_denied_by=_policies(flow.get("ingress_denied_by")),
        summary_text=str(flow.get("Summary") or ""), raw=line, source_names=_strs(flow.get("source_names")),
        destination_names=_strs(flow.get("destination_names")), icmp_type=icmp_type,
    )


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _opt_int(value: Any) -> int | None:
    """protojson: 32-bit ints as numbers, 64-bit ints as strings."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None
    return None


def _strs(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in value) if isinstance(value, list) else ()


def _endpoint(value: Any) -> FlowEndpoint:
    e = _map(value)
    return FlowEndpoint(str(e.get("namespace") or ""), str(e.get("pod_name") or ""), _opt_int(e.get("identity")) or 0,
                        _strs(e.get("labels")))


def _policies(value: Any) -> tuple[HubblePolicy, ...]:
    if not isinstance(value, list):
        return ()
    out = []
    for item in value:
        p = _map(item)
        out.append(HubblePolicy(str(p.get("name") or ""), str(p.get("namespace") or ""), str(p.get("kind") or ""),
                             _opt_int(p.get("revision"))))
    return tuple(out)
