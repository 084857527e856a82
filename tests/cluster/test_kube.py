"""Kubernetes operations against a fake API: namespaces and their labels, applying and removing policies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from flowcheck.cluster import kube
from flowcheck.cluster.api_errors import ApiError, ApiUnreachable, Conflict, Forbidden, Invalid, NotFound, ServerError
from flowcheck.cluster.kube import PerThreadClients, api_error, apply_policy, prepare_policy, remove_policy
from flowcheck.errors import ClusterError
from flowcheck.manifests.documents import SourceDocument, read_documents
from tests.cluster.fakes import FakeClock, FakeCluster, data

REPO = Path(__file__).resolve().parents[2]
RUN = "20260827-142958-9f3a1c"


def repo_policies() -> list[SourceDocument]:
    return list(read_documents([REPO / "manifests" / "network-policies"]))


@pytest.fixture
def cluster() -> FakeCluster:
    c = FakeCluster()
    for ns in ("default", "kube-system"):
        c.add_namespace(ns)
    return c


def test_an_api_error_is_typed_by_status_and_keeps_the_status_body(cluster: FakeCluster) -> None:
    exc = ApiException(status=422, reason="Unprocessable Entity", body=data("api-status-422-invalid.json"))
    error = api_error(cluster.clients(), "applying it", exc)
    assert isinstance(error, Invalid)
    assert (error.status, error.reason, error.action) == (422, "Invalid", "applying it")
    assert error.payload is not None and error.payload["kind"] == "Status"
    assert error.summary.startswith('422 Invalid: CiliumNetworkPolicy.cilium.io "allow-get-only" is invalid: '
                                    "spec.ingress[0].toPorts[0].ports[0].protocol: Unsupported value")
    assert str(error) == f"applying it: {error.summary}"
    conflict = api_error(cluster.clients(), "creating it", ApiException(
        status=409, reason="Conflict", body=data("api-status-409-already-exists.json")))
    assert isinstance(conflict, Conflict) and conflict.reason == "AlreadyExists"


@pytest.mark.parametrize(("status", "expected"), [(404, NotFound), (403, Forbidden), (409, Conflict),
                                                  (503, ServerError), (418, ApiError)])
def test_every_status_gets_its_class(cluster: FakeCluster, status: int, expected: type[ApiError]) -> None:
    error = api_error(cluster.clients(), "reading it", ApiException(status=status, reason="x"))
    assert type(error) is expected


def test_a_status_less_answer_keeps_the_clients_reason(cluster: FakeCluster) -> None:
    error = api_error(cluster.clients(), "x", ApiException(status=0, reason="Connection refused"))
    assert isinstance(error, ApiError) and error.summary == "Connection refused"


def test_no_answer_is_unreachable_and_other_exceptions_are_not_api_errors(cluster: FakeCluster) -> None:
    from urllib3.exceptions import MaxRetryError

    error = api_error(cluster.clients(), "listing pods", MaxRetryError(None, "/api/v1/pods", "Connection refused"))
    assert isinstance(error, ApiUnreachable) and not isinstance(error, ApiError)
    assert str(error).startswith("listing pods: cannot reach the Kubernetes API server of ")
    assert api_error(cluster.clients(), "x", ValueError("a bug")) is None


def test_the_repository_policies_are_created_in_document_order_with_the_run_label(cluster: FakeCluster) -> None:
    docs = repo_policies()
    clients = cluster.clients()
    applied = [apply_policy(clients, prepare_policy(d, RUN)) for d in docs]
    assert [(a.ref.kind, a.ref.name, a.outcome) for a in applied] == [
        ("NetworkPolicy", "default-deny-ingress", "created"), ("NetworkPolicy", "allow-dns-egress", "created"),
        ("NetworkPolicy", "allow-monitoring-scrape", "created"), ("CiliumNetworkPolicy", "allow-get-only", "created")]
    assert cluster.names("create_") == ["create_namespaced_network_policy"] * 3 + ["create_namespaced_custom_object"]
    cnp = cluster.custom[("ciliumnetworkpolicies", "default", "allow-get-only")]
    assert cnp["metadata"]["labels"] == {"flowcheck.io/run": RUN}
    assert cnp["spec"]["ingress"][0]["toPorts"][0]["rules"]["http"] == [{"method": "GET"}]
    knp = cluster.network_policies[("default", "allow-monitoring-scrape")]
    assert knp.metadata.labels == {"flowcheck.io/run": RUN}
    assert knp.spec.ingress[0].ports[0].port == "metrics"
    assert str(applied[0].source).endswith("default-deny-ingress.yaml (document 0)")


def test_conflict_on_create_replaces_with_the_live_resource_version(cluster: FakeCluster) -> None:
    clients = cluster.clients()
    doc = repo_policies()[3]  # allow-get-only
    apply_policy(clients, prepare_policy(doc, "earlier-run"))  # a leftover of an earlier run
    live_rv = cluster.custom[("ciliumnetworkpolicies", "default", "allow-get-only")]["metadata"]["resourceVersion"]
    cluster.calls.clear()
    result = apply_policy(clients, prepare_policy(doc, RUN))
    assert result.outcome == "replaced" and result.original is None  # it was flowcheck's: nothing to restore
    assert cluster.names() == ["create_namespaced_custom_object", "get_namespaced_custom_object",
                               "replace_namespaced_custom_object"]
    replace_body = cluster.calls[2][1][-1]
    assert replace_body["metadata"]["resourceVersion"] == live_rv
    assert cluster.custom[("ciliumnetworkpolicies", "default", "allow-get-only")]["metadata"]["labels"] == {
        "flowcheck.io/run": RUN}


def test_a_replace_that_races_another_writer_is_retried(cluster: FakeCluster) -> None:
    clients = cluster.clients()
    doc = repo_policies()[0]
    apply_policy(clients, prepare_policy(doc, "earlier-run"))
    cluster.fail("replace_namespaced_network_policy",
                 ApiException(status=409, reason="Conflict", body='{"message":"the object has been modified"}'))
    result = apply_policy(clients, prepare_policy(doc, RUN))
    assert result.outcome == "replaced"
    assert cluster.names("replace_") == ["replace_namespaced_network_policy"] * 2


def test_a_foreign_policy_that_is_replaced_is_restored_not_deleted(cluster: FakeCluster) -> None:
    clients = cluster.clients()
    cluster.custom[("ciliumnetworkpolicies", "default", "allow-get-only")] = {
        "apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy",
        "metadata": {"name": "allow-get-only", "namespace": "default", "resourceVersion": "7",
                     "labels": {"kustomize.toolkit.fluxcd.io/name": "policies"}, "uid": "u-1"},
        "spec": {"endpointSelector": {"matchLabels": {"app": "my-api"}}}, "status": {"conditions": []}}
    result = apply_policy(clients, prepare_policy(repo_policies()[3], RUN))
    assert result.outcome == "replaced"
    live = cluster.custom[("ciliumnetworkpolicies", "default", "allow-get-only")]
    remembered = json.loads(live["metadata"]["annotations"][kube.REPLACED_ORIGINAL_ANNOTATION])
    assert remembered["metadata"] == {"name": "allow-get-only", "namespace": "default",
                                      "labels": {"kustomize.toolkit.fluxcd.io/name": "policies"}}
    assert "status" not in remembered
    assert remove_policy(clients, result) == "restored"
    restored = cluster.custom[("ciliumnetworkpolicies", "default", "allow-get-only")]
    assert restored["spec"] == {"endpointSelector": {"matchLabels": {"app": "my-api"}}}
    assert restored["metadata"]["labels"] == {"kustomize.toolkit.fluxcd.io/name": "policies"}
    assert "annotations" not in restored["metadata"]


def test_api_validation_errors_name_the_object_and_file(cluster: FakeCluster) -> None:
    cluster.fail("create_namespaced_custom_object",
                 ApiException(status=422, reason="Unprocessable Entity", body=data("api-status-422-invalid.json")))
    with pytest.raises(ClusterError) as err:
        apply_policy(cluster.clients(), prepare_policy(repo_policies()[3], RUN))
    message = str(err.value)
    assert message.startswith("CiliumNetworkPolicy default/allow-get-only (")
    assert "allow-get-only.yaml (document 0)) was rejected by the API server: 422 Invalid: " in message
    assert "Unsupported value: \"HTTP\"" in message


def test_client_side_validation_of_typed_policies_is_reported(cluster: FakeCluster) -> None:
    body = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "typo", "namespace": "default"}, "spec": {"podSelector": {}, "ingres": []}}
    doc = SourceDocument("p.yaml", 0, None, body)

    def strict_create(namespace: str, body: dict[str, Any]) -> None:
        from kubernetes.client import V1NetworkPolicy

        V1NetworkPolicy.model_validate(body, strict=False)  # the real typed client validates the body first
        raise AssertionError("unknown field accepted")

    clients = cluster.clients()
    clients.networking.create_namespaced_network_policy = strict_create
    with pytest.raises(ClusterError, match=r"NetworkPolicy default/typo \(p.yaml \(document 0\)\) is not a valid"):
        apply_policy(clients, prepare_policy(doc, RUN))


def test_only_network_policies_are_applied() -> None:
    doc = SourceDocument("x.yaml", 2, None, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})
    with pytest.raises(ClusterError, match=r"x.yaml \(document 2\): ConfigMap 'c' is not a network policy"):
        prepare_policy(doc, RUN)
    wrong = SourceDocument("y.yaml", 0, None, {"apiVersion": "cilium.io/v2alpha1", "kind": "CiliumNetworkPolicy",
                                                "metadata": {"name": "p"}})
    with pytest.raises(ClusterError, match=r"has apiVersion 'cilium\.io/v2alpha1', expected 'cilium\.io/v2'"):
        prepare_policy(wrong, RUN)


def test_namespace_defaults_and_clusterwide_policies(cluster: FakeCluster) -> None:
    knp = prepare_policy(SourceDocument("a.yaml", 0, None, {
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "n"},
        "spec": {"podSelector": {}}}), RUN)
    assert knp.ref.namespace == "default" and knp.body["metadata"]["namespace"] == "default"
    ccnp_doc = SourceDocument("b.yaml", 0, None, {
        "apiVersion": "cilium.io/v2", "kind": "CiliumClusterwideNetworkPolicy",
        "metadata": {"name": "dns", "namespace": "ignored"}, "spec": {"endpointSelector": {}}})
    applied = apply_policy(cluster.clients(), prepare_policy(ccnp_doc, RUN))
    assert str(applied.ref) == "CiliumClusterwideNetworkPolicy dns"
    assert cluster.names("create_") == ["create_cluster_custom_object"]
    assert "namespace" not in cluster.custom[("ciliumclusterwidenetworkpolicies", None, "dns")]["metadata"]
    assert remove_policy(cluster.clients(), applied) == "deleted"
    assert remove_policy(cluster.clients(), applied) == "already gone"


def test_new_namespace_gets_topology_labels_and_the_run_label(cluster: FakeCluster) -> None:
    outcome = kube.ensure_namespace(cluster.clients(), "monitoring", {"team": "observability"}, RUN)
    assert outcome.created and outcome.added_labels == ()
    assert cluster.namespaces["monitoring"].metadata.labels == {
        "team": "observability", "flowcheck.io/run": RUN, "kubernetes.io/metadata.name": "monitoring"}


def test_existing_namespace_gets_missing_labels_recorded_and_removed_later(cluster: FakeCluster) -> None:
    clients = cluster.clients()
    outcome = kube.ensure_namespace(clients, "default", {"team": "web", "kubernetes.io/metadata.name": "default"}, RUN)
    assert not outcome.created and outcome.added_labels == ("team",)
    ns = cluster.namespaces["default"]
    assert ns.metadata.labels["team"] == "web" and "flowcheck.io/run" not in ns.metadata.labels
    assert ns.metadata.annotations == {f"flowcheck.io/added-labels.{RUN}": "team"}
    kube.remove_added_labels(clients, "default", outcome.added_labels, RUN)
    assert cluster.namespaces["default"].metadata.labels == {"kubernetes.io/metadata.name": "default"}
    assert not cluster.namespaces["default"].metadata.annotations


def test_existing_namespace_with_a_different_label_value_is_refused(cluster: FakeCluster) -> None:
    cluster.add_namespace("monitoring", {"team": "sre"})
    with pytest.raises(ClusterError, match=r"namespace monitoring already exists with different labels: "
                                           r"team='sre' \(topology: 'observability'\)"):
        kube.ensure_namespace(cluster.clients(), "monitoring", {"team": "observability"}, RUN)
    assert "patch_namespace" not in cluster.names()


def test_a_terminating_namespace_is_waited_for_then_recreated(cluster: FakeCluster) -> None:
    cluster.add_namespace("tenant", phase="Terminating")
    clock = FakeClock()
    reads = {"n": 0}
    real_read = cluster.clients().core.read_namespace

    def read(name: str) -> Any:
        reads["n"] += 1
        if reads["n"] == 3:  # the namespace controller finishes while flowcheck polls
            cluster.namespaces.pop("tenant", None)
        return real_read(name)

    clients = cluster.clients()
    clients.core.read_namespace = read
    outcome = kube.ensure_namespace(clients, "tenant", {}, RUN, clock=clock, sleep=clock.sleep)
    assert outcome.created and clock.sleeps == [1.0]


def test_namespace_that_never_goes_away_times_out(cluster: FakeCluster) -> None:
    cluster.add_namespace("tenant", phase="Terminating")
    clock = FakeClock()
    with pytest.raises(ClusterError, match=r"namespace\(s\) tenant still terminating after 5 s"):
        kube.wait_namespaces_gone(cluster.clients(), ["tenant"], timeout_s=5, clock=clock, sleep=clock.sleep)


def test_per_thread_clients_builds_one_bundle_per_thread(cluster: FakeCluster) -> None:
    import threading

    per_thread = PerThreadClients(cluster.clients)
    seen: list[int] = []
    together = threading.Barrier(4)  # all threads alive at once, so their idents differ

    def work() -> None:
        first = per_thread.get()
        assert per_thread.get() is first
        seen.append(id(first))
        together.wait(timeout=10)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(cluster.clients_made)) == 4 and len(cluster.clients_made) == 4 and len(set(seen)) == 4


def test_client_factory_refuses_an_implicit_context() -> None:
    with pytest.raises(ClusterError, match="never uses the kubeconfig's current context"):
        kube.client_factory("")


def test_client_factory_names_the_context_it_cannot_load(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n")
    with pytest.raises(ClusterError, match=r"cannot load kube context 'kind-flowcheck' from .*config"):
        kube.client_factory("kind-flowcheck", str(kubeconfig))()


def test_client_factory_loads_the_named_context_not_the_current_one(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: prod\n"
        "clusters:\n- name: kind-flowcheck\n  cluster: {server: 'https://127.0.0.1:41231'}\n"
        "- name: prod\n  cluster: {server: 'https://prod.example:6443'}\n"
        "contexts:\n- name: kind-flowcheck\n  context: {cluster: kind-flowcheck, user: u}\n"
        "- name: prod\n  context: {cluster: prod, user: u}\n"
        "users:\n- name: u\n  user: {token: t}\n")
    clients = kube.client_factory("kind-flowcheck", str(kubeconfig))()
    assert clients.core.api_client.configuration.host == "https://127.0.0.1:41231"
    assert clients.networking.api_client is clients.core.api_client is clients.custom.api_client
    other = kube.client_factory("kind-flowcheck", str(kubeconfig))()
    assert other.core.api_client is not clients.core.api_client  # one ApiClient per call (per thread)
