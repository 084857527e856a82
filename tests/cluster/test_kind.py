"""kind: recorded `kind get clusters` outputs and the exact commands flowcheck runs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from flowcheck.cluster.kind import Kind, context_for, parse_clusters
from flowcheck.errors import ClusterError
from tests.cluster.fakes import FakeRunner, data
from tests.conftest import REPO_ROOT as REPO


def test_cluster_names_are_read_one_per_line() -> None:
    assert parse_clusters(data("kind-get-clusters.stdout")) == ["flowcheck", "other-cluster"]


def test_no_clusters_message_is_not_a_cluster_name() -> None:
    assert parse_clusters("", data("kind-get-clusters-none.stderr")) == []
    assert parse_clusters(data("kind-get-clusters-none.stderr")) == []  # on stdout too


def test_context_name() -> None:
    assert context_for("flowcheck") == "kind-flowcheck"


def test_create_uses_the_config_and_never_waits() -> None:
    runner = FakeRunner()
    runner.on("kind", "create", "cluster", stderr='Creating cluster "flowcheck" ...\n')
    Kind(runner, "/repo/.bin/kind").create("flowcheck", Path("manifests/kind/cluster.yaml"))
    (argv,) = runner.commands()
    assert argv == ["kind", "create", "cluster", "--name", "flowcheck", "--config", "manifests/kind/cluster.yaml"]
    assert not any(a.startswith("--wait") for a in argv)


def test_create_failure_quotes_kind() -> None:
    runner = FakeRunner()
    runner.on("kind", "create", returncode=1,
              stderr='ERROR: failed to create cluster: node(s) already exist for a cluster with the name "flowcheck"\n')
    with pytest.raises(ClusterError, match=r"(?s)creating kind cluster flowcheck failed.*already exist"):
        Kind(runner, "kind").create("flowcheck", Path("c.yaml"))


def test_delete_load_and_kubeconfig() -> None:
    runner = FakeRunner()
    runner.on("kind")
    kind = Kind(runner, "kind", kubeconfig="/tmp/kc")
    kind.delete("flowcheck")
    kind.load_image("flowcheck", "python:3-alpine")
    assert runner.commands() == [["kind", "delete", "cluster", "--name", "flowcheck", "--kubeconfig", "/tmp/kc"],
                                 ["kind", "load", "docker-image", "python:3-alpine", "--name", "flowcheck"]]


def test_export_logs_never_raises(tmp_path: Path) -> None:
    runner = FakeRunner()
    runner.on("kind", "export", "logs", returncode=1, stderr="ERROR: unknown cluster \"flowcheck\"\n")
    said: list[str] = []
    assert Kind(runner, "kind", progress=said.append).export_logs("flowcheck", tmp_path) is None
    assert runner.commands() == [["kind", "export", "logs", str(tmp_path), "--name", "flowcheck"]]
    assert "could not export kind logs (exit 1)" in said[0]


def test_the_kind_config_is_two_workers_without_cni_or_kube_proxy_on_kinds_default_subnets() -> None:
    """kind's defaults (v0.31/v0.32 `pkg/apis/config/v1alpha4/default.go`): pods 10.244.0.0/16, services
    10.96.0.0/16 -- the file's comment says it writes them down, so it must be exactly them."""
    config = yaml.safe_load((REPO / "manifests" / "kind" / "cluster.yaml").read_text())
    assert [n["role"] for n in config["nodes"]] == ["control-plane", "worker", "worker"]
    assert config["networking"] == {"disableDefaultCNI": True, "kubeProxyMode": "none",
                                    "podSubnet": "10.244.0.0/16", "serviceSubnet": "10.96.0.0/16"}
