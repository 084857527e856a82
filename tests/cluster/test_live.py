"""The cluster layer against a real kind + Cilium cluster. Never run where flowcheck is developed.

Opt in with ``FLOWCHECK_LIVE_CLUSTER=<kind cluster name>`` after ``scripts/cluster-up`` (the tests
reuse that cluster and never delete it); without it every test here is skipped, saying why. Run:
``FLOWCHECK_LIVE_CLUSTER=flowcheck pytest tests/cluster/test_live.py``.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from flowcheck.cluster.deployed import DeployedTopology
from flowcheck.cluster.options import ClusterOptions, ClusterSetup, ClusterTarget
from flowcheck.cluster.session import AppliedPolicies, LiveCluster
from flowcheck.cluster.workloads import NamespaceInput, PodSpecInput, TopologyInput
from flowcheck.manifests.documents import read_documents

REPO = Path(__file__).resolve().parents[2]
POLICIES = REPO / "manifests" / "network-policies"

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


@pytest.fixture(scope="module")
def deployed(live: LiveCluster) -> DeployedTopology:
    """The fixture topology's probe pods (each test that needs them asks; no test relies on another's run)."""
    return live.deploy(_topology())


@pytest.fixture(scope="module")
def enforced(live: LiveCluster, deployed: DeployedTopology) -> AppliedPolicies:
    """The repository's policies, applied after the pods exist (so the wait covers their endpoints)."""
    return live.apply_policies(list(read_documents([POLICIES])))


def test_probe_pods_become_ready_with_ips_and_nodes(deployed: DeployedTopology) -> None:
    assert all(p.ip and p.node for p in deployed.pods)
    assert deployed.pod("kube-system/coredns").existing


def test_every_probe_pods_endpoint_has_realized_the_applied_policies(live: LiveCluster,
                                                                      enforced: AppliedPolicies) -> None:
    assert enforced.changes == len(enforced.policies) == 4, (
        "policies of an earlier run are still there (spec unchanged, nothing to wait for): run `flowcheck cleanup`")
    assert live.unrealized() == []  # read again from every agent's `cilium endpoint list`, after the wait


def test_a_replaced_policy_is_realized_before_apply_returns(live: LiveCluster, enforced: AppliedPolicies) -> None:
    """Issue 17.4: re-applying a policy with a changed spec bumps every agent's revision once, and
    ``apply_policies`` returns only when every probe pod's endpoint has realized it."""
    [original] = list(read_documents([POLICIES / "allow-monitoring-scrape.yaml"]))
    changed = dataclasses.replace(original, body=copy.deepcopy(original.body))
    changed.body["spec"]["ingress"][0]["ports"].append({"protocol": "TCP", "port": 9091})
    try:
        replaced = live.apply_policies([changed])
        assert [(p.outcome, p.changed) for p in replaced.policies] == [("replaced", True)]
        before = replaced.revisions_before
        assert replaced.realized_targets == {agent: revision + 1 for agent, revision in before.items()}
        assert live.unrealized() == []
        unchanged = live.apply_policies([changed])  # the same spec again: nothing for the agents to take in
        assert [p.changed for p in unchanged.policies] == [False]
        assert unchanged.realized_targets == unchanged.revisions_before
    finally:
        live.apply_policies([original])


def test_a_denied_scrape_times_out_and_hubble_shows_the_drop(live: LiveCluster, enforced: AppliedPolicies) -> None:
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
