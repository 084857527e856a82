"""The policy kinds flowcheck reads, the apiVersion the API server serves each at, and what it stores.

Schema validation, the model's parsers and the cluster layer (which applies the same documents)
all need these facts; they live here, below all three, so each is written once.
"""

from __future__ import annotations

from typing import Any

from flowcheck.errors import PolicyError
from flowcheck.manifests.documents import SourceDocument

NETWORK_POLICY_KIND = "NetworkPolicy"
NETWORK_POLICY_API_VERSION = "networking.k8s.io/v1"
CILIUM_NETWORK_POLICY_KIND = "CiliumNetworkPolicy"
CILIUM_CLUSTERWIDE_POLICY_KIND = "CiliumClusterwideNetworkPolicy"
CILIUM_API_VERSION = "cilium.io/v2"
CILIUM_POLICY_KINDS = frozenset({CILIUM_NETWORK_POLICY_KIND, CILIUM_CLUSTERWIDE_POLICY_KIND})

POLICY_API_VERSIONS: dict[str, str] = {
    NETWORK_POLICY_KIND: NETWORK_POLICY_API_VERSION,
    CILIUM_NETWORK_POLICY_KIND: CILIUM_API_VERSION,
    CILIUM_CLUSTERWIDE_POLICY_KIND: CILIUM_API_VERSION,
}
"""Every policy kind flowcheck reads and applies, with the one apiVersion the API server serves it at."""

# Fields Cilium has removed, with the message a repository still carrying them gets instead of
# "unknown field": "The previously deprecated FromRequires and ToRequires fields of the
# CiliumNetworkPolicy and CiliumClusterwideNetworkPolicy CRDs have been removed" (1.19 upgrade notes,
# Documentation/operations/upgrade.rst). The notes name no replacement; what the fields did is
# expressible in the peer selectors: Cilium appended the requirements to every fromEndpoints
# (toEndpoints) selector of the rules selecting the same endpoints (pkg/policy/api/ingress.go
# GetSourceEndpointSelectorsWithRequirements; "toRequires and fromRequires apply to all rules that
# share the same endpoint selector", layer3.rst).
CILIUM_REMOVED_FIELDS = {
    key: (f"{key} was removed in Cilium 1.19 (deprecated since 1.17) and has no replacement field: add its "
          f"label requirements to the {peers} selectors of every {direction} rule selecting these endpoints, "
          "which is what Cilium did with them")
    for key, peers, direction in (("fromRequires", "fromEndpoints", "ingress"),
                                  ("toRequires", "toEndpoints", "egress"))
}


def missing_cilium_spec(doc: SourceDocument, body: dict[str, Any]) -> PolicyError | None:
    """The error for a Cilium policy with neither ``spec`` nor ``specs`` (``body`` with nulls pruned).

    Cilium refuses such an object although its CRD schema does not (every field there is optional),
    so schema validation and the parser both apply this one rule.
    """
    if "spec" in body or "specs" in body:
        return None
    return doc.error("spec", f"missing: a {doc.kind} needs `spec` (one rule) or `specs` (a list)")


def without_nulls(value: Any) -> Any:
    """``value`` with every ``key: null`` of every mapping in it dropped (list items are kept).

    What the API server does to a custom resource: it prunes nulls of fields its structural schema
    does not declare ``nullable`` (the Cilium CRDs declare none), so ``fromEndpoints:`` with no value
    is stored -- and enforced -- as a missing field. A null list item is not pruned (and not valid).
    """
    if isinstance(value, dict):
        return {key: without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [without_nulls(item) for item in value]
    return value
