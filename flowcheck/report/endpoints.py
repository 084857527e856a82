"""What kind of endpoint a report record names: a workload, an entity, an FQDN or an address.

A ``CheckedFlow`` names its ends as text, the way ``Flow.describe`` writes them (docs/contracts.md, "Flow file"):
``namespace/name`` for a workload, the bare entity name (``world``, ``host``, ``kube-apiserver``)
optionally followed by `` (IP)``, the FQDN (``api.example.com``, optionally `` (IP)``), or an address
(``203.0.113.7``, ``10.0.0.0/8``). The service map groups workloads into namespace boxes and draws
every other endpoint as a node of its own kind; this is the one place that tells them apart.

The rules, in order: a trailing `` (IP)`` is the address the flow used; what is left is an address
or CIDR if it parses as one; a workload if it is ``namespace/name`` (a namespace is a DNS label: no
dot); an entity if it is one word (entities are single names, and records never name one as
``entity:``); an FQDN if it is a dotted name. Anything else is kept as an ``other`` endpoint, drawn
with its text, rather than guessed into a kind.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from dataclasses import dataclass

_ADDRESS_SUFFIX = re.compile(r"^(?P<base>\S+) \((?P<address>[^()\s]+)\)$")
_WORKLOAD = re.compile(r"^(?P<namespace>[^/\s.]+)/(?P<name>[^/\s]+)$")
_ENTITY = re.compile(r"^[a-z][a-z0-9-]*$")
_FQDN = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9_*-]+(\.[A-Za-z0-9_*-]+)+\.?$")


class EndpointKind(enum.StrEnum):
    WORKLOAD = "workload"
    ENTITY = "entity"
    FQDN = "fqdn"
    CIDR = "cidr"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class ReportEndpoint:
    """One end of a flow as a report names it; ``text`` is the record's text, unchanged."""

    text: str
    kind: EndpointKind
    name: str
    namespace: str | None = None
    address: str | None = None

    @property
    def label(self) -> str:
        """What a map node shows: a workload's name (its box names the namespace), else the whole text."""
        return self.name if self.kind is EndpointKind.WORKLOAD else self.text


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True


def parse_endpoint(text: str) -> ReportEndpoint:
    """Classify a record's endpoint text (see the module docstring for the rules)."""
    base, address = text, None
    suffix = _ADDRESS_SUFFIX.match(text)
    if suffix and _is_address(suffix["address"]) and "/" not in suffix["address"]:
        base, address = suffix["base"], suffix["address"]
    if address is None and _is_address(text):
        return ReportEndpoint(text, EndpointKind.CIDR, text)
    workload = _WORKLOAD.match(base)
    if workload and address is None:
        return ReportEndpoint(text, EndpointKind.WORKLOAD, workload["name"], namespace=workload["namespace"])
    if _ENTITY.match(base):
        return ReportEndpoint(text, EndpointKind.ENTITY, base, address=address)
    if _FQDN.match(base):
        return ReportEndpoint(text, EndpointKind.FQDN, base, address=address)
    return ReportEndpoint(text, EndpointKind.OTHER, text)
