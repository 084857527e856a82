"""Namespace scoping of CNP/CCNP selectors, identities, and empty-vs-missing peer lists.

Written from docs/semantics.md [Identities and selectors] (identity labels) and [Namespace scoping] (the scoping table
and "Empty vs missing peer lists").
"""

from __future__ import annotations

from flowcheck.model.flows import Flow
from flowcheck.model.identity import workload_identity
from flowcheck.verdict import Verdict
from tests.model.helpers import ccnp, cnp, model, topo, verdict, wl

NAMESPACES = {"default": {}, "other": {"team": "a"}, "third": {"team": "b"}}
TOPOLOGY = topo(wl("default/server", {"app": "server"}), wl("default/client", {"app": "client"}),
                wl("other/client", {"app": "client"}), wl("third/client", {"app": "client"}),
                namespaces=NAMESPACES)


def test_identity_has_the_labels_cilium_synthesises() -> None:
    """[Identities and selectors]: k8s: pod labels, pod namespace, namespace labels (metadata.name included), SA,
    cluster."""
    labels = workload_identity("other", {"team": "a"}, {"app": "x"}, "builder")
    assert labels == {
        "app": ("k8s", "x"),
        "io.kubernetes.pod.namespace": ("k8s", "other"),
        "io.cilium.k8s.namespace.labels.team": ("k8s", "a"),
        "io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name": ("k8s", "other"),
        "io.cilium.k8s.policy.serviceaccount": ("k8s", "builder"),
        "io.cilium.k8s.policy.cluster": ("k8s", "default"),
    }


def test_cnp_peer_selector_without_namespace_gets_the_policy_namespace() -> None:
    """[Namespace scoping]: a fromEndpoints selector with no namespace key gets the CNP's namespace added."""
    m = model(TOPOLOGY, cnp("p", """
        endpointSelector: {matchLabels: {app: server}}
        ingress: [{fromEndpoints: [{matchLabels: {app: client}}]}]"""))
    assert verdict(m, "default/client", "default/server") is Verdict.ALLOWED
    assert verdict(m, "other/client", "default/server") is Verdict.DROPPED


def test_cnp_empty_peer_selector_means_all_pods_of_the_policy_namespace() -> None:
    """[Namespace scoping]: `{}` in fromEndpoints = all pods of ns (never other namespaces)."""
    m = model(TOPOLOGY, cnp("p", """
        endpointSelector: {}
        ingress: [{fromEndpoints: [{}]}]"""))
    assert verdict(m, "default/client", "default/server") is Verdict.ALLOWED
    assert verdict(m, "other/client", "default/server") is Verdict.DROPPED
    assert verdict(m, "world@1.1.1.1", "default/server") is Verdict.DROPPED


def test_selector_naming_the_pod_namespace_is_cross_namespace() -> None:
    """[Namespace scoping]: a selector containing io.kubernetes.pod.namespace is left as written."""
    m = model(TOPOLOGY, cnp("p", """
        endpointSelector: {matchLabels: {app: server}}
        ingress: [{fromEndpoints: [{matchLabels: {k8s:io.kubernetes.pod.namespace: other, app: client}}]}]"""))
    assert verdict(m, "other/client", "default/server") is Verdict.ALLOWED
    assert verdict(m, "default/client", "default/server") is Verdict.DROPPED


def test_namespace_label_key_selects_every_namespace_carrying_it() -> None:
    """[Namespace scoping]: a key starting with io.cilium.k8s.namespace.labels. gets no namespace added (since 1.16)."""
    m = model(TOPOLOGY, cnp("p", """
        endpointSelector: {matchLabels: {app: server}}
        ingress: [{fromEndpoints: [{matchLabels: {io.cilium.k8s.namespace.labels.team: a}}]}]"""))
    assert verdict(m, "other/client", "default/server") is Verdict.ALLOWED
    assert verdict(m, "third/client", "default/server") is Verdict.DROPPED
    assert verdict(m, "default/client", "default/server") is Verdict.DROPPED


def test_cnp_endpoint_selector_always_applies_to_its_own_namespace() -> None:
    """[Namespace scoping]: endpointSelector always gets the CNP namespace; a user k8s: namespace match is
    overwritten."""
    m = model(TOPOLOGY, cnp("p", """
        endpointSelector: {matchLabels: {k8s:io.kubernetes.pod.namespace: other}}
        ingress: [{}]"""))
    assert verdict(m, "default/server", "default/client") is Verdict.DROPPED  # selected: default ns
    assert verdict(m, "default/server", "other/client") is Verdict.ALLOWED  # not selected


def test_ccnp_peer_selector_spans_all_namespaces_but_only_pods() -> None:
    """[Namespace scoping] CCNP column: no namespace key -> `io.kubernetes.pod.namespace Exists`: all pods, never
    world."""
    m = model(TOPOLOGY, ccnp("p", """
        endpointSelector: {matchLabels: {app: server}}
        ingress: [{fromEndpoints: [{}]}]"""))
    assert verdict(m, "other/client", "default/server") is Verdict.ALLOWED
    assert verdict(m, "third/client", "default/server") is Verdict.ALLOWED
    assert verdict(m, "world@1.1.1.1", "default/server") is Verdict.DROPPED


def test_ccnp_endpoint_selector_is_used_as_written() -> None:
    """[Namespace scoping]: a CCNP endpointSelector is not namespace-scoped."""
    m = model(TOPOLOGY, ccnp("p", """
        endpointSelector: {matchLabels: {app: client}}
        ingress: [{}]"""))
    for ref in ("default/client", "other/client", "third/client"):
        assert verdict(m, "default/server", ref) is Verdict.DROPPED


def test_reserved_selector_is_not_namespace_scoped() -> None:
    """[Namespace scoping]: a selector with a reserved: key is returned unchanged -- it can select the host."""
    m = model(TOPOLOGY, cnp("p", """
        endpointSelector: {matchLabels: {app: client}}
        egress: [{toEndpoints: [{matchLabels: {"reserved:host": ""}}]}]"""))
    assert verdict(m, "default/client", "host") is Verdict.ALLOWED
    assert verdict(m, "default/client", "default/server") is Verdict.DROPPED


def test_service_account_label_selects_by_service_account() -> None:
    """[Identities and selectors]: io.cilium.k8s.policy.serviceaccount is part of the identity."""
    t = topo(wl("default/server"), wl("default/a", {"app": "x"}, sa="builder"), wl("default/b", {"app": "x"}))
    m = model(t, cnp("p", """
        endpointSelector: {matchLabels: {app: server}}
        ingress: [{fromEndpoints: [{matchLabels: {io.cilium.k8s.policy.serviceaccount: builder}}]}]"""))
    assert verdict(m, "default/a", "default/server") is Verdict.ALLOWED
    assert verdict(m, "default/b", "default/server") is Verdict.DROPPED


def test_match_expressions_in_notin_exists_doesnotexist() -> None:
    """[Identities and selectors]: selectors are LabelSelectors with In, NotIn, Exists, DoesNotExist (ANDed)."""
    t = topo(wl("default/server"), wl("default/a", {"tier": "web", "canary": "1"}), wl("default/b", {"tier": "web"}),
             wl("default/c", {"tier": "db"}), wl("default/d", {"role": "x"}))
    m = model(t, cnp("p", """
        endpointSelector: {matchLabels: {app: server}}
        ingress:
          - fromEndpoints:
              - matchExpressions:
                  - {key: tier, operator: In, values: [web, api]}
                  - {key: canary, operator: DoesNotExist}
              - matchExpressions:
                  - {key: role, operator: Exists}
                  - {key: tier, operator: NotIn, values: [web]}"""))
    assert verdict(m, "default/b", "default/server") is Verdict.ALLOWED  # first selector
    assert verdict(m, "default/a", "default/server") is Verdict.DROPPED  # canary exists
    assert verdict(m, "default/c", "default/server") is Verdict.DROPPED  # tier db, no role
    assert verdict(m, "default/d", "default/server") is Verdict.ALLOWED  # second selector (OR)


def test_empty_from_endpoints_list_selects_nothing() -> None:
    """[Namespace scoping]: `fromEndpoints: []` selects nothing, even with toPorts (l4_filter_test rows 1B/13)."""
    m = model(TOPOLOGY, cnp("p", """
        endpointSelector: {matchLabels: {app: server}}
        ingress: [{fromEndpoints: [], toPorts: [{ports: [{port: "8080"}]}]}]"""))
    assert verdict(m, "default/client", "default/server") is Verdict.DROPPED
    assert verdict(m, "world@1.1.1.1", "default/server") is Verdict.DROPPED


def test_null_peer_list_means_the_field_is_absent() -> None:
    """[Empty and missing peer lists]: the API server prunes nulls of non-nullable fields of a structural CRD schema
    (the Cilium CRDs declare none nullable), so `fromEndpoints:` with no value is a missing list -- not `[]` (selects
    nothing), and not an error. With toPorts the rule then allows every peer; alone it is the empty rule (default
    deny, allows nothing)."""
    m = model(TOPOLOGY, cnp("p", """
        endpointSelector: {matchLabels: {app: server}}
        ingress:
          - fromEndpoints:
            toPorts: [{ports: [{port: "8080", protocol: TCP}]}]
          - fromEndpoints:
          - fromCIDRSet:
            toPorts: [{ports: [{port: "9090", protocol: TCP}], rules: null}]"""))
    assert verdict(m, "third/client", "default/server") is Verdict.ALLOWED
    assert verdict(m, "world@1.1.1.1", "default/server") is Verdict.ALLOWED
    assert verdict(m, "world@1.1.1.1", "default/server", 9090) is Verdict.ALLOWED
    assert verdict(m, "third/client", "default/server", 9000) is Verdict.DROPPED
    assert verdict(m, "default/server", "default/client") is Verdict.ALLOWED  # egress: null is no egress


def test_rule_with_only_to_ports_allows_every_peer() -> None:
    """[Namespace scoping]: no L3 part but toPorts -> wildcard: pods of any namespace and world alike."""
    m = model(TOPOLOGY, cnp("p", """
        endpointSelector: {matchLabels: {app: server}}
        ingress: [{toPorts: [{ports: [{port: "8080", protocol: TCP}]}]}]"""))
    assert verdict(m, "third/client", "default/server") is Verdict.ALLOWED
    assert verdict(m, "world@1.1.1.1", "default/server") is Verdict.ALLOWED
    assert verdict(m, "remote-node", "default/server") is Verdict.ALLOWED
    assert verdict(m, "third/client", "default/server", 9090) is Verdict.DROPPED


def test_empty_rule_switches_to_default_deny_but_allows_nothing() -> None:
    """[Namespace scoping]: a rule `{}` allows nothing but puts the direction into default deny; egress stays open."""
    m = model(TOPOLOGY, cnp("p", """
        endpointSelector: {matchLabels: {app: server}}
        ingress: [{}]"""))
    assert verdict(m, "default/client", "default/server") is Verdict.DROPPED
    assert verdict(m, "default/server", "default/client") is Verdict.ALLOWED


def test_specs_are_independent_rules_with_their_own_selectors() -> None:
    """[Policy objects and rules]: each element of `specs` is an independent rule with its own selector."""
    text = """apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: multi, namespace: default}
specs:
  - endpointSelector: {matchLabels: {app: server}}
    ingress: [{fromEndpoints: [{matchLabels: {app: client}}]}]
  - endpointSelector: {matchLabels: {app: client}}
    ingress: [{}]
"""
    m = model(TOPOLOGY, text)
    assert verdict(m, "default/client", "default/server") is Verdict.ALLOWED
    decision = m.decide(Flow.between("default/server", "default/client", port=8080))
    assert decision.verdict is Verdict.DROPPED
    assert "CiliumNetworkPolicy default/multi ingress: no rule allows TCP/8080 from default/server" \
        in decision.reasons[0]
