"""Contract tests: the REAL ``kubernetes`` client classes over a fake HTTP layer.

Only ``ApiClient.rest_client`` is replaced (by ``FakeHttp``, answering with recorded real-shaped
JSON). Everything above it is the library's own code: request URLs and query strings, body
serialization, the PATCH content type, ``ApiException`` construction from a 409/422 response,
``Watch``'s line-by-line event stream and the deserialization into ``V1Pod`` -- so these tests
check that flowcheck calls the client exactly as the client expects. For an API server that does
not answer nothing is replaced at all: the real client talks to a closed local port.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from kubernetes import client, stream, watch
from kubernetes.client.rest import RESTResponse
from urllib3.exceptions import ProtocolError

from flowcheck.cli import main
from flowcheck.cluster import kube
from flowcheck.cluster.kube import KubeClients, apply_policy, prepare_policy
from flowcheck.cluster.podexec import ExecStartError, PodTarget, exec_in_pod
from flowcheck.cluster.workloads import wait_for_pods_ready
from flowcheck.errors import ClusterError
from flowcheck.manifests.documents import read_documents
from tests.cluster.fakes import FakeClock, data
from tests.ports import free_port

REPO = Path(__file__).resolve().parents[2]
RUN = "20260827-142958-9f3a1c"


class FakeUrllib3Response:
    def __init__(self, status: int, body: bytes, lines: list[bytes] | None = None) -> None:
        self.status = status
        self.reason = {200: "OK", 201: "Created", 409: "Conflict", 422: "Unprocessable Entity"}.get(status, "")
        self.data = body
        self.headers = {"content-type": "application/json"}
        self._lines = lines or []
        self.closed = False

    def stream(self, amt: Any = None, decode_content: bool = False) -> Iterator[bytes]:
        yield from self._lines

    def close(self) -> None:
        self.closed = True

    def release_conn(self) -> None:
        pass


Responder = Callable[[str, str, Any], tuple[int, Any]]


class FakeHttp:
    """Stands in for ``RESTClientObject``: routes (method, path regex) to recorded responses."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self._routes: list[tuple[str, re.Pattern[str], Responder]] = []

    def route(self, method: str, path: str, responder: Responder) -> None:
        self._routes.append((method, re.compile(path + "$"), responder))

    def request(self, method: str, url: str, headers: Any = None, body: Any = None, post_params: Any = None,
                _request_timeout: Any = None) -> RESTResponse:
        parsed = urlparse(url)
        query = parse_qs(parsed.query)
        self.requests.append({"method": method, "path": parsed.path, "query": query, "headers": headers or {},
                              "body": body, "timeout": _request_timeout})
        for m, pattern, responder in self._routes:
            if m == method and pattern.match(parsed.path):
                status, payload = responder(parsed.path, parsed.query, body)
                if isinstance(payload, list):  # a watch: JSON lines
                    return RESTResponse(FakeUrllib3Response(status, b"", [line.encode() + b"\n" for line in payload]))
                text = payload if isinstance(payload, str) else json.dumps(payload)
                return RESTResponse(FakeUrllib3Response(status, text.encode()))
        raise AssertionError(f"unexpected request {method} {parsed.path}?{parsed.query}")


def real_clients(http: FakeHttp) -> KubeClients:
    api: Any = client.ApiClient(client.Configuration(host="https://127.0.0.1:6443"))
    api.rest_client = http
    return KubeClients(core=client.CoreV1Api(api), apps=client.AppsV1Api(api), networking=client.NetworkingV1Api(api),
                       custom=client.CustomObjectsApi(api), watch=watch.Watch, stream=stream.stream)


def test_readiness_wait_lists_then_watches_with_the_real_watch() -> None:
    http = FakeHttp()
    events = data("pod-watch-events.jsonl").splitlines()

    def pods(path: str, query: str, body: Any) -> tuple[int, Any]:
        return (200, events) if "watch=true" in query else (200, data("pod-list-pending.json"))

    http.route("GET", "/api/v1/namespaces/default/pods", pods)
    clock = FakeClock()
    ready = wait_for_pods_ready(real_clients(http), [("default", "my-api")], RUN, timeout_s=120, clock=clock,
                                sleep=clock.sleep)
    pod: Any = ready[("default", "my-api")]
    assert type(pod).__name__ == "V1Pod"  # deserialized by the client from the API's JSON
    assert (pod.status.pod_ip, pod.spec.node_name, pod.metadata.resource_version) == (
        "10.244.2.31", "flowcheck-worker2", "4718")
    listing, watching = http.requests
    assert listing["query"] == {"labelSelector": [f"flowcheck.io/run={RUN}"]}
    assert watching["query"] == {"labelSelector": [f"flowcheck.io/run={RUN}"], "resourceVersion": ["4711"],
                                 "timeoutSeconds": ["120"], "watch": ["true"]}
    assert watching["timeout"] == (10.0, 150.0)  # (connect, read) so a dead connection cannot hang the wait


def test_policies_through_the_real_typed_and_custom_object_apis() -> None:
    http = FakeHttp()
    created: list[str] = []

    def create(path: str, query: str, body: Any) -> tuple[int, Any]:
        name = body["metadata"]["name"]
        if name == "allow-get-only":
            return 409, data("api-status-409-already-exists.json").replace("default-deny-ingress", name)
        created.append(name)
        return 201, {**body, "metadata": {**body["metadata"], "resourceVersion": "100"}}

    live_cnp = {"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy",
                "metadata": {"name": "allow-get-only", "namespace": "default", "resourceVersion": "77",
                             "labels": {"flowcheck.io/run": "an-earlier-run"}}, "spec": {}}
    http.route("POST", "/apis/networking.k8s.io/v1/namespaces/default/networkpolicies", create)
    http.route("POST", "/apis/cilium.io/v2/namespaces/default/ciliumnetworkpolicies", create)
    http.route("GET", "/apis/cilium.io/v2/namespaces/default/ciliumnetworkpolicies/allow-get-only",
               lambda p, q, b: (200, live_cnp))
    http.route("PUT", "/apis/cilium.io/v2/namespaces/default/ciliumnetworkpolicies/allow-get-only",
               lambda p, q, b: (200, b))
    clients = real_clients(http)
    results = [apply_policy(clients, prepare_policy(doc, RUN))
               for doc in read_documents([REPO / "manifests" / "network-policies"])]
    assert [r.outcome for r in results] == ["created", "created", "created", "replaced"]
    assert created == ["default-deny-ingress", "allow-dns-egress", "allow-monitoring-scrape"]
    knp_body = http.requests[2]["body"]  # serialized by the typed client from flowcheck's dict
    assert knp_body["spec"]["ingress"][0]["from"][0]["podSelector"] == {
        "matchLabels": {"app.kubernetes.io/name": "prometheus"}}
    assert knp_body["metadata"]["labels"] == {"flowcheck.io/run": RUN}
    put = http.requests[-1]
    assert put["method"] == "PUT" and put["body"]["metadata"]["resourceVersion"] == "77"
    assert put["body"]["spec"]["endpointSelector"] == {"matchLabels": {"app": "my-api"}}


def test_a_422_from_the_real_client_is_reported_with_the_servers_message() -> None:
    http = FakeHttp()
    http.route("POST", "/apis/cilium.io/v2/namespaces/default/ciliumnetworkpolicies",
               lambda p, q, b: (422, data("api-status-422-invalid.json")))
    doc = next(d for d in read_documents([REPO / "manifests" / "network-policies"]) if d.name == "allow-get-only")
    with pytest.raises(ClusterError) as err:
        apply_policy(real_clients(http), prepare_policy(doc, RUN))
    assert "CiliumNetworkPolicy default/allow-get-only" in str(err.value)
    assert "422 Invalid: CiliumNetworkPolicy.cilium.io \"allow-get-only\" is invalid: spec.ingress[0]" in str(err.value)


def test_namespace_labels_are_merge_patched_with_the_real_client() -> None:
    http = FakeHttp()
    http.route("GET", "/api/v1/namespaces/default", lambda p, q, b: (200, {
        "kind": "Namespace", "apiVersion": "v1", "status": {"phase": "Active"},
        "metadata": {"name": "default", "resourceVersion": "20",
                     "labels": {"kubernetes.io/metadata.name": "default"}}}))
    http.route("PATCH", "/api/v1/namespaces/default", lambda p, q, b: (200, {
        "kind": "Namespace", "apiVersion": "v1", "metadata": {"name": "default"}}))
    clients = real_clients(http)
    outcome = kube.ensure_namespace(clients, "default", {"team": "web"}, RUN)
    kube.remove_added_labels(clients, "default", outcome.added_labels, RUN)
    add, remove = [r for r in http.requests if r["method"] == "PATCH"]
    assert add["headers"]["Content-Type"] == remove["headers"]["Content-Type"] == "application/merge-patch+json"
    assert add["body"] == {"metadata": {"labels": {"team": "web"},
                                        "annotations": {f"flowcheck.io/added-labels.{RUN}": "team"}}}
    assert remove["body"] == {"metadata": {"labels": {"team": None},
                                           "annotations": {f"flowcheck.io/added-labels.{RUN}": None}}}


# ---------------------------------------------------------------------------------------------
# An API server that does not answer: the real client against a closed local port


@pytest.fixture
def dead_kubeconfig(tmp_path: Path) -> tuple[str, int]:
    port = free_port()  # bound once and released: nothing listens there
    path = tmp_path / "config"
    path.write_text(
        "apiVersion: v1\nkind: Config\n"
        f"clusters:\n- name: staging\n  cluster: {{server: 'https://127.0.0.1:{port}'}}\n"
        "contexts:\n- name: staging\n  context: {cluster: staging, user: u}\n"
        "users:\n- name: u\n  user: {token: t}\n")
    return str(path), port


def test_a_real_rest_call_to_a_dead_api_server_names_the_step_and_the_context(
        dead_kubeconfig: tuple[str, int]) -> None:
    kubeconfig, port = dead_kubeconfig
    clients = kube.client_factory("staging", kubeconfig)()
    with pytest.raises(ClusterError) as err:
        kube.call(clients, "checking for the cilium DaemonSet", clients.apps.read_namespaced_daemon_set, "cilium",
                  "kube-system")
    assert str(err.value).startswith(f"checking for the cilium DaemonSet: cannot reach the Kubernetes API server of "
                                     f"context staging (https://127.0.0.1:{port}): ")
    assert "Connection refused" in str(err.value)
    assert type(err.value.__cause__).__name__ == "MaxRetryError"  # what the client really raised


def test_a_real_exec_to_a_dead_api_server_names_the_context(dead_kubeconfig: tuple[str, int]) -> None:
    kubeconfig, port = dead_kubeconfig
    clients = kube.client_factory("staging", kubeconfig)()
    with pytest.raises(ClusterError) as err:
        exec_in_pod(clients, PodTarget("kube-system", "cilium-a", "cilium-agent"), ["cilium-dbg", "version"],
                    timeout_s=5)
    assert not isinstance(err.value, ExecStartError)
    assert str(err.value).startswith("cannot exec `cilium-dbg version` in pod kube-system/cilium-a (container "
                                     "cilium-agent): cannot reach the Kubernetes API server of context staging "
                                     f"(https://127.0.0.1:{port}): ")
    assert "Connection refused" in str(err.value)


def test_python_m_flowcheck_cluster_reports_a_dead_api_server_in_one_line(
        dead_kubeconfig: tuple[str, int], capsys: pytest.CaptureFixture[str]) -> None:
    kubeconfig, _port = dead_kubeconfig
    code = main(["cleanup", "--context", "staging", "--allow-context", "staging", "--kubeconfig", kubeconfig])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("flowcheck: error: listing pods: cannot reach the Kubernetes API server of context staging")
    assert err.count("\n") == 1 and "Traceback" not in err


def test_a_watch_whose_connection_breaks_is_followed_by_a_new_list() -> None:
    http = FakeHttp()
    events = data("pod-watch-events.jsonl").splitlines()
    watches = {"n": 0}

    def pods(path: str, query: str, body: Any) -> tuple[int, Any]:
        if "watch=true" not in query:
            return 200, data("pod-list-pending.json")
        watches["n"] += 1
        if watches["n"] == 1:  # what urllib3 raises when the API server drops the connection
            raise ProtocolError("Connection aborted.", ConnectionResetError(104, "Connection reset by peer"))
        return 200, events

    http.route("GET", "/api/v1/namespaces/default/pods", pods)
    clock = FakeClock()
    ready = wait_for_pods_ready(real_clients(http), [("default", "my-api")], RUN, timeout_s=120, clock=clock,
                                sleep=clock.sleep)
    assert list(ready) == [("default", "my-api")]
    assert [("watch=true" in "&".join(f"{k}={v[0]}" for k, v in r["query"].items())) for r in http.requests] == [
        False, True, False, True]
