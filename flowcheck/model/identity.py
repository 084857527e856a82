"""Security identities as Cilium synthesises them, and the entities policies can name.

Cilium does not match policies against pods but against *identities*: the pod's labels with the
``k8s:`` source plus labels it derives (cilium-semantics §1.2): the pod's namespace
(``io.kubernetes.pod.namespace``), every label of the Namespace object under
``io.cilium.k8s.namespace.labels.`` (``kubernetes.io/metadata.name`` included), the service account
and the cluster name. Endpoints that are not pods have *reserved* identities (``reserved:host``,
``reserved:world``, ...). Building the same label set here is what lets a selector such as
``{io.cilium.k8s.namespace.labels.team: a}`` or ``{reserved:host: ""}`` mean what it means in Cilium.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from flowcheck.model.selectors import K8S_SOURCE, RESERVED_SOURCE

NAMESPACE_LABEL = "io.kubernetes.pod.namespace"
NAMESPACE_LABELS_PREFIX = "io.cilium.k8s.namespace.labels."
SERVICE_ACCOUNT_LABEL = "io.cilium.k8s.policy.serviceaccount"
CLUSTER_LABEL = "io.cilium.k8s.policy.cluster"
METADATA_NAME_LABEL = "kubernetes.io/metadata.name"
# Cilium's cluster name unless configured otherwise (cilium-semantics §0 simulator defaults).
DEFAULT_CLUSTER = "default"


class Entity(enum.StrEnum):
    """The entities of ``fromEntities``/``toEntities`` (the CRD enum, cilium-semantics §1.4)."""

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

# What `cluster` selects besides the local cluster's pods (InitEntities, cilium-semantics §1.4 table).
_CLUSTER_RESERVED = frozenset({Entity.HOST, Entity.REMOTE_NODE, Entity.INIT, Entity.INGRESS, Entity.HEALTH,
                               Entity.UNMANAGED, Entity.KUBE_APISERVER})


def workload_identity(namespace: str, namespace_labels: Mapping[str, str], pod_labels: Mapping[str, str],
                      service_account: str, cluster: str = DEFAULT_CLUSTER) -> dict[str, tuple[str, str]]:
    """The identity labels of a pod (cilium-semantics §1.2), keyed by label key -> (source, value)."""
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
