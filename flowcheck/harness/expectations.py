"""What a suite declares: one intended path and the verdict its author expects.

``make_expectation`` turns the readable call a suite makes --
``flowcheck_paths.expect("tenant/client", "default/my-api", port=8080, http="POST /", verdict="l7-denied")``
into a model ``Flow`` plus the expected ``Verdict``, checking every argument against the topology so
a typo fails the test at once with a message naming the workload, port or verdict that is wrong.

An end may also be outside the topology: an entity (``world``, ``kube-apiserver``, ``host``, ...),
an FQDN (``api.example.com``), an address (``1.1.1.1``) or a block (``10.0.0.0/8``), written as
``flowcheck explain`` takes them (``flowcheck.model.flows.endpoint_from_text``); an FQDN only as
destination. A path marked ``live_only`` is one the model cannot decide (it answers ``unknown``, with
why): offline that is reported, not failed; a cluster still checks it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from flowcheck.errors import InputError
from flowcheck.model.engine import Decision
from flowcheck.model.flows import (
    FLOW_PROTOCOLS,
    DnsQuery,
    Endpoint,
    Flow,
    HttpRequest,
    IcmpMessage,
    WorkloadEndpoint,
    parse_endpoint,
    port_value,
    resolve_transport,
)
from flowcheck.model.topology import Topology
from flowcheck.probe.plan import DNS_QTYPES
from flowcheck.verdict import EXPECTABLE_VERDICTS, Verdict
from flowcheck.vocabulary import HTTP_TOKEN, http_method_mistake

DEFAULT_DNS_QUERY = "kubernetes.default.svc.cluster.local"


class ExpectationError(InputError):
    """An expectation that cannot mean anything (unknown workload, missing port, bad verdict): a
    mistake in the suite, the user's input to fix."""


@dataclass(frozen=True, slots=True)
class Expectation:
    """A path and what should happen to it. ``verdict`` None: "whatever the model predicts"
    (used when probing the model's whole matrix live)."""

    flow: Flow
    verdict: Verdict | None
    qtype: str = "A"
    decision: Decision | None = None
    """The model's decision when it is already known (a planned flow), so the check does not decide again."""
    live_only: bool = False
    """Only a cluster can settle it: a model ``unknown`` is reported offline, not failed."""

    @property
    def source(self) -> str:
        return self.flow.source.describe()

    @property
    def destination(self) -> str:
        return self.flow.destination.describe()

    @property
    def request(self) -> str | None:
        """The L7 part, as reports show it: ``POST /orders`` or ``DNS A kubernetes.default...``."""
        if self.flow.http is not None:
            return f"{self.flow.http.method} {self.flow.http.path}"
        if self.flow.dns is not None:
            return f"DNS {self.qtype} {self.flow.dns.query}"
        return None

    def describe(self) -> str:
        return path_text(self.source, self.destination, self.flow.protocol, self.flow.port, self.request)


def path_text(source: str, destination: str, protocol: str, port: int | None, request: str | None) -> str:
    """``tenant/client -> default/my-api TCP/8080 POST /orders``: a path as failure messages name it."""
    transport = f"{protocol}/{port}" if port is not None else protocol
    text = f"{source} -> {destination} {transport}"
    return f"{text} {request}" if request else text


def parse_http(text: str) -> tuple[str, str]:
    """``"POST /orders"`` -> ``("POST", "/orders")``; a bare method means path ``/``."""
    parts = text.split()
    if not (len(parts) == 1 or (len(parts) == 2 and parts[1].startswith("/"))) or not HTTP_TOKEN.match(parts[0]):
        raise ExpectationError(f"http={text!r}: expected 'METHOD /path', e.g. 'POST /orders'")
    mistake = http_method_mistake(parts[0])  # a token by now: what is left to say is a typo
    if mistake is not None:
        raise ExpectationError(f"http={text!r}: {mistake}")
    return parts[0].upper(), parts[1] if len(parts) == 2 else "/"


def make_expectation(
    topology: Topology,
    source: str,
    destination: str,
    *,
    verdict: str | Verdict | None,
    port: int | str | None = None,
    protocol: str | None = None,
    http: str | None = None,
    headers: Mapping[str, str] | None = None,
    host: str | None = None,
    dns: str | None = None,
    qtype: str = "A",
    live_only: bool = False,
) -> Expectation:
    """Build and check one expectation against the topology (see the module docstring)."""
    source_end = _endpoint(topology, source, "from", allow_fqdn=False)
    destination_end = _endpoint(topology, destination, "to", allow_fqdn=True)
    if not isinstance(source_end, WorkloadEndpoint) and not isinstance(destination_end, WorkloadEndpoint):
        raise ExpectationError(f"{source!r} -> {destination!r}: neither end is a workload, and policy applies only "
                               "at pods")
    if http is not None and dns is not None:
        raise ExpectationError("an expectation is either an HTTP request or a DNS query, not both")
    if protocol is not None and (not isinstance(protocol, str) or protocol.upper() not in FLOW_PROTOCOLS):
        raise ExpectationError(f"protocol={protocol!r}: expected TCP, UDP, SCTP or ICMP")
    proto, number = _transport(topology, destination_end, port, protocol.upper() if protocol else None,
                               dns=dns is not None)
    if http is not None and proto != "TCP":
        raise ExpectationError(f"http={http!r} needs protocol TCP, not {proto}")
    if number is not None and isinstance(destination_end, WorkloadEndpoint):
        _check_served(topology, destination_end.ref, number, proto)
    request = None
    if http is not None:
        method, path = parse_http(http)
        for name, value in (headers or {}).items():
            if not HTTP_TOKEN.match(name) or any(ch in value for ch in "\r\n\0"):
                raise ExpectationError(f"header {name!r}: {value!r} is not a valid HTTP header")
        request = HttpRequest.make(method, path, headers, host)
    elif headers or host:
        raise ExpectationError("headers= and host= only make sense with http=")
    if dns is not None:
        _check_dns(dns, qtype)
    expected = _verdict(verdict)
    if not isinstance(live_only, bool):
        raise ExpectationError(f"live_only={live_only!r}: expected true or false")
    flow = Flow(source_end, destination_end, proto, number, request, DnsQuery(dns) if dns is not None else None,
                IcmpMessage(8) if proto == "ICMP" else None)
    return Expectation(flow, expected, qtype.upper(), live_only=live_only)


def _endpoint(topology: Topology, text: str, side: str, *, allow_fqdn: bool) -> Endpoint:
    """A workload of the topology (``UnknownWorkloadError`` names the known ones) or an end outside it."""
    if not isinstance(text, str):
        raise ExpectationError(f"{side}={text!r}: expected a workload (namespace/name), an entity, an FQDN, an "
                               "address or a block, as text")

    def fail(field: str, message: str) -> InputError:
        return ExpectationError(f"{side}={text!r}: {message}")

    endpoint = parse_endpoint(text, side, fail, allow_fqdn=allow_fqdn)
    if isinstance(endpoint, WorkloadEndpoint):
        topology.workload(endpoint.ref)  # raises, naming the known workloads
    return endpoint


def _check_dns(name: str, qtype: str) -> None:
    if qtype.upper() not in DNS_QTYPES:
        raise ExpectationError(f"qtype={qtype!r}: expected one of {', '.join(sorted(DNS_QTYPES))}")
    labels = name.rstrip(".").split(".")
    if not name.isascii() or len(name) > 253 or any(not 1 <= len(label) <= 63 for label in labels):
        raise ExpectationError(f"dns={name!r} is not a valid DNS name")


def _transport(topology: Topology, destination_end: Endpoint, port: int | str | None, protocol: str | None, *,
               dns: bool) -> tuple[str, int | None]:
    """The path's protocol and port, as a flows file reads them (``flowcheck.model.flows.resolve_transport``)."""
    if protocol == "ICMP":
        if port is not None:
            raise ExpectationError("ICMP has no port")
        return protocol, None

    def fail(key: str, message: str) -> InputError:
        return ExpectationError(f"{key}={port if key == 'port' else protocol!r}: {message}")

    given = port_value(port, "port", fail)
    proto, number = resolve_transport(destination_end, topology, protocol=protocol, port=given, dns=dns, fail=fail)
    if number is None:
        raise ExpectationError(f"port= is required for {proto}")
    return proto, number


def _check_served(topology: Topology, destination: str, port: int, protocol: str) -> None:
    """A path to a port the destination does not serve can only be refused live: a mistake in the suite."""
    served = topology.workload(destination).ports
    if any(p.port == port and p.protocol == protocol for p in served):
        return
    serves = ", ".join(p.describe() for p in served) or "nothing"
    raise ExpectationError(f"port={port}: {destination} does not serve {protocol}/{port} (it serves {serves}); "
                           "a probe there could only be refused -- name a port it serves, or add this one to "
                           "the topology")


def _verdict(verdict: str | Verdict | None) -> Verdict | None:
    if verdict is None:
        return None
    names = ", ".join(v.value for v in EXPECTABLE_VERDICTS)
    try:
        parsed = verdict if isinstance(verdict, Verdict) else Verdict.parse(verdict)
    except ValueError:
        raise ExpectationError(f"verdict={verdict!r}: unknown verdict; expected one of {names}") from None
    if parsed not in EXPECTABLE_VERDICTS:
        raise ExpectationError(f"verdict={verdict!r}: an expectation names one of {names}")
    return parsed
