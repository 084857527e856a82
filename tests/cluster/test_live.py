"""The cluster layer against a real kind + Cilium cluster. Never run where flowcheck is developed.

Opt in with ``FLOWCHECK_LIVE_CLUSTER=<kind cluster name>`` after ``scripts/cluster-up`` (the tests
reuse that cluster and never delete it); without it every test here is skipped, saying why. Run:
``FLOWCHECK_LIVE_CLUSTER=flowcheck pytest tests/cluster/test_live.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from flowcheck.cluster.options import ClusterOptions, ClusterSetup, ClusterTarget
from flowcheck.cluster.session import LiveCluster
from flowcheck.cluster.workloads import NamespaceInput, PodSpecInput, TopologyInput
from flowcheck.manifests.documents import read_documents

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.flowcheck_live


def _skip_reason() -> str | None:
    name = os.environ.get("FLOWCHECK_LIVE_CLUSTER")
    if not name:
        docker = shutil.which("docker")
        engine = "no Docker client on PATH" if docker is None else (
            "Docker engine running" if subprocess.run([docker, "info"], capture_output=True, check=False,
                                                      timeout=20).returncode == 0
            else "no Docker engine running (docker info failed)")
        return (f"needs a kind + Cilium cluster: run scripts/cluster-up, then set FLOWCHECK_LIVE_CLUSTER=flowcheck "
                f"(not set; here: {engine})")
    return None


def _topology() -> TopologyInput:
    """fixtures/topology.yaml, read just enough for deployment (the model's parser is not imported here)."""
    raw = yaml.safe_load((REPO / "fixtures" / "topology.yaml").read_text())
    namespaces = tuple(NamespaceInput(n, (v or {}).get("labels", {})) for n, v in raw["namespaces"].items())
    workloads = tuple(
        PodSpecInput(w["namespace"], w["name"], w.get("labels", {}),
                     tuple((p.get("name", ""), p["port"], p.get("protocol", "TCP")) for p in w.get("ports", [])),
                     service_account=w.get("serviceAccount", "default"), existing=bool(w.get("existing")))
        for w in raw["workloads"])
    return TopologyInput(namespaces, workloads)


@pytest.fixture(scope="module")
def live() -> Iterator[LiveCluster]:
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    options = ClusterOptions(target=ClusterTarget(name=os.environ["FLOWCHECK_LIVE_CLUSTER"]),
                             setup=ClusterSetup(repo_root=REPO), keep_cluster=True)
    with LiveCluster.bring_up(options, progress=print) as cluster:
        yield cluster


def test_probe_pods_become_ready_with_ips_and_nodes(live: LiveCluster) -> None:
    deployed = live.deploy(_topology())
    assert all(p.ip and p.node for p in deployed.pods)
    assert deployed.pod("kube-system/coredns").existing


def test_policies_are_applied_and_realized(live: LiveCluster) -> None:
    applied = live.apply_policies(read_documents([REPO / "manifests" / "network-policies"]))
    assert applied.policies and all(applied.revisions_after[p] >= applied.revisions_before[p]
                                    for p in applied.revisions_before)


def test_a_denied_scrape_times_out_and_hubble_shows_the_drop(live: LiveCluster) -> None:
    executor = live.executor()
    target = executor.address_of("default/my-api")
    plan = {"timeout": 2.0, "concurrency": 8, "probes": [{"id": "1", "kind": "tcp", "host": target, "port": 9090}]}
    start = datetime.now(UTC)
    result = executor.run_agent("tenant/client", json.dumps(plan), timeout_s=30)
    end = datetime.now(UTC)
    assert result.returncode == 0, result.stderr
    (line,) = [json.loads(x) for x in result.stdout.splitlines() if x.strip()]
    assert line["outcome"] == "timeout"
    flows = live.hubble_flows(since=start, until=end, workloads=["tenant/client"])
    summaries = [f.summary() for f in flows]
    assert any(f.drop_reason_desc == "POLICY_DENIED" and f.dst_port == 9090 for f in flows), summaries
