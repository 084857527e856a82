"""``cilium-dbg endpoint list -o json``: the endpoints one Cilium agent manages, and the policy each realized.

Only the agent's own API knows whether an endpoint's datapath enforces a given policy revision: its
``status.policy.realized.policy-revision`` (the CiliumEndpoint resource carries no revision, and its
``status.state`` is compressed so that a regenerating endpoint reads ``ready``). The output is one
pretty-printed JSON array of ``models.Endpoint`` (cilium ``api/v1/models``), sorted by id, followed
by an empty line. The paths read here, and nothing else (docs/live-evidence.md, "Realization"):

- ``id``; ``status.state`` (``ready``, ``regenerating``, ``waiting-for-identity``, ...);
- ``status.identity.id`` -- absent while the endpoint has no identity, and then ``status.policy``
  is absent too;
- ``status.policy.realized.policy-revision`` -- the agent-local revision the datapath enforces;
  ``omitempty``, so a revision 0 is absent;
- ``status.external-identifiers.k8s-namespace`` / ``k8s-pod-name`` (filled unless the endpoint
  opted out of the legacy identifiers), else ``pod-name`` (``<namespace>/<pod>``), else the
  addresses in ``status.networking.addressing[].ipv4``/``ipv6``.

The list includes endpoints that are not pods (``reserved:host``, ``reserved:health``); they match
no probe pod and are ignored. Revisions are agent-local: compare an endpoint only with a revision
read from the agent that hosts it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flowcheck.errors import ClusterError

READY_STATE = "ready"


@dataclass(frozen=True, slots=True)
class AgentEndpoint:
    """One endpoint as its agent reports it."""

    id: int
    namespace: str
    pod_name: str
    addresses: tuple[str, ...]
    identity: int | None
    state: str
    realized_revision: int | None
    """None when the endpoint has no identity yet (no policy computed); 0 when the field is absent."""

    def is_pod(self, namespace: str, name: str, ip: str = "") -> bool:
        """Whether this endpoint is pod ``namespace/name`` (by its k8s identifiers, else by ``ip``)."""
        if self.pod_name:
            return (self.namespace, self.pod_name) == (namespace, name)
        return bool(ip) and ip in self.addresses

    def describe(self) -> str:
        who = f"{self.namespace}/{self.pod_name}" if self.pod_name else ", ".join(self.addresses) or f"#{self.id}"
        revision = "no identity yet" if self.realized_revision is None else f"revision {self.realized_revision}"
        return f"endpoint {self.id} ({who}): {self.state}, {revision}"


def parse_endpoint_list(stdout: str, *, agent: str = "the agent") -> list[AgentEndpoint]:
    """The endpoints in ``endpoint list -o json`` output; ``ClusterError`` when it is not that output."""
    try:
        document = json.loads(stdout)
    except ValueError as exc:
        raise ClusterError(f"`endpoint list -o json` in {agent} printed no JSON ({exc}): {stdout.strip()[:120]!r}") \
            from None
    if not isinstance(document, list):
        raise ClusterError(f"`endpoint list -o json` in {agent}: expected a JSON array of endpoints, got "
                           f"{type(document).__name__}")
    return [_endpoint(item, agent, index) for index, item in enumerate(document)]


def _endpoint(item: Any, agent: str, index: int) -> AgentEndpoint:
    if not isinstance(item, Mapping):
        raise ClusterError(f"`endpoint list -o json` in {agent}: item {index} is not an object")
    status = _map(item.get("status"))
    identifiers = _map(status.get("external-identifiers"))
    namespace = _text(identifiers.get("k8s-namespace"))
    pod = _text(identifiers.get("k8s-pod-name"))
    if not pod and "/" in _text(identifiers.get("pod-name")):
        namespace, pod = _text(identifiers.get("pod-name")).split("/", 1)
    addresses = tuple(address for pair in _list(_map(status.get("networking")).get("addressing"))
                      for key in ("ipv4", "ipv6") if (address := _text(_map(pair).get(key))))
    identity = _int(_map(status.get("identity")).get("id"))
    realized = _map(_map(status.get("policy")).get("realized"))
    revision: int | None = None
    if identity is not None and status.get("policy") is not None:
        revision = _int(realized.get("policy-revision")) or 0
    return AgentEndpoint(id=_int(item.get("id")) or 0, namespace=namespace, pod_name=pod, addresses=addresses,
                         identity=identity, state=_text(status.get("state")), realized_revision=revision)


def lagging(endpoints: Sequence[AgentEndpoint], pods: Sequence[tuple[str, str, str]], target: int) -> list[str]:
    """Why each of ``pods`` (namespace, name, ip) on this agent has not realized revision ``target``
    (empty when all have): missing, no identity yet, or a lower realized revision.

    cilium-cli's wait (``countEndpointsBelowPolicyRevision``, connectivity/check/policy.go) counts an
    endpoint with an identity as not ready while its realized revision is below the target, and skips
    endpoints without an identity; flowcheck waits for those too, because it is about to probe them.
    A ``ready`` state is not required: the realized revision only grows, and a node-wide "every
    endpoint ready at once" condition may never hold while other endpoints regenerate.
    """
    behind = []
    for namespace, name, ip in pods:
        found = next((e for e in endpoints if e.is_pod(namespace, name, ip)), None)
        if found is None:
            behind.append(f"{namespace}/{name}: no endpoint on this agent yet")
        elif found.realized_revision is None:
            behind.append(f"{namespace}/{name}: {found.describe()}")
        elif found.realized_revision < target:
            behind.append(f"{namespace}/{name}: realized revision {found.realized_revision}, waiting for "
                          f">= {target} ({found.state})")
    return behind


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value
