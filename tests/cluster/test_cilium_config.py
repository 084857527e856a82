"""The denial settings the classifier takes from the cluster (issue 17.2): 403 body and DNS reject code."""

from __future__ import annotations

import pytest
from kubernetes import client

from flowcheck.cluster.cilium_config import describe, read_node_denials
from flowcheck.errors import ClusterError
from flowcheck.probe.classify import ClassifierSettings
from tests.cluster.fakes import ExecReply, FakeCluster, data

AGENTS = {"flowcheck-worker": "cilium-a", "flowcheck-worker2": "cilium-b"}
MISSING = "cat: /tmp/cilium/config-map/{key}: No such file or directory\n"


def cluster_with(files: dict[str, dict[str, str]], config_map: dict[str, str] | None = None,
                 cat_missing: bool = False) -> FakeCluster:
    """Agents whose resolved configuration directory holds ``files`` (agent -> key -> content)."""
    cluster = FakeCluster()
    cluster.add_cilium_agents(list(AGENTS.values()))
    if config_map is not None:
        cluster.config_maps[("kube-system", "cilium-config")] = client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="cilium-config", namespace="kube-system"), data=config_map)

    def agent(ns: str, pod: str, container: str | None, argv: list[str], stdin: str | None) -> ExecReply:
        assert (ns, container, argv[0]) == ("kube-system", "cilium-agent", "cat")
        if cat_missing:
            return ExecReply(status=data("exec-status-start-failure.json"))
        key = argv[1].rsplit("/", 1)[1]
        if key in files.get(pod, {}):
            return ExecReply(stdout=files[pod][key])
        return ExecReply(stderr=MISSING.format(key=key),
                         status=data("exec-status-exit-code.json").replace('"message":"2"', '"message":"1"'))

    cluster.exec_handler = agent
    return cluster


def test_a_cluster_at_ciliums_defaults_reads_as_the_defaults() -> None:
    denials = read_node_denials(cluster_with({}, {"cluster-name": "kind-flowcheck"}).clients, AGENTS)
    assert {d.settings for d in denials.values()} == {ClassifierSettings()}
    assert describe(denials) == "http-403-msg='Access denied', tofqdns-dns-reject-response-code=refused (from agent)"


def test_the_agents_resolved_files_win_and_may_differ_per_node() -> None:
    files = {"cilium-a": {"http-403-msg": "Forbidden by policy", "tofqdns-dns-reject-response-code": "nameError"},
             "cilium-b": {"tofqdns-dns-reject-response-code": "refused"}}
    denials = read_node_denials(cluster_with(files, {"tofqdns-dns-reject-response-code": "refused"}).clients, AGENTS)
    assert denials["flowcheck-worker"].settings == ClassifierSettings(("Forbidden by policy",), "NXDOMAIN")
    assert denials["flowcheck-worker2"].settings == ClassifierSettings(("Access denied",), "REFUSED")
    assert describe(denials).startswith("flowcheck-worker: http-403-msg='Forbidden by policy', "
                                        "tofqdns-dns-reject-response-code=nameError; flowcheck-worker2:")


def test_the_config_map_is_the_fallback_when_the_agent_files_cannot_be_read() -> None:
    denials = read_node_denials(cluster_with({}, {"tofqdns-dns-reject-response-code": "nameError"},
                                             cat_missing=True).clients, AGENTS)
    worker = denials["flowcheck-worker"]
    assert (worker.dns_reject, worker.source) == ("nameError", "default/cilium-config")
    assert worker.settings.dns_denied_rcode == "NXDOMAIN"


def test_an_unknown_reject_code_is_refused_naming_the_agent() -> None:
    files = {"cilium-a": {"tofqdns-dns-reject-response-code": "drop"}}
    with pytest.raises(ClusterError, match=r"cilium agent cilium-a \(node flowcheck-worker\) runs with "
                                           r"tofqdns-dns-reject-response-code='drop'; expected one of refused, "
                                           r"nameError"):
        read_node_denials(cluster_with(files).clients, AGENTS)
