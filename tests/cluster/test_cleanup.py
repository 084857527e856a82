"""`flowcheck cleanup`: leftovers found by label and removed."""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from flowcheck.cli import cleanup as cleanup_command
from flowcheck.cli import main
from flowcheck.cluster import kube
from flowcheck.cluster.cleanup import cleanup
from flowcheck.cluster.kube import apply_policy, ensure_namespace, prepare_policy
from flowcheck.errors import ContextRefused
from flowcheck.manifests.documents import read_documents
from tests.cluster.fakes import FakeCluster, FakeRunner, data

REPO = Path(__file__).resolve().parents[2]
OLD, OTHER = "20260801-010000-aaaaaa", "20260802-020000-bbbbbb"


def leftovers() -> FakeCluster:
    """A cluster where run OLD crashed mid-way and run OTHER is still running."""
    c = FakeCluster()
    c.add_namespace("default")
    c.add_namespace("kube-system")
    clients = c.clients()
    ensure_namespace(clients, "tenant", {}, OLD)
    ensure_namespace(clients, "default", {"team": "web"}, OLD)
    ensure_namespace(clients, "monitoring", {}, OTHER)
    c.add_pod("tenant", "client", {"app": "client", kube.RUN_LABEL: OLD})
    c.add_pod("monitoring", "prometheus", {kube.RUN_LABEL: OTHER})
    c.add_pod("default", "real-app", {"app": "real"})  # not flowcheck's
    docs = list(read_documents([REPO / "manifests" / "network-policies"]))
    c.custom[("ciliumnetworkpolicies", "default", "allow-get-only")] = {  # the team's own, replaced by OLD
        "apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy",
        "metadata": {"name": "allow-get-only", "namespace": "default", "resourceVersion": "3"},
        "spec": {"endpointSelector": {"matchLabels": {"app": "original"}}}}
    for doc in docs:
        apply_policy(clients, prepare_policy(doc, OLD))
    c.calls.clear()
    return c


def test_cleanup_of_one_run_removes_only_its_leftovers() -> None:
    c = leftovers()
    report = cleanup(c.clients(), run_id=OLD)
    assert report.problems == []
    assert report.actions == [
        "delete pod tenant/client",
        "delete NetworkPolicy default/default-deny-ingress",
        "delete NetworkPolicy default/allow-dns-egress",
        "delete NetworkPolicy default/allow-monitoring-scrape",
        "restore the original of CiliumNetworkPolicy default/allow-get-only",
        f"remove labels team that run {OLD} added to namespace default",
        "delete namespace tenant",
    ]
    assert c.network_policies == {}
    assert c.custom[("ciliumnetworkpolicies", "default", "allow-get-only")]["spec"] == {
        "endpointSelector": {"matchLabels": {"app": "original"}}}
    assert "team" not in c.namespaces["default"].metadata.labels
    assert "monitoring" in c.namespaces and ("monitoring", "prometheus") in c.pods  # the other run is untouched
    assert ("default", "real-app") in c.pods
    lists = [call for call in c.calls if call[0].startswith("list_")]
    unfiltered = [call[0] for call in lists if call[2].get("label_selector") is None]
    assert unfiltered == ["list_namespace"]  # the one scan for labels added to pre-existing namespaces
    assert all(call[2]["label_selector"] == f"flowcheck.io/run={OLD}" for call in lists if call[0] not in unfiltered)


def test_cleanup_of_every_run_and_dry_run() -> None:
    c = leftovers()
    said: list[str] = []
    dry = cleanup(c.clients(), dry_run=True, progress=said.append)
    assert "delete namespace monitoring" in dry.actions and "delete namespace tenant" in dry.actions
    assert said[:2] == ["would delete pod tenant/client", "would delete pod monitoring/prometheus"]
    assert not [n for n in c.names() if n.startswith(("delete_", "replace_", "patch_"))]
    cleanup(c.clients())
    assert sorted(c.namespaces) == ["default", "kube-system"]
    assert list(c.pods) == [("default", "real-app")]


def test_cleanup_without_cilium_crds_still_works() -> None:
    c = FakeCluster()
    c.add_namespace("default")
    clients = c.clients()
    real_list = clients.custom.list_cluster_custom_object

    def no_crd(*args: object, **kwargs: object) -> object:
        real_list(*args, **kwargs)
        from tests.cluster.fakes import not_found

        raise not_found("the server could not find the requested resource", "")

    clients.custom.list_cluster_custom_object = no_crd
    report = cleanup(clients)
    assert report.actions == [] and report.problems == []


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="flowcheck")
    sub = parser.add_subparsers(dest="command")
    cleanup_command.register(sub)
    return parser.parse_args(["cleanup", *argv])


def test_cleanup_command_wiring() -> None:
    args = _parse("--run", OLD, "--dry-run")
    assert (args.run_id, args.dry_run, args.context, args.cluster_name, args.func) == (
        OLD, True, None, "flowcheck", cleanup_command.run)


def test_cleanup_command_on_the_kind_cluster(tmp_path: Path) -> None:
    c = leftovers()
    runner = FakeRunner()
    runner.on("kind", "get", "clusters", stdout=data("kind-get-clusters.stdout"))
    kind = tmp_path / ".bin" / "kind"
    kind.parent.mkdir()
    kind.write_text("#!/bin/sh\n")
    kind.chmod(0o755)
    out = io.StringIO()
    code = cleanup_command.run(_parse("--run", OLD), runner=runner, api_factory=c.clients, out=out, repo_root=tmp_path)
    assert code == 0
    assert "flowcheck cleanup: delete namespace tenant" in out.getvalue()


def test_cleanup_command_refuses_a_foreign_context(tmp_path: Path) -> None:
    runner = FakeRunner()
    runner.on("kind", "get", "clusters", stdout=data("kind-get-clusters.stdout"))
    kind = tmp_path / ".bin" / "kind"
    kind.parent.mkdir()
    kind.write_text("#!/bin/sh\n")
    kind.chmod(0o755)
    c = FakeCluster()
    with pytest.raises(ContextRefused, match="refusing kube context 'prod'"):
        cleanup_command.run(_parse("--context", "prod"), runner=runner, api_factory=c.clients, repo_root=tmp_path)
    assert c.calls == []
    out = io.StringIO()
    assert cleanup_command.run(_parse("--context", "prod", "--allow-context", "prod"), runner=runner,
                               api_factory=c.clients, out=out) == 0
    assert "nothing left over from any flowcheck run in prod" in out.getvalue()


def test_module_cli_errors_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("FLOWCHECK_BIN_DIR", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))
    assert main(["cluster", "down", "--name", "x"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("flowcheck: error: kind not found on PATH or in .bin/") and err.count("\n") == 1


def test_cluster_down_script_deletes_through_kind(tmp_path: Path) -> None:
    log = tmp_path / "kind.log"
    kind = tmp_path / "kind"
    kind.write_text(f'#!/bin/sh\necho "$@" >> {log}\n'
                    'if [ "$1 $2" = "get clusters" ]; then echo flowcheck; echo ci; fi\n')
    kind.chmod(0o755)
    env = {**os.environ, "FLOWCHECK_BIN_DIR": str(tmp_path), "PYTHON": sys.executable}
    result = subprocess.run([str(REPO / "scripts" / "cluster-down"), "ci"], capture_output=True, text=True, env=env,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert log.read_text().splitlines() == ["get clusters", "delete cluster --name ci"]
    missing = subprocess.run([str(REPO / "scripts" / "cluster-down"), "nope"], capture_output=True, text=True,
                             env=env, timeout=60, check=False)
    assert missing.returncode == 0 and "no kind cluster named nope" in missing.stdout


def test_replaced_original_annotation_round_trip() -> None:
    original = {"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy", "metadata": {"name": "x"}}
    obj = {"metadata": {"annotations": {kube.REPLACED_ORIGINAL_ANNOTATION: json.dumps(original)}}}
    assert kube.original_from_annotation(obj) == original
    broken = {"metadata": {"annotations": {kube.REPLACED_ORIGINAL_ANNOTATION: "{"}}}
    assert kube.original_from_annotation(broken) is None
