"""Label selectors as Kubernetes and Cilium evaluate them, over identities with label *sources*.

Cilium stores every identity label with a source (``k8s:app=web``, ``reserved:host``) and a
selector key may name one (``k8s:io.kubernetes.pod.namespace``) or not, in which case it is an
``any:`` key that matches the label whatever its source (docs/semantics.md, "Identities and
selectors"). Kubernetes
NetworkPolicy selectors never carry a source; their keys are pod labels, i.e. ``k8s:`` ones.

A selector is a conjunction of ``Requirement`` objects: ``matchLabels`` entries become ``In``
requirements with one value, ``matchExpressions`` keep their operator (``In``, ``NotIn``,
``Exists``, ``DoesNotExist``). The empty selector matches every identity; what "every" means
(one namespace, all pods, all peers) is decided by the parser, which adds the namespace
requirements Cilium adds ("Namespace scoping"), so evaluation here is plain and fast.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

ANY_SOURCE = "any"
K8S_SOURCE = "k8s"
RESERVED_SOURCE = "reserved"

# Sources Cilium knows (pkg/labels); a selector key "foo:bar" with another prefix is just a key.
KNOWN_SOURCES = frozenset({ANY_SOURCE, K8S_SOURCE, RESERVED_SOURCE, "container", "cidr", "fqdn",
                           "unspec", "cilium-generated", "kvstore", "etcd", "node"})

IdentityLabels = Mapping[str, tuple[str, str]]
"""An identity's labels: key -> (source, value). One source per key, as Cilium's identities have."""


class Operator(enum.StrEnum):
    """The four matchExpressions operators of a Kubernetes LabelSelector."""

    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"


@dataclass(frozen=True, slots=True)
class Requirement:
    """One condition on one label. ``source`` is ``any`` unless the selector key named one."""

    source: str
    key: str
    operator: Operator
    values: frozenset[str] = frozenset()

    def matches(self, labels: IdentityLabels) -> bool:
        entry = labels.get(self.key)
        present = entry is not None and (self.source == ANY_SOURCE or entry[0] == self.source)
        if self.operator is Operator.EXISTS:
            return present
        if self.operator is Operator.DOES_NOT_EXIST:
            return not present
        in_values = present and entry is not None and entry[1] in self.values
        return in_values if self.operator is Operator.IN else not in_values

    def describe(self) -> str:
        key = self.key if self.source in (ANY_SOURCE, K8S_SOURCE) else f"{self.source}:{self.key}"
        if self.operator is Operator.IN and len(self.values) == 1:
            return f"{key}={next(iter(self.values))}"
        if self.operator in (Operator.IN, Operator.NOT_IN):
            return f"{key} {self.operator.value} ({','.join(sorted(self.values))})"
        return f"{key} {self.operator.value}"


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """A conjunction of requirements; the empty selector matches every identity."""

    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: IdentityLabels) -> bool:
        return all(req.matches(labels) for req in self.requirements)

    @property
    def is_empty(self) -> bool:
        return not self.requirements

    def has_key(self, key: str) -> bool:
        """True when some requirement is about ``key`` (any source)."""
        return any(req.key == key for req in self.requirements)

    def has_key_prefix(self, prefix: str) -> bool:
        return any(req.key.startswith(prefix) for req in self.requirements)

    def has_source(self, source: str) -> bool:
        return any(req.source == source for req in self.requirements)

    def with_requirement(self, requirement: Requirement) -> LabelSelector:
        return LabelSelector((*self.requirements, requirement))

    def without(self, source: str, key: str) -> LabelSelector:
        """This selector less every requirement on ``source:key``."""
        return LabelSelector(tuple(r for r in self.requirements if not (r.source == source and r.key == key)))

    def describe(self) -> str:
        return "{" + ", ".join(r.describe() for r in self.requirements) + "}"


def split_source(key: str) -> tuple[str, str]:
    """``k8s:app`` -> (``k8s``, ``app``); ``app`` -> (``any``, ``app``) as Cilium parses selector keys.

    Only a prefix naming a known Cilium label source counts: a colon elsewhere stays in the key.
    """
    head, sep, tail = key.partition(":")
    if sep and head in KNOWN_SOURCES and tail:
        return head, tail
    return ANY_SOURCE, key
