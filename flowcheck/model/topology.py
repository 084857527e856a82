"""The scenario's topology: namespaces with labels, workloads with labels and ports.

The file's form is docs/contracts.md, "Topology file".

A topology describes the stand-in workloads a scenario stands up (or, with ``existing: true``,
finds). The model needs exactly what Cilium derives identities and named ports from: namespace
labels (``kubernetes.io/metadata.name`` is always implied, as the API server sets it), pod labels,
the service account, the ports the workload serves and, only where CIDR/ipBlock matching needs it,
the pod IP. Loading is strict -- an unknown key is an error -- because a misspelt ``lables`` would
otherwise produce a workload no policy selects and a confidently wrong verdict.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flowcheck.errors import TopologyError
from flowcheck.model import fields as f
from flowcheck.model.identity import DEFAULT_SERVICE_ACCOUNT, METADATA_NAME_LABEL

PROTOCOLS = ("TCP", "UDP", "SCTP")

_TOP_KEYS = ("namespaces", "workloads")
_NAMESPACE_KEYS = ("labels",)
_WORKLOAD_KEYS = ("name", "namespace", "labels", "ports", "serviceAccount", "ip", "existing")
_PORT_KEYS = ("name", "port", "protocol")


class UnknownWorkloadError(TopologyError, KeyError):
    """A flow or a command named a workload the topology does not have."""


@dataclass(frozen=True, slots=True)
class Port:
    """A port a workload serves; ``name`` is what named ports in policies resolve against."""

    name: str | None
    port: int
    protocol: str = "TCP"

    def describe(self) -> str:
        return f"{self.protocol}/{self.port}" + (f" ({self.name})" if self.name else "")


@dataclass(frozen=True, slots=True)
class Workload:
    """One stand-in pod (or, with ``existing``, real pods matched by labels on a live cluster)."""

    namespace: str
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    ports: tuple[Port, ...] = ()
    service_account: str = DEFAULT_SERVICE_ACCOUNT
    ip: str | None = None
    existing: bool = False

    @property
    def ref(self) -> str:
        """How flows and reports name the workload: ``namespace/name``."""
        return f"{self.namespace}/{self.name}"

    def named_port(self, name: str) -> list[Port]:
        return [p for p in self.ports if p.name == name]


@dataclass(frozen=True, slots=True)
class Topology:
    """Namespaces (name -> labels, ``kubernetes.io/metadata.name`` included) and workloads."""

    namespaces: Mapping[str, Mapping[str, str]]
    workloads: tuple[Workload, ...]
    path: str = "<topology>"

    def __post_init__(self) -> None:
        index = {w.ref: w for w in self.workloads}
        object.__setattr__(self, "_index", index)

    _index: dict[str, Workload] = field(init=False, repr=False, compare=False, default_factory=dict)

    def workload(self, ref: str) -> Workload:
        """The workload named ``namespace/name``; ``UnknownWorkloadError`` names the known ones."""
        try:
            return self._index[ref]
        except KeyError:
            known = ", ".join(sorted(self._index)) or "none"
            raise UnknownWorkloadError(self.path, "workloads",
                                       f"no workload {ref!r} in the topology (known: {known})") from None

    @classmethod
    def build(cls, namespaces: Mapping[str, Mapping[str, str]], workloads: list[Workload] | tuple[Workload, ...],
              path: str = "<topology>") -> Topology:
        """A topology from Python values (tests, benchmarks): adds the implied namespace label."""
        ns = {name: {**labels, METADATA_NAME_LABEL: name} for name, labels in namespaces.items()}
        for w in workloads:
            ns.setdefault(w.namespace, {METADATA_NAME_LABEL: w.namespace})
        return cls(ns, tuple(workloads), path)


def load_topology(path: str | Path) -> Topology:
    """Read a topology file (docs/contracts.md, "Topology file"); ``TopologyError`` names the file and the field."""
    name = str(path)

    def fail(field_: str, message: str) -> TopologyError:
        return TopologyError(name, field_, message)

    if Path(path).is_dir():
        raise fail("", "is a directory; expected a topology file (`flowcheck init MANIFESTS --policies P --out DIR` "
                       "writes one from your manifests)")
    return parse_topology(f.read_data_file(path, fail), name, fail)


def parse_topology(data: Any, name: str, fail: f.Fail) -> Topology:
    """Build a ``Topology`` from already-parsed YAML (strict: unknown keys are errors)."""
    top = f.optional_mapping(data, "", fail)
    f.known_keys(top, "", _TOP_KEYS, fail)
    namespaces: dict[str, dict[str, str]] = {}
    for ns_name, ns_body in f.optional_mapping(top.get("namespaces"), "namespaces", fail).items():
        field_ = f.join("namespaces", ns_name)
        body = f.optional_mapping(ns_body, field_, fail)
        f.known_keys(body, field_, _NAMESPACE_KEYS, fail)
        labels = f.string_map(body.get("labels"), f.join(field_, "labels"), fail)
        if labels.get(METADATA_NAME_LABEL, ns_name) != ns_name:
            raise fail(f.join(field_, "labels"), f"{METADATA_NAME_LABEL} is always the namespace's own name")
        namespaces[ns_name] = {**labels, METADATA_NAME_LABEL: ns_name}
    workloads: list[Workload] = []
    seen: set[str] = set()
    for i, raw in enumerate(f.optional_sequence(top.get("workloads"), "workloads", fail)):
        workload = _parse_workload(raw, f"workloads[{i}]", namespaces, fail)
        if workload.ref in seen:
            raise fail(f"workloads[{i}]", f"workload {workload.ref} is listed twice")
        seen.add(workload.ref)
        workloads.append(workload)
    return Topology(namespaces, tuple(workloads), name)


def _parse_workload(raw: Any, field_: str, namespaces: Mapping[str, Any], fail: f.Fail) -> Workload:
    body = f.mapping(raw, field_, fail)
    f.known_keys(body, field_, _WORKLOAD_KEYS, fail)
    for required in ("name", "namespace"):
        if required not in body:
            raise fail(f.join(field_, required), "missing required field")
    name = f.string(body["name"], f.join(field_, "name"), fail)
    namespace = f.string(body["namespace"], f.join(field_, "namespace"), fail)
    if "/" in name or "/" in namespace:
        raise fail(field_, "names and namespaces cannot contain '/'")
    if namespace not in namespaces:
        raise fail(f.join(field_, "namespace"),
                   f"namespace {namespace!r} is not declared under `namespaces` (its labels matter to selectors)")
    labels = f.string_map(body.get("labels"), f.join(field_, "labels"), fail)
    ports: list[Port] = []
    for j, raw_port in enumerate(f.optional_sequence(body.get("ports"), f.join(field_, "ports"), fail)):
        pfield = f"{field_}.ports[{j}]"
        pbody = f.mapping(raw_port, pfield, fail)
        f.known_keys(pbody, pfield, _PORT_KEYS, fail)
        if "port" not in pbody:
            raise fail(f.join(pfield, "port"), "missing required field")
        number = f.integer(pbody["port"], f.join(pfield, "port"), fail, 1, 65535)
        protocol = f.string(pbody.get("protocol", "TCP"), f.join(pfield, "protocol"), fail).upper()
        if protocol not in PROTOCOLS:
            raise fail(f.join(pfield, "protocol"), f"expected one of {', '.join(PROTOCOLS)}, got {protocol!r}")
        port_name = f.string(pbody["name"], f.join(pfield, "name"), fail) if pbody.get("name") is not None else None
        ports.append(Port(port_name, number, protocol))
    service_account = f.string(body.get("serviceAccount", DEFAULT_SERVICE_ACCOUNT),
                               f.join(field_, "serviceAccount"), fail)
    ip = f.ip_address(body["ip"], f.join(field_, "ip"), fail) if body.get("ip") is not None else None
    existing = f.boolean(body.get("existing", False), f.join(field_, "existing"), fail)
    return Workload(namespace, name, labels, tuple(ports), service_account, ip, existing)
