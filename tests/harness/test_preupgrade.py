"""The pre-upgrade check end to end against fakes: kind, helm, the cilium CLI, pytest and the Kubernetes API.

``World`` is a fake machine: a ``FakeRunner`` answering kind/helm/cilium/pytest like the real tools
(``cilium status -o json`` from recorded-shape samples; the fake pytest runs write a real
``matrix.json`` with flowcheck's own report classes, so the baseline steps run for real), a
``FakeCluster`` API server in which ``helm install`` creates the preflight DaemonSet and Deployment
and ``cilium upgrade`` rolls the agent pods, and a ``FakeClock`` whose ``sleep`` also lets the
fake cluster move on. No test sleeps for real.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from flowcheck.cli import main
from flowcheck.cli import preupgrade as preupgrade_command
from flowcheck.cli.exit_codes import exit_code_for
from flowcheck.cli.preupgrade import options_from_args
from flowcheck.cluster.cilium import parse_status_json
from flowcheck.cluster.options import ClusterTarget
from flowcheck.cluster.process import DEFAULT_INTERRUPT_GRACE_S
from flowcheck.cluster.tools import how_to_get
from flowcheck.errors import ToolMissing
from flowcheck.harness import preupgrade
from flowcheck.harness.preupgrade import (
    CiliumVersion,
    PreUpgradeCheck,
    PreUpgradeOptions,
    StepFailed,
    image_tag,
    rollout_pending,
    running_version,
)
from flowcheck.harness.preupgrade.options import (
    BRING_UP_INTERRUPT_GRACE_S,
    SUITES_INTERRUPT_GRACE_S,
    PreUpgradeTimeouts,
)
from flowcheck.probe.executor import CompletedExec
from flowcheck.report.records import CheckedFlow, MatrixReport
from flowcheck.verdict import Verdict
from tests.cluster.fakes import FakeClock, FakeCluster, FakeRunner, data, unreachable
from tests.cluster.tool_versions import read_tool_versions

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data" / "preupgrade"
PY = "/venv/bin/python"
NAME = "fc"
CTX = "kind-fc"
NS = "kube-system"
AGENTS = ("cilium-4xk2p", "cilium-9hq7w", "cilium-tz5lm")  # the pods of cilium-status-healthy.json
VALIDATOR_POD = "cilium-pre-flight-check-6f8d9c7b5d-x2x4k"
# Representative labels: the code reads the Deployment's own selector, never assumes these.
VALIDATOR_LABELS = {"k8s-app": "cilium-pre-flight-check-deployment"}

Key = tuple[str, str, str, int, str | None]
FLOWS: dict[Key, Verdict] = {
    ("tenant/client", "default/my-api", "TCP", 8080, None): Verdict.DROPPED,
    ("monitoring/prometheus", "default/my-api", "TCP", 9090, None): Verdict.ALLOWED,
    ("default/web", "default/my-api", "TCP", 8080, "GET /"): Verdict.ALLOWED,
    ("default/web", "default/my-api", "TCP", 8080, "POST /"): Verdict.L7_DENIED,
}


def pre_data(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


def with_version(status_json: str, old: str, new: str) -> str:
    return status_json.replace(f"v{old}", f"v{new}").replace(f'"{old}"', f'"{new}"')


def cilium_image(version: str) -> str:
    return f"quay.io/cilium/cilium:v{version}"


class World:
    """A fake machine and cluster for one pre-upgrade check."""

    def __init__(self, root: Path, *, cluster_exists: bool = True) -> None:
        self.root = root
        (root / "suites").mkdir()
        (root / "manifests" / "cilium").mkdir(parents=True)
        (root / "manifests" / "cilium" / "VERSION").write_text("1.19.0\n")
        shutil.copy(REPO / "manifests" / "cilium" / "values.yaml", root / "manifests" / "cilium" / "values.yaml")
        self.report_dir = root / "report"
        self.clock = FakeClock()
        self.api = FakeCluster(clock=self.clock, context=CTX)
        self.api.add_daemonset(NS, "cilium", desired=3, ready=3)
        for i, pod in enumerate(AGENTS):
            self.api.add_pod(NS, pod, {"k8s-app": "cilium"}, ip=f"172.18.0.{i + 2}",
                             node=f"{NAME}-worker{i + 1 if i else ''}", container="cilium-agent")
            self.api.pods[(NS, pod)].spec.containers[0].image = cilium_image("1.19.0")
        # the running agents' configuration, as the chart renders it (cluster.name -> cluster-name)
        self.api.config_maps[(NS, "cilium-config")] = client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="cilium-config", namespace=NS),
            data={"cluster-name": CTX, "cluster-id": "0", "kube-proxy-replacement": "true"})
        self.kind_clusters = [NAME] if cluster_exists else []
        self.before_status = data("cilium-status-healthy.json")
        self.upgraded = False
        self.rolling_polls = 0  # `cilium status -o json` answers still showing the rollout, after the upgrade
        self.stuck_pod: str | None = None  # an agent pod the DaemonSet never replaces
        self.verdicts = {"before": dict(FLOWS), "after": dict(FLOWS)}
        self.pytest_exit = {"before": 0, "after": 0}
        self.write_matrix = {"before": True, "after": True}
        self.mode = "live"
        self.exits: dict[str, int] = {}  # per fake command: "up", "helm install", "helm uninstall", "upgrade", ...
        self.preflight_ready_after_s: float | None = 0.0  # None: the CNP validator never becomes ready
        self.preflight_installed_at: float | None = None
        self.sleeps_real: list[float] = []
        self.runner = FakeRunner()
        self.runner.on("kind", "get", "clusters", result=self._kind_clusters)
        self.runner.on("python", "-m", "flowcheck", "cluster", "up", result=self._bring_up)
        self.runner.on("cilium", "status", result=self._cilium_status)
        self.runner.on("cilium", "upgrade", result=self._cilium_upgrade)
        self.runner.on("helm", "repo", "add", result=lambda _argv: self._exit("helm repo add"))
        self.runner.on("helm", "install", result=self._helm_install)
        self.runner.on("helm", "uninstall", result=self._helm_uninstall)
        self.runner.on("python", "-m", "pytest", result=self._pytest)
        self.progress: list[str] = []
        self.errors: list[str] = []
        self.tool: Any = lambda name: f"/fake/.bin/{name}"

    # --- the check ------------------------------------------------------------------------

    def check(self, target: str = "1.20.0", *, context: str | None = None, allow_context: str | None = None,
              **options: Any) -> PreUpgradeCheck:
        parsed = CiliumVersion.parse(target)
        assert parsed is not None
        opts = PreUpgradeOptions(target=parsed, report_dir=self.report_dir, python=PY,
                                 cluster=ClusterTarget(name=NAME, context=context, allow_context=allow_context),
                                 timeouts=PreUpgradeTimeouts(poll_interval_s=5.0), **options)
        return PreUpgradeCheck(opts, runner=self.runner, api_factory=self.api.clients,
                               tool=self.tool, repo_root=self.root,
                               progress=self.progress.append, clock=self.clock, sleep=self.sleep)

    def run(self, target: str = "1.20.0", **options: Any) -> int:
        """The check's exit code as ``flowcheck pre-upgrade`` gives it; a failure's message in ``errors``."""
        try:
            self.check(target, **options).run()
        except StepFailed as failure:
            self.errors.append(failure.render())
            return exit_code_for(failure)
        return 0

    def sleep(self, seconds: float) -> None:
        self.clock.sleep(seconds)
        self._tick()

    @property
    def stderr(self) -> str:
        return "\n".join(self.errors)

    @property
    def stdout(self) -> str:
        return "\n".join(self.progress)

    def commands(self) -> list[list[str]]:
        return self.runner.commands()

    def tools_run(self) -> list[str]:
        """Each command as ``tool subcommand`` (``helm install``, ``python -m pytest`` ...)."""
        out = []
        for argv in self.commands():
            words = argv[:3] if argv[0] == "python" else argv[:2]
            out.append(" ".join(words))
        return out

    # --- fake tools -----------------------------------------------------------------------

    def _exit(self, what: str, stdout: str = "", stderr: str = "") -> CompletedExec:
        code = self.exits.get(what, 0)
        return CompletedExec(code, stdout, stderr or (f"Error: {what} failed (scripted)\n" if code else ""))

    def _kind_clusters(self, _argv: list[str]) -> CompletedExec:
        if not self.kind_clusters:
            return CompletedExec(0, "", data("kind-get-clusters-none.stderr"))
        return CompletedExec(0, "".join(f"{c}\n" for c in self.kind_clusters), "")

    def _bring_up(self, argv: list[str]) -> CompletedExec:
        result = self._exit("up", stdout=f"flowcheck: cluster {NAME} is ready (context {CTX})\n")
        if result.returncode == 0:
            self.kind_clusters.append(argv[argv.index("--name") + 1])
        return result

    def _cilium_status(self, argv: list[str]) -> CompletedExec:
        if "--wait" in argv:
            return self._exit("status --wait after upgrade" if self.upgraded else "status --wait")
        if not self.upgraded:
            return CompletedExec(0, self.before_status, "")
        if self.stuck_pod is not None:
            return CompletedExec(0, pre_data("cilium-status-rolling.json"), "")
        if self.rolling_polls > 0:
            self.rolling_polls -= 1
            return CompletedExec(0, pre_data("cilium-status-rolling.json"), "")
        return CompletedExec(0, pre_data("cilium-status-1.20-rolled.json"), "")

    def _cilium_upgrade(self, argv: list[str]) -> CompletedExec:
        result = self._exit("upgrade")
        if result.returncode == 0:
            self.upgraded = True
            version = argv[argv.index("--version") + 1]
            for pod in AGENTS:
                if pod != self.stuck_pod:
                    self.api.pods[(NS, pod)].spec.containers[0].image = cilium_image(version)
        return result

    def _helm_install(self, _argv: list[str]) -> CompletedExec:
        result = self._exit("helm install")
        if result.returncode != 0:
            return result
        self.preflight_installed_at = self.clock()
        self.api.add_daemonset(NS, "cilium-pre-flight-check", desired=3, ready=0)
        self.api.add_deployment(NS, "cilium-pre-flight-check", replicas=1, ready=0, match_labels=VALIDATOR_LABELS)
        self.api.add_pod(NS, VALIDATOR_POD, dict(VALIDATOR_LABELS), ready=False, phase="Running",
                         container="cnp-validator")
        if self.preflight_ready_after_s is None:
            # The validator exited on an invalid policy and waits in CrashLoopBackOff: its output is
            # in the previous container instance; the current one has not started.
            self.api.previous_pod_logs[(NS, VALIDATOR_POD, "cnp-validator")] = pre_data("cnp-validator.log")
        self._tick()
        return result

    def _helm_uninstall(self, _argv: list[str]) -> CompletedExec:
        result = self._exit("helm uninstall")
        if result.returncode == 0:
            self.api.daemonset_objects.pop((NS, "cilium-pre-flight-check"), None)
            self.api.deployments.pop((NS, "cilium-pre-flight-check"), None)
            self.api.pods.pop((NS, VALIDATOR_POD), None)
            self.preflight_installed_at = None
        return result

    def _tick(self) -> None:
        """The fake cluster moves on: the preflight pods become ready once their time has come."""
        start = self.preflight_installed_at
        if start is None:
            return
        if self.preflight_ready_after_s is not None and self.clock() >= start + self.preflight_ready_after_s:
            self.api.add_daemonset(NS, "cilium-pre-flight-check", desired=3, ready=3)
            self.api.add_deployment(NS, "cilium-pre-flight-check", replicas=1, ready=1, match_labels=VALIDATOR_LABELS)
        elif self.preflight_ready_after_s is None:
            # every node pulled the image; only the validator is not ready
            self.api.add_daemonset(NS, "cilium-pre-flight-check", desired=3, ready=3)

    def _pytest(self, argv: list[str]) -> CompletedExec:
        report = Path(argv[argv.index("--flowcheck-report") + 1])
        phase = report.name
        assert (argv[argv.index("--junitxml") + 1]) == str(report / "junit.xml")
        if self.write_matrix[phase]:
            context = (argv[argv.index("--flowcheck-kube-context") + 1] if "--flowcheck-kube-context" in argv
                       else CTX)
            flows = tuple(
                CheckedFlow(source=key[0], destination=key[1], protocol=key[2], port=key[3], request=key[4],
                            model=FLOWS[key], expected=FLOWS[key], observed=verdict, attempts=1,
                            test=f"suites/test_matrix.py::test_{key[0].split('/')[1]}")
                for key, verdict in self.verdicts[phase].items())
            metadata = {"run": "2026-08-27T14:30:12Z", "semantics": "cilium", "mode": self.mode,
                        "policies": "manifests/network-policies", "topology": "topology.yaml"}
            if self.mode == "live":
                metadata["cluster"] = context
            else:
                metadata["offline_reason"] = "--flowcheck-cluster=none: offline mode requested"
            report.mkdir(parents=True, exist_ok=True)
            (report / "matrix.json").write_text(json.dumps(MatrixReport(flows, metadata).to_json(), indent=2))
        code = self.pytest_exit[phase]
        summary = "4 passed in 312.40s" if code == 0 else "1 failed, 3 passed in 318.02s"
        return CompletedExec(code, f"...\n==================== {summary} ====================\n", "")


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def report(world: World, *parts: str) -> str:
    return str(world.report_dir.joinpath(*parts))


def expected_commands(world: World, *, context: str = CTX, existing: bool = False,
                      cluster_name: str = CTX) -> list[list[str]]:
    values = str(world.root / "manifests" / "cilium" / "values.yaml")
    if existing:
        target: list[str] = ["--flowcheck-cluster=existing", "--flowcheck-kube-context", context,
                             "--flowcheck-allow-context", context]
    else:
        target = ["--flowcheck-cluster=kind", "--flowcheck-cluster-name", NAME, "--flowcheck-keep-cluster"]

    def suites(phase: str) -> list[str]:
        return ["python", "-m", "pytest", "suites/", *target, "--flowcheck-report", report(world, phase),
                "--junitxml", report(world, phase, "junit.xml")]

    status_wait = ["cilium", "status", "--context", context, "--wait", "--wait-duration", "600s", "--interactive=false"]
    status_json = ["cilium", "status", "--context", context, "-o", "json"]
    api_address = [] if existing else ["--set", f"k8sServiceHost={NAME}-control-plane", "--set", "k8sServicePort=6443"]
    return [
        *([] if existing else [["kind", "get", "clusters"]]),
        status_wait, status_json,
        suites("before"),
        ["helm", "repo", "add", "cilium", "https://helm.cilium.io", "--force-update"],
        ["helm", "install", "cilium-preflight", "cilium/cilium", "--version", "1.20.0", "--namespace", "kube-system",
         "--kube-context", context, "--set", "preflight.enabled=true", "--set", "agent=false",
         "--set", "operator.enabled=false", *api_address],
        ["helm", "uninstall", "cilium-preflight", "--namespace", "kube-system", "--kube-context", context],
        ["cilium", "upgrade", "--context", context, "--version", "1.20.0", "--reset-values",
         "--reset-then-reuse-values=false", "--values", values, "--set", "upgradeCompatibility=1.19",
         *([] if existing else ["--set", f"k8sServiceHost={NAME}-control-plane"]),
         "--set", f"cluster.name={cluster_name}"],
        status_wait, status_json,
        suites("after"),
    ]


# ---------------------------------------------------------------------------------------------
# The whole sequence


def test_a_clean_upgrade_runs_every_step_in_order_and_exits_0(world: World) -> None:
    assert world.run() == 0, world.stderr
    assert world.commands() == expected_commands(world)
    steps = [line.split("] ", 1)[1].split(":", 1)[0] for line in world.progress if line.startswith("pre-upgrade [")]
    assert steps == list(preupgrade.STEPS)
    assert "no changes: 4 flows compared, every verdict the same" in world.stdout
    assert "no verdict changed from Cilium 1.19.0 to 1.20.0 (4 flows compared)" in world.stdout
    before = json.loads((world.report_dir / "baseline-before.json").read_text())
    after = json.loads((world.report_dir / "baseline-after.json").read_text())
    assert before["metadata"]["cilium_version"] == "1.19.0"
    assert after["metadata"]["cilium_version"] == "1.20.0"
    assert len(before["flows"]) == len(after["flows"]) == 4
    assert (world.report_dir / "before" / "pytest-output.txt").read_text().startswith("$ python -m pytest suites/")
    assert world.errors == []
    # the preflight release is gone and no time was really slept
    assert (NS, "cilium-pre-flight-check") not in world.api.deployments


def test_the_upgrade_never_reuses_the_old_releases_values(world: World) -> None:
    assert world.run() == 0, world.stderr
    upgrade = next(c for c in world.commands() if c[:2] == ["cilium", "upgrade"])
    assert "--reset-values" in upgrade
    assert "--reset-then-reuse-values=false" in upgrade
    assert "--reuse-values" not in upgrade
    assert not any(a.startswith("--reset-then-reuse-values") and a.endswith("true") for a in upgrade)
    assert upgrade[upgrade.index("--set") + 1] == "upgradeCompatibility=1.19"


def test_the_preflight_check_runs_and_is_removed_before_the_upgrade(world: World) -> None:
    assert world.run() == 0, world.stderr
    order = world.tools_run()
    assert order.index("helm install") < order.index("helm uninstall") < order.index("cilium upgrade")
    assert order.index("python -m pytest") < order.index("helm install")


def test_a_missing_kind_cluster_is_brought_up_with_the_pinned_cilium_first(tmp_path: Path) -> None:
    world = World(tmp_path, cluster_exists=False)
    assert world.run() == 0, world.stderr
    commands = world.commands()
    assert commands[:3] == [["kind", "get", "clusters"], ["python", "-m", "flowcheck", "cluster", "up", "--name", NAME],
                            ["kind", "get", "clusters"]]
    assert commands[3:] == expected_commands(world)[1:]
    assert "no kind cluster fc: creating it with the pinned Cilium" in world.stdout


def test_interrupted_pytest_and_bring_up_children_get_time_to_tear_down(tmp_path: Path) -> None:
    """Ctrl-C or a timeout gives `pytest suites/` (and the bring-up) minutes to undo what they did."""
    world = World(tmp_path, cluster_exists=False)
    assert world.run() == 0, world.stderr
    graces = {" ".join(argv[:5]): grace for argv, grace in zip(world.commands(), world.runner.graces, strict=True)}
    assert graces["python -m pytest suites/ --flowcheck-cluster=kind"] == SUITES_INTERRUPT_GRACE_S == 610.0
    assert graces["python -m flowcheck cluster up"] == BRING_UP_INTERRUPT_GRACE_S == 670.0
    others = {grace for argv, grace in zip(world.commands(), world.runner.graces, strict=True) if argv[0] != "python"}
    assert others == {DEFAULT_INTERRUPT_GRACE_S}


def test_the_suites_run_only_after_every_agent_has_rolled(world: World) -> None:
    world.rolling_polls = 3
    assert world.run() == 0, world.stderr
    tools = world.tools_run()
    upgrade = tools.index("cilium upgrade")
    after_pytest = len(tools) - 1
    assert tools[after_pytest] == "python -m pytest"
    polls = [c for c in world.commands()[upgrade:] if c[-2:] == ["-o", "json"]]
    assert len(polls) == 4  # the answer of `status --wait` + 2 more rolling answers + the rolled one
    assert world.clock.sleeps == [5.0, 5.0, 5.0]
    assert "cilium DaemonSet" not in world.stderr


def test_extra_pytest_arguments_are_passed_to_both_runs(world: World) -> None:
    assert world.run(pytest_args=("-k", "dns", "-x")) == 0, world.stderr
    runs = [c for c in world.commands() if c[:3] == ["python", "-m", "pytest"]]
    assert len(runs) == 2
    assert all(run[-3:] == ["-k", "dns", "-x"] for run in runs)


# ---------------------------------------------------------------------------------------------
# Verdicts before and after


def test_a_changed_verdict_exits_1_and_prints_the_flow(world: World) -> None:
    world.verdicts["after"][("tenant/client", "default/my-api", "TCP", 8080, None)] = Verdict.ALLOWED
    assert world.run() == 1
    assert "CHANGED  tenant/client -> default/my-api:8080/TCP: dropped -> allowed" in world.stdout
    assert "run cilium_version: 1.19.0 -> 1.20.0" in world.stdout
    assert "step 'compare' failed: 1 flow(s) differ between Cilium 1.19.0 and 1.20.0 (listed above); the cluster " \
           "now runs Cilium 1.20.0" in world.stderr


def test_an_l7_verdict_that_changes_is_reported(world: World) -> None:
    world.verdicts["after"][("default/web", "default/my-api", "TCP", 8080, "POST /")] = Verdict.DROPPED
    assert world.run() == 1
    assert "default/web -> default/my-api:8080/TCP POST /: l7-denied -> dropped" in world.stdout


def test_a_flow_missing_after_the_upgrade_is_a_change(world: World) -> None:
    del world.verdicts["after"][("monitoring/prometheus", "default/my-api", "TCP", 9090, None)]
    assert world.run() == 1
    assert "REMOVED  monitoring/prometheus -> default/my-api:9090/TCP: allowed" in world.stdout


# ---------------------------------------------------------------------------------------------
# The context guard


@pytest.mark.parametrize(("context", "allow", "reason"), [
    ("staging", None, "it is not 'kind-fc', the context of the kind cluster 'fc' flowcheck manages"),
    ("staging", "production", "--allow-context names 'production', not this context"),
    (None, "staging", "--allow-context was given without --context"),
    (CTX, "kind-other", "--allow-context names 'kind-other', not this context"),
])
def test_a_context_without_the_matching_opt_in_is_refused_before_anything_runs(
        world: World, context: str | None, allow: str | None, reason: str) -> None:
    values = world.root / "staging-values.yaml"
    values.write_text("kubeProxyReplacement: false\n")
    assert world.run(context=context, allow_context=allow, values=values) == 2
    assert world.runner.calls == []
    assert world.api.calls == []
    assert "step 'context guard' failed: refusing kube context" in world.stderr
    assert reason in world.stderr
    assert world.progress == []


def test_an_existing_cluster_named_twice_is_accepted(world: World) -> None:
    values = world.root / "staging-values.yaml"
    values.write_text("kubeProxyReplacement: false\nhubble:\n  enabled: true\n")
    world.api.config_maps[(NS, "cilium-config")].data["cluster-name"] = "staging-eu1"
    assert world.run(context="staging", allow_context="staging", values=values) == 0, world.stderr
    expected = expected_commands(world, context="staging", existing=True, cluster_name="staging-eu1")
    upgrade = next(i for i, c in enumerate(expected) if c[:2] == ["cilium", "upgrade"])
    expected[upgrade][expected[upgrade].index("--values") + 1] = str(values)
    assert world.commands() == expected
    assert "kind" not in world.tools_run()


def test_the_upgrade_keeps_the_cluster_name_the_cluster_runs_with(world: World) -> None:
    """`cilium upgrade --reset-values` would bring back the chart's `default` and re-create every identity."""
    assert world.run() == 0, world.stderr
    upgrade = next(c for c in world.commands() if c[:2] == ["cilium", "upgrade"])
    assert upgrade[-2:] == ["--set", "cluster.name=kind-fc"]
    assert "cluster.name=kind-fc" in world.stdout


def test_a_values_file_that_would_rename_a_live_cluster_is_refused_before_the_upgrade(world: World) -> None:
    values = world.root / "staging-values.yaml"
    values.write_text("kubeProxyReplacement: false\ncluster:\n  name: default\n  id: 0\n")
    world.api.config_maps[(NS, "cilium-config")].data["cluster-name"] = "staging-eu1"
    assert world.run(context="staging", allow_context="staging", values=values) == 2
    assert step_failed(world, "Cilium before")
    assert (f"{values} sets cluster.name: default, but the cluster runs as 'staging-eu1' (kube-system/cilium-config "
            "key cluster-name); renaming it would re-create every identity") in world.stderr
    assert "python -m pytest" not in world.tools_run() and "cilium upgrade" not in world.tools_run()


def test_a_values_file_naming_the_running_cluster_is_fine(world: World) -> None:
    values = world.root / "staging-values.yaml"
    values.write_text("kubeProxyReplacement: false\ncluster:\n  name: staging-eu1\n")
    world.api.config_maps[(NS, "cilium-config")].data["cluster-name"] = "staging-eu1"
    assert world.run(context="staging", allow_context="staging", values=values) == 0, world.stderr


def test_a_cluster_without_the_cilium_config_map_is_not_upgraded_blind(world: World) -> None:
    del world.api.config_maps[(NS, "cilium-config")]
    assert world.run() == 1
    assert step_failed(world, "Cilium before")
    assert "kube-system/cilium-config does not exist" in world.stderr
    assert "cilium upgrade" not in world.tools_run()


def test_an_existing_cluster_without_kube_proxy_gets_its_api_address_from_the_values(world: World) -> None:
    values = world.root / "staging-values.yaml"
    values.write_text("kubeProxyReplacement: true\nk8sServiceHost: api.staging.example\nk8sServicePort: 443\n")
    assert world.run(context="staging", allow_context="staging", values=values) == 0, world.stderr
    install = next(c for c in world.commands() if c[:2] == ["helm", "install"])
    assert install[-4:] == ["--set", "k8sServiceHost=api.staging.example", "--set", "k8sServicePort=443"]


def test_an_existing_cluster_needs_its_own_values_file(world: World) -> None:
    assert world.run(context="staging", allow_context="staging") == 2
    assert world.runner.calls == []
    assert "needs --values FILE with that cluster's reviewed Helm values" in world.stderr


def test_an_existing_cluster_without_kube_proxy_needs_the_api_address(world: World) -> None:
    values = world.root / "staging-values.yaml"
    values.write_text("kubeProxyReplacement: true\n")
    assert world.run(context="staging", allow_context="staging", values=values) == 2
    assert "enables kubeProxyReplacement but sets no k8sServiceHost" in world.stderr
    assert world.runner.calls == []


# ---------------------------------------------------------------------------------------------
# A failure at each step


def step_failed(world: World, step: str) -> bool:
    return f"pre-upgrade: step '{step}' failed:" in world.stderr


def test_a_missing_kind_cli_fails_the_context_guard_before_anything_runs(world: World) -> None:
    def tool(name: str) -> str:
        raise ToolMissing(name, how_to_get(name))

    world.tool = tool
    assert world.run() == 1
    assert step_failed(world, "context guard")
    assert "kind not found on PATH or in .bin/: run scripts/install-tools" in world.stderr
    assert world.runner.calls == []


def test_a_failed_bring_up_stops_the_check(tmp_path: Path) -> None:
    world = World(tmp_path, cluster_exists=False)
    world.exits["up"] = 1
    assert world.run() == 1
    assert step_failed(world, "bring-up")
    assert world.tools_run() == ["kind get", "python -m flowcheck"]
    assert str(world.report_dir / "bring-up.log") in world.stderr


def test_a_kind_cluster_not_on_the_pinned_version_is_named(world: World) -> None:
    world.before_status = with_version(world.before_status, "1.19.0", "1.18.6")
    assert world.run("1.19.1") == 1
    assert step_failed(world, "Cilium before")
    assert "runs Cilium 1.18.6, not the pinned 1.19.0 (manifests/cilium/VERSION)" in world.stderr
    assert "python -m pytest" not in world.tools_run()


def test_an_unreadable_pin_is_bad_input_worded_as_the_cluster_layer_words_it(world: World) -> None:
    (world.root / "manifests" / "cilium" / "VERSION").write_text("\n")
    assert world.run() == 2
    assert "manifests/cilium/VERSION holds nothing, not a Cilium release version like 1.19.0" in world.stderr
    assert "pre-upgrade: step 'Cilium before' failed" in world.stderr


def test_cilium_not_ready_before_the_upgrade_stops_the_check(world: World) -> None:
    world.exits["status --wait"] = 1
    assert world.run() == 1
    assert step_failed(world, "Cilium before")
    assert "Cilium did not become ready within 600 s" in world.stderr
    assert "python -m pytest" not in world.tools_run()


@pytest.mark.parametrize(("target", "message"), [
    ("1.19.0", "the target 1.19.0 is not newer than the Cilium that runs (1.19.0)"),
    ("1.18.9", "the target 1.18.9 is not newer"),
    ("1.21.0", "1.19.0 -> 1.21.0 skips a minor version"),
    ("2.0.0", "1.19.0 -> 2.0.0 skips a minor version"),
])
def test_a_target_that_is_not_the_next_version_is_bad_input(world: World, target: str, message: str) -> None:
    assert world.run(target) == 2
    assert step_failed(world, "Cilium before")
    assert message in world.stderr
    assert "python -m pytest" not in world.tools_run()


def test_failing_suites_before_the_upgrade_stop_the_check(world: World) -> None:
    world.pytest_exit["before"] = 1
    assert world.run() == 1
    assert step_failed(world, "suites before")
    assert "a pre-upgrade check needs a green starting point; nothing was upgraded" in world.stderr
    assert str(world.report_dir / "before" / "report.html") in world.stderr
    assert world.tools_run()[-1] == "python -m pytest"
    assert not (world.report_dir / "baseline-before.json").exists()


def test_pytest_rejecting_its_arguments_is_bad_input(world: World) -> None:
    world.pytest_exit["before"] = 4
    world.write_matrix["before"] = False
    assert world.run(pytest_args=("--no-such-option",)) == 2
    assert step_failed(world, "suites before")


def test_an_offline_run_is_no_baseline(world: World) -> None:
    world.mode = "offline"
    assert world.run() == 1
    assert step_failed(world, "baseline before")
    assert ("the suites did not run live (mode 'offline': --flowcheck-cluster=none: offline mode requested)"
            in world.stderr)
    assert "helm repo" not in world.tools_run()


def test_a_missing_matrix_before_is_a_failed_step_not_bad_input(world: World) -> None:
    world.write_matrix["before"] = False
    assert world.run() == 1
    assert step_failed(world, "baseline before")
    assert "matrix.json: no such file" in world.stderr


def test_the_preflight_waits_for_every_node_and_the_validator(world: World) -> None:
    world.preflight_ready_after_s = 30.0
    assert world.run() == 0, world.stderr
    assert world.clock.sleeps == [5.0] * 6
    assert any("preflight ready: DaemonSet cilium-pre-flight-check: 3 ready (the cilium DaemonSet desires 3)" in line
               for line in world.progress)
    reads = world.api.names("read_namespaced_d")
    assert reads.count("read_namespaced_deployment") == 7


def test_an_api_server_that_stops_answering_for_a_while_is_waited_out(world: World) -> None:
    for _ in range(2):  # e.g. the control plane restarting: urllib3's MaxRetryError, not an ApiException
        world.api.fail("read_namespaced_daemon_set", unreachable("/apis/apps/v1/namespaces/kube-system/daemonsets"))
    assert world.run() == 0, world.stderr
    assert world.clock.sleeps == [5.0] * 2
    assert any(line.startswith("  preflight ready: ") for line in world.progress)


def test_an_api_server_that_never_answers_fails_the_preflight_step_naming_the_context(world: World) -> None:
    for _ in range(1000):
        world.api.fail("read_namespaced_daemon_set", unreachable("/apis/apps/v1/namespaces/kube-system/daemonsets"))
    assert world.run() == 1
    assert "pre-upgrade: step 'preflight' failed: the preflight check was not ready within 600 s: its state could " \
           "not be read" in world.stderr
    assert ("last error: reading DaemonSet kube-system/cilium: cannot reach the Kubernetes API server of context "
            f"{CTX} (https://127.0.0.1:41231): Failed to establish a new connection: [Errno 111] Connection refused"
            ) in world.stderr
    assert "Traceback" not in world.stderr and world.tools_run()[-1] == "helm uninstall"  # the release is removed


def test_a_preflight_timeout_quotes_the_cnp_validator_and_still_uninstalls(world: World) -> None:
    world.preflight_ready_after_s = None
    assert world.run() == 1
    assert step_failed(world, "preflight")
    err = world.stderr
    assert "the preflight check was not ready within 600 s" in err
    assert "Deployment cilium-pre-flight-check: 0/1 ready" in err
    assert f"the CNP validator (container cnp-validator of pod {VALIDATOR_POD}, previous container log) reports:" in err
    assert "Validating CiliumNetworkPolicy 'tenant/legacy-egress': unexpected validation error" in err
    assert 'level=error msg="Found invalid CiliumNetworkPolicy"' in err
    assert "default/allow-get-only': OK!" not in err  # only the lines about invalid policies are quoted
    assert "the cilium-preflight release was removed; nothing was upgraded" in err
    assert world.tools_run()[-1] == "helm uninstall"
    assert "cilium upgrade" not in world.tools_run()
    assert (NS, "cilium-pre-flight-check") not in world.api.deployments
    # the validator pod was found through the Deployment's own selector
    lists = [c for c in world.api.calls if c[0] == "list_namespaced_pod"]
    assert lists[-1][2]["label_selector"] == "k8s-app=cilium-pre-flight-check-deployment"


def test_a_failed_preflight_install_is_still_uninstalled(world: World) -> None:
    world.exits["helm install"] = 1
    assert world.run() == 1
    assert step_failed(world, "preflight")
    assert "installing the preflight check for Cilium 1.20.0 failed (exit 1" in world.stderr
    assert world.tools_run()[-2:] == ["helm install", "helm uninstall"]


def test_an_uninstall_failure_after_a_timeout_is_reported_with_it(world: World) -> None:
    world.preflight_ready_after_s = None
    world.exits["helm uninstall"] = 1
    assert world.run() == 1
    assert "removing the cilium-preflight release failed too" in world.stderr
    assert "Found invalid CiliumNetworkPolicy" in world.stderr


def test_a_preflight_release_left_behind_fails_the_step_before_upgrading(world: World) -> None:
    world.exits["helm uninstall"] = 1
    assert world.run() == 1
    assert step_failed(world, "preflight")
    assert "the preflight check passed, but removing the cilium-preflight release failed" in world.stderr
    assert "cilium upgrade" not in world.tools_run()


def test_a_failed_helm_repo_add_installs_nothing(world: World) -> None:
    world.exits["helm repo add"] = 1
    assert world.run() == 1
    assert step_failed(world, "preflight")
    assert world.tools_run()[-1] == "helm repo"


def test_a_failed_upgrade_stops_before_the_rollout_wait(world: World) -> None:
    world.exits["upgrade"] = 1
    assert world.run() == 1
    assert step_failed(world, "upgrade")
    assert "upgrading Cilium to 1.20.0 failed (exit 1" in world.stderr
    assert "helm rollback cilium" in world.stderr
    assert world.tools_run()[-1] == "cilium upgrade"


def test_a_rollout_that_does_not_finish_lists_the_agents_still_on_the_old_image(world: World) -> None:
    world.stuck_pod = "cilium-tz5lm"
    assert world.run() == 1
    assert step_failed(world, "rollout")
    err = world.stderr
    assert "the Cilium agents did not all roll to 1.20.0 within 600 s" in err
    assert "1 cilium agent pod(s) still run quay.io/cilium/cilium:v1.19.0" in err
    assert "cilium DaemonSet: Desired 3, Ready 2, Available 2, Unavailable 1" in err
    assert "cilium-tz5lm on node fc-worker3: quay.io/cilium/cilium:v1.19.0" in err
    assert "cilium-4xk2p" not in err
    assert world.tools_run().count("python -m pytest") == 1  # no L7 check while agents roll
    assert sum(world.clock.sleeps) >= 600


def test_a_status_wait_timeout_after_the_upgrade_is_a_rollout_failure(world: World) -> None:
    world.exits["status --wait after upgrade"] = 1
    world.stuck_pod = "cilium-9hq7w"
    assert world.run() == 1
    assert step_failed(world, "rollout")
    assert "cilium-9hq7w on node fc-worker2: quay.io/cilium/cilium:v1.19.0" in world.stderr
    assert world.tools_run().count("python -m pytest") == 1


def test_failing_suites_after_the_upgrade_exit_1_with_the_comparison(world: World) -> None:
    world.pytest_exit["after"] = 1
    world.verdicts["after"][("default/web", "default/my-api", "TCP", 8080, "GET /")] = Verdict.DROPPED
    assert world.run() == 1
    assert step_failed(world, "suites after")
    assert "the suites failed after the upgrade to Cilium 1.20.0 (pytest exit 1)" in world.stderr
    assert "CHANGED  default/web -> default/my-api:8080/TCP GET /: allowed -> dropped" in world.stdout
    assert (world.report_dir / "baseline-after.json").exists()


def test_suites_after_that_write_no_report_exit_1(world: World) -> None:
    world.pytest_exit["after"] = 2
    world.write_matrix["after"] = False
    assert world.run() == 1
    assert step_failed(world, "suites after")
    assert "wrote no matrix.json to compare; the cluster now runs Cilium 1.20.0" in world.stderr
    assert not (world.report_dir / "baseline-after.json").exists()


# ---------------------------------------------------------------------------------------------
# Input


def test_a_report_dir_holding_a_previous_check_is_refused(world: World) -> None:
    (world.report_dir / "before").mkdir(parents=True)
    assert world.run() == 2
    assert "pre-upgrade: error: " in world.stderr
    assert "already exists (a previous check's results)" in world.stderr
    assert world.runner.calls == []


@pytest.mark.parametrize("arg", ["--flowcheck-cluster=none", "--flowcheck-report=x", "--junitxml",
                                 "--flowcheck-kube-context", "--flowcheck-baseline=b.json"])
def test_extra_pytest_arguments_cannot_redirect_the_runs(world: World, arg: str) -> None:
    assert world.run(pytest_args=(arg,)) == 2
    assert "the pre-upgrade check sets" in world.stderr
    assert world.runner.calls == []


def test_the_check_runs_from_the_repository_root_only(world: World) -> None:
    (world.root / "suites").rmdir()
    assert world.run() == 2
    assert "has no suites/ directory" in world.stderr


# ---------------------------------------------------------------------------------------------
# Pieces


@pytest.mark.parametrize(("text", "parsed"), [
    ("1.20.0", CiliumVersion(1, 20, 0)),
    ("v1.19.3", CiliumVersion(1, 19, 3)),
    ("1.20.0-pre.2", CiliumVersion(1, 20, 0, "pre.2")),
    ("1.20", None),
    ("latest", None),
    ("01.2.3", None),
])
def test_cilium_versions(text: str, parsed: CiliumVersion | None) -> None:
    assert CiliumVersion.parse(text) == parsed


def test_image_tags_ignore_digests_and_registry_ports() -> None:
    assert image_tag("quay.io/cilium/cilium:v1.20.0@sha256:" + "0" * 64) == "v1.20.0"
    assert image_tag("localhost:5000/cilium/cilium") == ""
    assert image_tag("localhost:5000/cilium/cilium:v1.19.0") == "v1.19.0"


def test_the_running_version_comes_from_the_agents_image() -> None:
    assert running_version(parse_status_json(data("cilium-status-healthy.json"))) == CiliumVersion(1, 19, 0)
    with pytest.raises(Exception, match=r"the cilium agents run different versions \(v1.19.0, v1.20.0\)"):
        running_version(parse_status_json(pre_data("cilium-status-rolling.json")))


def test_rollout_pending_is_empty_only_when_every_agent_runs_the_target_and_is_ready() -> None:
    target = CiliumVersion(1, 20, 0)
    assert rollout_pending(parse_status_json(pre_data("cilium-status-1.20-rolled.json")), target) == []
    rolling = rollout_pending(parse_status_json(pre_data("cilium-status-rolling.json")), target)
    assert rolling[:2] == ["1 cilium agent pod(s) still run quay.io/cilium/cilium:v1.19.0",
                           "cilium DaemonSet: Desired 3, Ready 2, Available 2, Unavailable 1"]
    before = rollout_pending(parse_status_json(data("cilium-status-healthy.json")), target)
    assert before == ["3 cilium agent pod(s) still run quay.io/cilium/cilium:v1.19.0"]


# ---------------------------------------------------------------------------------------------
# Command line and wrapper script


def parse(*argv: str) -> Any:
    import argparse

    parser = argparse.ArgumentParser(prog="flowcheck")
    preupgrade_command.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_the_subcommand_parses_context_values_and_extra_pytest_arguments(tmp_path: Path) -> None:
    args = parse("pre-upgrade", "v1.20.0", "--context", "staging", "--allow-context", "staging", "--values",
                 "v.yaml", "--report-dir", "out", "--", "-k", "dns")
    options = options_from_args(args, python=PY)
    assert options.target == CiliumVersion(1, 20, 0)
    assert (options.cluster.context, options.cluster.allow_context, options.existing) == ("staging", "staging", True)
    assert options.values == Path("v.yaml")
    assert options.report_dir == Path("out")
    assert options.pytest_args == ("-k", "dns")
    assert args.func is preupgrade_command.run


def test_the_default_report_dir_is_timestamped() -> None:
    from datetime import UTC, datetime

    args = parse("pre-upgrade", "1.20.0")
    options = options_from_args(args, now=datetime(2026, 8, 27, 14, 30, 12, tzinfo=UTC))
    assert options.report_dir == Path("flowcheck-report/pre-upgrade-20260827-143012")
    assert options.cluster.name == "flowcheck"
    assert not options.existing


def test_a_malformed_target_version_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pre-upgrade", "1.20"]) == 2
    assert "TARGET_VERSION '1.20' is not a Cilium release version like 1.20.0" in capsys.readouterr().err


def test_a_bug_in_the_check_is_exit_3_not_a_change(monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    def broken(_self: PreUpgradeCheck) -> Any:
        raise AttributeError("'NoneType' object has no attribute 'minor_line'")

    monkeypatch.setattr(PreUpgradeCheck, "run", broken)
    monkeypatch.delenv("FLOWCHECK_DEBUG", raising=False)
    assert main(["pre-upgrade", "1.20.0"]) == 3
    assert capsys.readouterr().err == ("flowcheck: internal error (a flowcheck bug): AttributeError: 'NoneType' "
                                       "object has no attribute 'minor_line' (set FLOWCHECK_DEBUG=1 for the "
                                       "traceback)\n")


def test_main_refuses_a_foreign_context_without_running_anything(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "suites").mkdir()
    monkeypatch.chdir(tmp_path)

    def no_process(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("no process may run before the context guard")

    monkeypatch.setattr(preupgrade.SubprocessRunner, "run", no_process)
    assert main(["pre-upgrade", "1.20.0", "--context", "prod"]) == 2
    err = capsys.readouterr().err
    assert "refusing kube context 'prod'" in err
    assert not (tmp_path / "flowcheck-report").exists()


SCRIPT = REPO / "scripts" / "pre-upgrade-check"


def test_the_wrapper_script_is_executable_bash_that_parses() -> None:
    assert SCRIPT.is_file()
    assert os.access(SCRIPT, os.X_OK)
    assert SCRIPT.read_text().startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in SCRIPT.read_text()
    assert '-m flowcheck pre-upgrade "$@"' in SCRIPT.read_text()
    result = subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_the_wrapper_script_shows_the_usage() -> None:
    """With ``PYTHON`` naming the interpreter under test, wherever its environment lives."""
    result = subprocess.run([str(SCRIPT), "--help"], capture_output=True, text=True, check=False, timeout=60,
                            env={**os.environ, "PYTHON": sys.executable})
    assert result.returncode == 0, result.stderr
    assert "TARGET_VERSION" in result.stdout
    assert "--allow-context NAME" in result.stdout


# ---------------------------------------------------------------------------------------------
# helm as a pinned tool


def test_helm_is_pinned_from_get_helm_sh() -> None:
    versions = read_tool_versions(REPO / "scripts" / "tool-versions")
    helm = versions.tool("helm")
    assert helm.version.startswith("v3.")
    assert helm.asset("linux", "amd64") == f"helm-{helm.version}-linux-amd64.tar.gz"
    assert helm.url("linux", "amd64") == f"https://get.helm.sh/helm-{helm.version}-linux-amd64.tar.gz"
    assert versions.sha256_of(helm.asset("linux", "amd64")) is None  # never invented: pinned after a real download


@pytest.mark.skipif(shutil.which("curl") is None, reason="install-tools needs curl")
def test_install_tools_verifies_and_installs_helm_from_its_own_server(tmp_path: Path) -> None:
    """A stand-in get.helm.sh (file://): the archive holds linux-amd64/helm, with a published .sha256sum."""
    server = tmp_path / "get.helm.sh"
    server.mkdir()
    body = b"#!/bin/sh\necho 'fake helm'\n"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for member, content in (("linux-amd64/LICENSE", b"license\n"), ("linux-amd64/helm", body)):
            info = tarfile.TarInfo(member)
            info.size = len(content)
            info.mode = 0o755
            tar.addfile(info, io.BytesIO(content))
    asset = server / "helm-v3.18.6-linux-amd64.tar.gz"
    asset.write_bytes(buf.getvalue())
    digest = hashlib.sha256(asset.read_bytes()).hexdigest()
    Path(f"{asset}.sha256sum").write_text(f"{digest}  {asset.name}\n")
    versions = tmp_path / "tool-versions"
    versions.write_text(f"tool helm v3.18.6 file://{server} helm-${{version}}-${{os}}-${{arch}}.tar.gz\n")
    bin_dir = tmp_path / "bin"
    env = {**os.environ, "FLOWCHECK_TOOL_VERSIONS": str(versions), "FLOWCHECK_BIN_DIR": str(bin_dir),
           "FLOWCHECK_TOOLS_BASE_URL": "file:///nonexistent", "FLOWCHECK_TOOLS_OS": "linux",
           "FLOWCHECK_TOOLS_ARCH": "amd64"}

    def install(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", str(REPO / "scripts" / "install-tools"), *args], capture_output=True,
                              text=True, env=env, timeout=60, check=False)

    refused = install("helm")
    assert refused.returncode == 1
    assert "no sha256 pinned for helm-v3.18.6-linux-amd64.tar.gz (helm v3.18.6)" in refused.stderr
    trusted = install("--trust-published-checksums", "helm")
    assert trusted.returncode == 0, trusted.stderr
    assert f"sha256  helm-v3.18.6-linux-amd64.tar.gz  {digest}" in trusted.stdout
    assert subprocess.run([str(bin_dir / "helm")], capture_output=True, text=True, check=True).stdout == "fake helm\n"
    versions.write_text(versions.read_text() + f"sha256 helm-v3.18.6-linux-amd64.tar.gz {'a' * 64}\n")
    mismatch = install("--force", "helm")
    assert mismatch.returncode == 1
    assert f"sha256 mismatch for helm-v3.18.6-linux-amd64.tar.gz: pinned {'a' * 64}, downloaded {digest}" in (
        mismatch.stderr)


def test_extra_pytest_arguments_need_the_double_dash(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse("pre-upgrade", "1.20.0", "-k", "dns")
    assert exit_info.value.code == 2
    assert "unrecognized arguments: -k dns" in capsys.readouterr().err
    args = parse("pre-upgrade", "--context", "s", "1.20.0", "--allow-context", "s", "--", "-k", "a", "--", "b")
    assert args.pytest_args == ["-k", "a", "--", "b"]
    assert parse("pre-upgrade", "1.20.0").pytest_args == []
