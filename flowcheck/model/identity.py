"""Security identities as Cilium synthesises them, and the entities policies can name.

Cilium does not match policies against pods but against *identities*: the pod's labels with the
``k8s:`` source plus labels it derives (docs/semantics.md, "Identities and selectors"): the pod's namespace
(``io.kubernetes.pod.namespace``), every label of the Namespace object under
``io.cilium.k8s.namespace.labels.`` (``kubernetes.io/metadata.name`` included), the service account
and the cluster name. Endpoints that are not pods have *reserved* identities (``reserved:host``,
``reserved:world``, ...). Building the same label set here is what lets a selector such as
``{io.cilium.k8s.namespace.labels.team: a}`` or ``{reserved:host: ""}`` mean what it means in Cilium.

Cilium allocates one identity per distinct label set, so workloads that differ only in name, ports
or IP share one: ``allocate_identities(topology)`` gives each workload's ``Identity`` and the
workloads sharing it (``IdentityTable``). Policies select identities, so the model evaluates every
selector once per identity, not once per workload; a probe plan may deploy one pod per identity.
Named ports and ipBlock matching still tell such workloads apart, so the model decides per
*decision class* (the identity plus those facts: ``Model.source_classes``), and ``identity_plan``
gives the plan per identity pair, split where its workloads' classes are decided differently.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from flowcheck.model.selectors import K8S_SOURCE, RESERVED_SOURCE, IdentityLabels

if TYPE_CHECKING:  # topology imports this module's label names
    from flowcheck.model.topology import Topology

NAMESPACE_LABEL = "io.kubernetes.pod.namespace"
NAMESPACE_LABELS_PREFIX = "io.cilium.k8s.namespace.labels."
SERVICE_ACCOUNT_LABEL = "io.cilium.k8s.policy.serviceaccount"
CLUSTER_LABEL = "io.cilium.k8s.policy.cluster"
METADATA_NAME_LABEL = "kubernetes.io/metadata.name"
# Cilium's cluster name unless configured otherwise (docs/semantics.md, "Scope and versions").
DEFAULT_CLUSTER = "default"
DEFAULT_SERVICE_ACCOUNT = "default"


class Entity(enum.StrEnum):
    """The entities of ``fromEntities``/``toEntities`` (the CRD enum; docs/semantics.md, "Peers")."""

    HOST = "host"
    REMOTE_NODE = "remote-node"
    KUBE_APISERVER = "kube-apiserver"
    INGRESS = "ingress"
    CLUSTER = "cluster"
    INIT = "init"
    HEALTH = "health"
    UNMANAGED = "unmanaged"
    WORLD = "world"
    ALL = "all"
    NONE = "none"


# Entities that are themselves an endpoint a flow can start or end at ("cluster", "all" and
# "none" are sets, not endpoints).
ENDPOINT_ENTITIES = frozenset({Entity.HOST, Entity.REMOTE_NODE, Entity.KUBE_APISERVER, Entity.INGRESS,
                               Entity.INIT, Entity.HEALTH, Entity.UNMANAGED, Entity.WORLD})

# What `cluster` selects besides the local cluster's pods (InitEntities; docs/semantics.md, "Peers").
_CLUSTER_RESERVED = frozenset({Entity.HOST, Entity.REMOTE_NODE, Entity.INIT, Entity.INGRESS, Entity.HEALTH,
                               Entity.UNMANAGED, Entity.KUBE_APISERVER})


def workload_identity(namespace: str, namespace_labels: Mapping[str, str], pod_labels: Mapping[str, str],
                      service_account: str, cluster: str = DEFAULT_CLUSTER) -> dict[str, tuple[str, str]]:
    """The identity labels of a pod ("Identities and selectors"), keyed by label key -> (source, value)."""
    labels = {key: (K8S_SOURCE, value) for key, value in pod_labels.items()}
    labels[NAMESPACE_LABEL] = (K8S_SOURCE, namespace)
    for key, value in namespace_labels.items():
        labels[NAMESPACE_LABELS_PREFIX + key] = (K8S_SOURCE, value)
    labels[NAMESPACE_LABELS_PREFIX + METADATA_NAME_LABEL] = (K8S_SOURCE, namespace)
    labels[SERVICE_ACCOUNT_LABEL] = (K8S_SOURCE, service_account)
    labels[CLUSTER_LABEL] = (K8S_SOURCE, cluster)
    return labels


def reserved_identity(entity: Entity) -> dict[str, tuple[str, str]]:
    """The identity labels of a reserved endpoint: ``reserved:<entity>``."""
    return {entity.value: (RESERVED_SOURCE, "")}


def entity_selects_entity(peer: Entity, endpoint: Entity) -> bool:
    """Whether a ``toEntities``/``fromEntities`` value selects a non-pod endpoint of kind ``endpoint``."""
    if peer is Entity.ALL:
        return True
    if peer is Entity.NONE:
        return False
    if peer is Entity.CLUSTER:
        return endpoint in _CLUSTER_RESERVED
    return peer is endpoint


def entity_selects_pod(peer: Entity) -> bool:
    """Whether an entity value selects the (local-cluster, Cilium-managed) pods: ``cluster`` and ``all``."""
    return peer in (Entity.CLUSTER, Entity.ALL)


@dataclass(frozen=True, slots=True)
class Identity:
    """One security identity: its labels as ``(key, source, value)``, sorted; equal label sets are one identity.

    ``labels`` is the identity in the form selectors evaluate (key -> (source, value)).
    """

    entries: tuple[tuple[str, str, str], ...]
    labels: IdentityLabels = field(compare=False, repr=False)

    @classmethod
    def of(cls, labels: Mapping[str, tuple[str, str]]) -> Identity:
        return cls(tuple(sorted((key, source, value) for key, (source, value) in labels.items())), dict(labels))

    def describe(self) -> str:
        """``k8s:app=web, k8s:io.kubernetes.pod.namespace=default, ...`` (as ``cilium identity list`` shows)."""
        return ", ".join(f"{source}:{key}={value}" for key, source, value in self.entries)


@dataclass(frozen=True, slots=True)
class IdentityTable:
    """The identities of a topology's workloads, in order of first appearance, and who shares each.

    ``identities[i]`` is shared by the workloads ``members[i]`` (``namespace/name``, topology order);
    ``of_workload[w]`` is the index of the identity of the topology's ``w``-th workload.
    ``Model.identity_of``/``Model.sharing_identity`` look them up by workload name.
    """

    identities: tuple[Identity, ...]
    members: tuple[tuple[str, ...], ...]
    of_workload: tuple[int, ...]
    names: tuple[str, ...] = ()
    """How reports name each identity: ``namespace/{pod labels}``, plus its service account when it
    is not ``default`` (``identity_name``)."""


def allocate_identities(topology: Topology, cluster: str = DEFAULT_CLUSTER) -> IdentityTable:
    """Each workload's identity, as Cilium allocates them: one per distinct label set."""
    index: dict[Identity, int] = {}
    identities: list[Identity] = []
    members: list[list[str]] = []
    names: list[str] = []
    of_workload: list[int] = []
    for w in topology.workloads:
        identity = Identity.of(workload_identity(w.namespace, topology.namespaces.get(w.namespace, {}), w.labels,
                                                 w.service_account, cluster))
        found = index.get(identity)
        if found is None:
            found = index[identity] = len(identities)
            identities.append(identity)
            members.append([])
            names.append(identity_name(w.namespace, w.labels, w.service_account))
        members[found].append(w.ref)
        of_workload.append(found)
    if len(set(names)) < len(names):  # label values no API server would take ({a: "b,c=d"} and {a: b, c: d})
        names = [f"{name} #{i + 1}" for i, name in enumerate(names)]
    return IdentityTable(tuple(identities), tuple(tuple(m) for m in members), tuple(of_workload), tuple(names))


def identity_name(namespace: str, pod_labels: Mapping[str, str], service_account: str) -> str:
    """``default/{app=web,tier=front}``, and `` (serviceaccount robot)`` after it for another service account.

    What tells the identities of one topology apart (the namespace's labels and the cluster name are
    the same for every pod of the namespace), short enough for a table.
    """
    labels = ",".join(f"{key}={value}" for key, value in sorted(pod_labels.items()))
    account = "" if service_account == DEFAULT_SERVICE_ACCOUNT else f" (serviceaccount {service_account})"
    return f"{namespace}/{{{labels}}}{account}"
