"""Flows (docs/contracts.md, "Flow file"): one connection attempt from a source to a destination, with its L7 payload.

A flow names its ends as workloads (``namespace/name``), entities (``{entity: world, ip: ...}``;
``host`` means the node hosting the other, pod, end), FQDNs (``{fqdn: api.example.com, ip: ...}``,
an external IP the source got by resolving the name), external addresses (``{ip: 1.1.1.1}``, world
at that address) or whole external blocks (``{cidr: 10.0.0.0/8}``, decided only when every address
of the block gets one verdict: ``flowcheck.model.cidr``). ``endpoint_from_text`` reads the same
endpoints written on one line (``entity:world@1.1.1.1``, ``fqdn:NAME@IP``, ``10.0.0.0/8``), the form
``flowcheck explain --from/--to`` and the intent files take. It carries the transport (TCP, UDP, SCTP, or
ICMP with a type instead of a port) and optionally the HTTP request or DNS query that L7 rules
judge. ``Flow.to_json`` is the shape of the flow file; ``flowcheck explain --format json`` echoes it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flowcheck.errors import TopologyError
from flowcheck.manifests.documents import type_name
from flowcheck.model import fields as f
from flowcheck.model.identity import ENDPOINT_ENTITIES, Entity
from flowcheck.model.topology import Topology, UnknownWorkloadError
from flowcheck.vocabulary import DNS_PORT, http_method_mistake

FLOW_PROTOCOLS = ("TCP", "UDP", "SCTP", "ICMP")
_FLOW_KEYS = ("from", "to", "protocol", "port", "http", "dns", "icmp")
_HTTP_KEYS = ("method", "path", "headers", "host")


@dataclass(frozen=True, slots=True)
class WorkloadEndpoint:
    """A workload of the topology, by ``namespace/name``."""

    ref: str

    def describe(self) -> str:
        return self.ref

    def to_json(self) -> str | dict[str, str]:
        return self.ref


@dataclass(frozen=True, slots=True)
class EntityEndpoint:
    """A non-pod endpoint: ``world`` (with the external IP when CIDR rules must judge it), ``host``, ..."""

    entity: Entity
    ip: str | None = None

    def describe(self) -> str:
        return f"{self.entity.value}" + (f" ({self.ip})" if self.ip else "")

    def to_json(self) -> str | dict[str, str]:
        out = {"entity": self.entity.value}
        if self.ip:
            out["ip"] = self.ip
        return out


@dataclass(frozen=True, slots=True)
class FqdnEndpoint:
    """An external address the source obtained by resolving ``fqdn`` (what ``toFQDNs`` rules match)."""

    fqdn: str
    ip: str | None = None

    def describe(self) -> str:
        return self.fqdn + (f" ({self.ip})" if self.ip else "")

    def to_json(self) -> str | dict[str, str]:
        out = {"fqdn": self.fqdn}
        if self.ip:
            out["ip"] = self.ip
        return out


@dataclass(frozen=True, slots=True)
class CidrEndpoint:
    """Every address of an external block (``10.0.0.0/8``), as world addresses no DNS answer gave.

    Decided only when all of them get the same verdict (``flowcheck.model.cidr``); ``network`` is
    the block as ``ipaddress`` normalises it (``10.0.0.0/8``).
    """

    network: str

    def describe(self) -> str:
        return self.network

    def to_json(self) -> str | dict[str, str]:
        return {"cidr": self.network}


Endpoint = WorkloadEndpoint | EntityEndpoint | FqdnEndpoint | CidrEndpoint


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """The HTTP request a flow makes. ``headers`` are (name, value) pairs; ``host`` is ``:authority``."""

    method: str = "GET"
    path: str = "/"
    headers: tuple[tuple[str, str], ...] = ()
    host: str | None = None

    @classmethod
    def make(cls, method: str = "GET", path: str = "/", headers: Mapping[str, str] | None = None,
             host: str | None = None) -> HttpRequest:
        return cls(method, path, tuple((headers or {}).items()), host)

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (HTTP header names are case-insensitive)."""
        lowered = name.lower()
        for key, value in self.headers:
            if key.lower() == lowered:
                return value
        return None

    def describe(self) -> str:
        return f"http {self.method} {self.path}"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"method": self.method, "path": self.path}
        if self.headers:
            out["headers"] = dict(self.headers)
        if self.host is not None:
            out["host"] = self.host
        return out


@dataclass(frozen=True, slots=True)
class DnsQuery:
    """The DNS question a flow asks (only the name matters to Cilium's DNS rules: docs/semantics.md, "DNS rules")."""

    query: str

    def describe(self) -> str:
        return f"dns {self.query}"


@dataclass(frozen=True, slots=True)
class IcmpMessage:
    """The ICMP message of an ICMP flow (type 8 = IPv4 echo request)."""

    type: int


@dataclass(frozen=True, slots=True)
class Flow:
    """One connection attempt; frozen and hashable so results can be keyed by it."""

    source: Endpoint
    destination: Endpoint
    protocol: str = "TCP"
    port: int | None = None
    http: HttpRequest | None = None
    dns: DnsQuery | None = None
    icmp: IcmpMessage | None = None

    @classmethod
    def between(cls, source: str, destination: str, *, port: int | None = None, protocol: str = "TCP",
                http: HttpRequest | None = None, dns: DnsQuery | str | None = None,
                icmp_type: int | None = None) -> Flow:
        """A workload-to-workload flow: ``Flow.between("tenant/client", "default/my-api", port=8080)``."""
        query = DnsQuery(dns) if isinstance(dns, str) else dns
        proto = protocol.upper()
        icmp = IcmpMessage(8 if icmp_type is None else icmp_type) if proto == "ICMP" else None
        return cls(WorkloadEndpoint(source), WorkloadEndpoint(destination), proto, port, http, query, icmp)

    def transport(self) -> str:
        """``TCP/8080``, or ``ICMP type 8`` for ICMP (type 8, echo request, when the flow names none)."""
        if self.protocol == "ICMP":
            return f"ICMP type {self.icmp.type if self.icmp else 8}"
        return f"{self.protocol}/{self.port}"

    def describe(self) -> str:
        """``tenant/client -> default/my-api TCP/8080 http POST /``."""
        text = f"{self.source.describe()} -> {self.destination.describe()} {self.transport()}"
        if self.http:
            text += " " + self.http.describe()
        if self.dns:
            text += " " + self.dns.describe()
        return text

    def to_json(self) -> dict[str, Any]:
        """This flow as the flow file writes it (docs/contracts.md, "Flow file")."""
        out: dict[str, Any] = {"from": self.source.to_json(), "to": self.destination.to_json(),
                               "protocol": self.protocol}
        if self.port is not None:
            out["port"] = self.port
        if self.http is not None:
            out["http"] = self.http.to_json()
        if self.dns is not None:
            out["dns"] = {"query": self.dns.query}
        if self.icmp is not None:
            out["icmp"] = {"type": self.icmp.type}
        return out


def load_flows(path: str | Path, topology: Topology | None = None) -> list[Flow]:
    """Read a YAML or JSON list of flows (docs/contracts.md, "Flow file"), in order.

    With ``topology``, workload references are checked too, so an unknown workload is reported as
    a bad field of this file rather than later. Errors are ``TopologyError`` naming file and field
    (``[2].to.entity``).
    """
    name = str(path)

    def fail(field_: str, message: str) -> TopologyError:
        return TopologyError(name, field_, message)

    data = f.read_data_file(path, fail)
    if data is None:
        return []
    return [parse_flow(raw, f"[{i}]", fail, topology) for i, raw in enumerate(f.sequence(data, "", fail))]


def parse_flow(raw: Any, field_: str, fail: f.Fail, topology: Topology | None = None) -> Flow:
    """One flow from parsed YAML (docs/contracts.md, "Flow file")."""
    body = f.mapping(raw, field_, fail)
    f.known_keys(body, field_, _FLOW_KEYS, fail)
    for required in ("from", "to"):
        if required not in body:
            raise fail(f.join(field_, required), "missing required field")
    source = parse_endpoint(body["from"], f.join(field_, "from"), fail, topology, allow_fqdn=False)
    destination = parse_endpoint(body["to"], f.join(field_, "to"), fail, topology, allow_fqdn=True)
    protocol: str | None = None
    if body.get("protocol") is not None:
        protocol = f.string(body["protocol"], f.join(field_, "protocol"), fail).upper()
        if protocol not in FLOW_PROTOCOLS:
            raise fail(f.join(field_, "protocol"), f"expected one of {', '.join(FLOW_PROTOCOLS)}, got {protocol!r}")
    port: int | None = None
    icmp: IcmpMessage | None = None
    if protocol == "ICMP":
        if body.get("port") is not None:
            raise fail(f.join(field_, "port"), "ICMP has no port; give `icmp: {type: N}` instead")
        icmp_body = f.optional_mapping(body.get("icmp"), f.join(field_, "icmp"), fail)
        f.known_keys(icmp_body, f.join(field_, "icmp"), ("type",), fail)
        icmp = IcmpMessage(f.integer(icmp_body.get("type", 8), f.join(field_, "icmp.type"), fail, 0, 255))
    else:
        given = port_value(body.get("port"), f.join(field_, "port"), fail)
        protocol, port = resolve_transport(destination, topology, protocol=protocol, port=given,
                                           dns=body.get("dns") is not None,
                                           fail=lambda key, message: fail(f.join(field_, key), message))
        if body.get("icmp") is not None:
            raise fail(f.join(field_, "icmp"), f"only ICMP flows carry an ICMP type, this one is {protocol}")
        if port is None:
            raise fail(f.join(field_, "port"), f"missing required field (a {protocol} flow needs a port)")
    http = None
    if body.get("http") is not None:
        http = _parse_http(body["http"], f.join(field_, "http"), fail)
        if protocol != "TCP":
            raise fail(f.join(field_, "http"), "an HTTP request needs protocol TCP")
    dns = None
    if body.get("dns") is not None:
        dns_body = f.mapping(body["dns"], f.join(field_, "dns"), fail)
        f.known_keys(dns_body, f.join(field_, "dns"), ("query",), fail)
        if "query" not in dns_body:
            raise fail(f.join(field_, "dns.query"), "missing required field")
        dns = DnsQuery(f.string(dns_body["query"], f.join(field_, "dns.query"), fail))
        if protocol not in ("UDP", "TCP"):
            raise fail(f.join(field_, "dns"), "a DNS query needs protocol UDP or TCP")
    if http is not None and dns is not None:
        raise fail(field_, "a flow carries an HTTP request or a DNS query, not both")
    return Flow(source, destination, protocol, port, http, dns, icmp)


def resolve_transport(destination: Endpoint, topology: Topology | None, *, protocol: str | None,
                      port: int | str | None, dns: bool, fail: f.Fail) -> tuple[str, int | None]:
    """A flow's ``(protocol, port)`` when either is left out or the port is given by name.

    Every way of writing a flow asks this -- a flows file, ``flowcheck explain`` options, a
    suite's ``flowcheck_paths.expect`` and an intent-file entry -- so one question gets one answer
    (docs/contracts.md, "Flow file"): an explicit protocol wins; else a port name brings the
    protocol the destination serves it under (the caller must say which when it serves the name
    under two); else a DNS query is UDP, as resolvers ask first; else TCP. A port name is the
    destination workload's port of that name; a DNS query with no port goes to port 53.

    ``protocol`` is upper-case and already checked, or None; ``port`` a number (already checked), a
    name, or None. The port returned is None only when none was given and no default applies: the
    caller says what is missing. Mistakes go through ``fail(key, message)``, ``key`` being
    ``port`` or ``protocol``, so each entry point names the field its own way (``[0].port``,
    ``--protocol``, ``port=``).
    """
    if isinstance(port, str):
        number, named_protocol = _named_port(destination, topology, port, protocol, fail)
        return named_protocol, number
    chosen = protocol or ("UDP" if dns else "TCP")
    if port is None and dns and chosen in ("UDP", "TCP"):
        return chosen, DNS_PORT
    return chosen, port


def _named_port(destination: Endpoint, topology: Topology | None, name: str, protocol: str | None,
                fail: f.Fail) -> tuple[int, str]:
    """The destination workload's port called ``name`` (under ``protocol`` when given), and its protocol."""
    if not isinstance(destination, WorkloadEndpoint):
        raise fail("port", f"{destination.describe()} is outside the topology and serves no named ports; give the "
                           "number")
    if topology is None:
        raise fail("port", f"a port name ({name!r}) is looked up in the topology, and there is none here; give the "
                           "number")
    workload = topology.workload(destination.ref)
    served = [p for p in workload.named_port(name) if protocol is None or p.protocol == protocol]
    if not served:
        kind = f"{protocol} " if protocol else ""
        serves = ", ".join(p.describe() for p in workload.ports) or "nothing"
        raise fail("port", f"{workload.ref} serves no {kind}port named {name!r} (it serves {serves})")
    protocols = sorted({p.protocol for p in served})
    if len(protocols) > 1:
        under = ", ".join(p.describe() for p in served)
        raise fail("protocol", f"{workload.ref} serves a port named {name!r} under {' and '.join(protocols)} "
                               f"({under}); say which protocol")
    return served[0].port, served[0].protocol


def port_value(raw: Any, field_: str, fail: f.Fail) -> int | str | None:
    """A flow's port as written: a number, a string of digits (the same number), a port name, or None."""
    expected = "expected a port number from 1 to 65535 or a port name"
    if raw is None:
        return None
    if isinstance(raw, str):
        if not raw.strip() or raw.strip() != raw:
            raise fail(field_, f"{expected}, got {raw!r}")
        if not (raw.isascii() and raw.isdigit()):
            return raw
        raw = int(raw)
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise fail(field_, f"{expected}, got {type_name(raw)}")
    if not 1 <= raw <= 65535:
        raise fail(field_, f"{expected}, got {raw}")
    return raw


def _parse_http(raw: Any, field_: str, fail: f.Fail) -> HttpRequest:
    body = f.mapping(raw, field_, fail)
    f.known_keys(body, field_, _HTTP_KEYS, fail)
    method = f.string(body.get("method", "GET"), f.join(field_, "method"), fail)
    mistake = http_method_mistake(method)
    if mistake is not None:
        raise fail(f.join(field_, "method"), mistake)
    path = f.string(body.get("path", "/"), f.join(field_, "path"), fail)
    headers = f.string_map(body.get("headers"), f.join(field_, "headers"), fail)
    host = f.string(body["host"], f.join(field_, "host"), fail) if body.get("host") is not None else None
    return HttpRequest(method, path, tuple(headers.items()), host)


def parse_endpoint(raw: Any, field_: str, fail: f.Fail, topology: Topology | None = None, *,
                   allow_fqdn: bool = True) -> Endpoint:
    """``ns/name``, ``{entity: E, ip: IP}``, ``{fqdn: NAME, ip: IP}``, ``{ip: IP}`` or ``{cidr: BLOCK}`` (an
    FQDN only as destination), or any of them written on one line (``endpoint_from_text``)."""
    if isinstance(raw, str):
        text = endpoint_from_text(raw)
        if isinstance(text, dict):
            return parse_endpoint(text, field_, fail, topology, allow_fqdn=allow_fqdn)
        if raw.count("/") != 1 or raw.startswith("/") or raw.endswith("/"):
            raise fail(field_, f"expected a workload as namespace/name, got {raw!r}")
        if topology is not None:
            try:
                topology.workload(raw)
            except UnknownWorkloadError as exc:
                raise fail(field_, exc.message) from None
        return WorkloadEndpoint(raw)
    body = f.mapping(raw, field_, fail)
    ip = f.ip_address(body["ip"], f.join(field_, "ip"), fail) if body.get("ip") is not None else None
    if "entity" in body:
        f.known_keys(body, field_, ("entity", "ip"), fail)
        text = f.string(body["entity"], f.join(field_, "entity"), fail)
        names = sorted(e.value for e in ENDPOINT_ENTITIES)
        try:
            entity = Entity(text)
        except ValueError:
            raise fail(f.join(field_, "entity"), f"expected one of {', '.join(names)}, got {text!r}") from None
        if entity not in ENDPOINT_ENTITIES:
            raise fail(f.join(field_, "entity"), f"{text!r} is a set of endpoints, not one; expected one of "
                                                 f"{', '.join(names)}")
        return EntityEndpoint(entity, ip)
    if "fqdn" in body:
        if not allow_fqdn:
            raise fail(f.join(field_, "fqdn"), "an FQDN can only be a destination")
        f.known_keys(body, field_, ("fqdn", "ip"), fail)
        return FqdnEndpoint(_dns_name(body["fqdn"], f.join(field_, "fqdn"), fail), ip)
    if "cidr" in body:
        f.known_keys(body, field_, ("cidr",), fail)
        block = f.string(body["cidr"], f.join(field_, "cidr"), fail)
        try:
            network = ipaddress.ip_network(block, strict=False)
        except ValueError:
            raise fail(f.join(field_, "cidr"), f"{block!r} is not a CIDR (such as 10.0.0.0/8)") from None
        return CidrEndpoint(str(network))
    if ip is not None:
        f.known_keys(body, field_, ("ip",), fail)
        return EntityEndpoint(Entity.WORLD, ip)
    raise fail(field_, "expected namespace/name, {entity: ..., ip: ...}, {fqdn: ..., ip: ...}, {ip: ...} or "
                       "{cidr: ...}")


def endpoint_from_text(text: str) -> str | dict[str, str]:
    """One endpoint written on one line, as the command line and intent files write it.

    ``ns/name`` stays a workload; ``world``, ``kube-apiserver`` (any entity name) and
    ``entity:world@1.1.1.1`` are entities; ``fqdn:api.example.com@IP`` and a dotted name that is not
    an address (``api.example.com``) are FQDNs; ``1.1.1.1`` is a world address and ``10.0.0.0/8``
    (or ``cidr:10.0.0.0/8``) a block. Returns the flow file's form (``parse_endpoint`` checks it).
    """
    kind, sep, rest = text.partition(":")
    if sep and kind in ("entity", "fqdn", "cidr", "ip"):
        if kind == "cidr":
            return {"cidr": rest}
        if kind == "ip":
            return {"ip": rest}
        name, at, ip = rest.partition("@")
        out = {kind: name}
        if at:
            out["ip"] = ip
        return out
    if _is_network(text):
        return {"cidr": text} if "/" in text else {"ip": text}
    if "/" in text:
        return text
    name, at, ip = text.partition("@")
    out = {("fqdn" if "." in name else "entity"): name}
    if at:
        out["ip"] = ip
    return out


def _is_network(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True


def _dns_name(raw: Any, field_: str, fail: f.Fail) -> str:
    """A DNS name as ``toFQDNs`` matches it: ASCII labels of 1-63 characters, 253 at most in all."""
    name = f.string(raw, field_, fail)
    labels = name.rstrip(".").split(".")
    if not name.isascii() or len(name) > 253 or any(not 1 <= len(label) <= 63 for label in labels) \
            or any(ch.isspace() or ch in "/@:" for ch in name):
        raise fail(field_, f"{name!r} is not a DNS name")
    return name
