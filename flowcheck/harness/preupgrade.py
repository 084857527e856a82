"""Pre-upgrade validation: does anything a policy author meant change when Cilium is upgraded?

    flowcheck pre-upgrade 1.20.0                                  # on flowcheck's kind cluster
    flowcheck pre-upgrade 1.20.0 --context staging --allow-context staging --values staging-values.yaml
    scripts/pre-upgrade-check 1.20.0 -- -k dns                     # extra pytest arguments after --

The check is a fixed sequence of named steps. Each prints one progress line when it starts; a
failure names the step, says what went wrong and what to look at, and stops the sequence:

1. **context guard** -- on kind (the default) the context is ``kind-<cluster name>`` of a kind
   cluster ``kind get clusters`` lists; an existing (staging) cluster is used only when it is named
   twice, ``--context C --allow-context C``. Anything else is refused (exit 2) before a process runs.
2. **bring-up** -- on kind, a missing cluster is created with the pinned Cilium by ``python -m
   flowcheck.cluster up`` (the same code as ``scripts/cluster-up``).
3. **Cilium before** -- ``cilium status --wait`` then ``-o json``: which version runs (the agents'
   image tag). On kind it must be the pinned one (``manifests/cilium/VERSION``); the target must be
   newer and at most one minor version ahead (the upgrade guide tests consecutive minors only).
4. **suites before** -- ``pytest suites/`` live (the suites include ``cilium connectivity test``)
   into ``DIR/before``. A red start stops here: a pre-upgrade check needs a green starting point.
5. **baseline before** -- ``DIR/before/matrix.json`` recorded as ``DIR/baseline-before.json``.
6. **preflight** -- the upgrade guide's required pre-flight check: a ``cilium-preflight`` Helm
   release with ``preflight.enabled=true`` for the target version. Its DaemonSet pre-pulls the new
   image on every node; its Deployment runs the CNP validator against every CiliumNetworkPolicy and
   CiliumClusterwideNetworkPolicy. Ready when the DaemonSet has as many ready pods as the ``cilium``
   DaemonSet desires and the Deployment is 1/1 (read from the Kubernetes API). If it is not ready in
   time, the validator's log is quoted. The release is always uninstalled afterwards, also on failure.
7. **upgrade** -- ``cilium upgrade`` to the target with ``--reset-values`` and the reviewed values
   file, ``upgradeCompatibility`` set to the minor version that ran before (see ``upgrade_argv``).
8. **rollout** -- ``cilium status --wait``, then ``cilium status -o json`` polled until every agent
   runs the target image and the ``cilium`` DaemonSet is Desired == Ready == Available. The guide
   says traffic through the L7 proxy is disrupted while agents roll, so no L7 check may run before.
9. **suites after** -- the same suites into ``DIR/after``.
10. **compare** -- ``DIR/baseline-after.json`` compared with the baseline before; every flow whose
    verdict changed, appeared or disappeared is printed.

Exit codes: 0 nothing changed; 1 a change, a failed suite run or a failed step; 2 bad input or a
refused context. After a failure past step 7 the cluster stays on the target version.

Everything that runs a process goes through one injected ``ProcessRunner``, the Kubernetes API
through an injected factory, time through injected ``clock``/``sleep`` -- tests run the whole
sequence against fakes. Nothing here has been run against a real cluster. helm's output is never
parsed (only its exit codes are used); the CNP validator's log is quoted, filtered to the lines
that mention an invalid policy or an error, because its exact format is not confirmed beyond the
upgrade guide's "Found invalid CiliumNetworkPolicy".
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Generic, TypeVar

import yaml
from tenacity import RetryCallState, RetryError, Retrying, retry_if_exception_type, retry_if_result, wait_fixed

from flowcheck.cluster import kube
from flowcheck.cluster.cilium import INSTALL_TIMEOUT_S, CiliumCli, CiliumStatusReport
from flowcheck.cluster.guard import check_context
from flowcheck.cluster.kind import Kind, context_for
from flowcheck.cluster.kube import ApiFactory, KubeClients
from flowcheck.cluster.process import ProcessRunner, SubprocessRunner, command_line, tail
from flowcheck.cluster.realization import AGENT_CONTAINER, AGENT_SELECTOR, CILIUM_NAMESPACE
from flowcheck.cluster.tools import default_bin_dirs, find_tool
from flowcheck.errors import ClusterError, ContextRefused, FlowcheckError, InputError
from flowcheck.probe.executor import CompletedExec
from flowcheck.report.baseline import Baseline, compare_baselines, record_baseline, render_diff, write_baseline
from flowcheck.report.files import MATRIX_FILE, read_matrix

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2

DEFAULT_CLUSTER_NAME = os.environ.get("FLOWCHECK_CLUSTER_NAME", "flowcheck")
DEFAULT_REPORT_ROOT = Path("flowcheck-report")
SUITES_DIR = "suites/"

HELM_REPO_NAME = "cilium"
HELM_REPO_URL = "https://helm.cilium.io"
HELM_CHART = "cilium/cilium"
PREFLIGHT_RELEASE = "cilium-preflight"
PREFLIGHT_NAME = "cilium-pre-flight-check"  # the chart's DaemonSet and Deployment (upgrade guide)
CNP_VALIDATOR_CONTAINER = "cnp-validator"
AGENT_DAEMONSET = "cilium"

STEPS: tuple[str, ...] = ("context guard", "bring-up", "Cilium before", "suites before", "baseline before",
                          "preflight", "upgrade", "rollout", "suites after", "compare")

BRING_UP_TIMEOUT_S = 2400.0  # kind create (up to 15 min) + cilium install (15) + status --wait (10)
SUITES_TIMEOUT_S = 7200.0  # the suites plus a full connectivity test (6-12 min upstream), on a slow runner
HELM_QUERY_TIMEOUT_S = 120.0
HELM_INSTALL_TIMEOUT_S = 600.0  # no --wait: helm only renders and creates the objects
HELM_UNINSTALL_TIMEOUT_S = 300.0
PREFLIGHT_TIMEOUT_S = 600.0  # every node pulls the new agent image first
STATUS_WAIT_S = 600.0  # `cilium status --wait-duration`, as Cilium's own upgrade CI uses (10m)
ROLLOUT_TIMEOUT_S = 600.0  # after `status --wait`: until every agent runs the target image
POLL_INTERVAL_S = 5.0
VALIDATOR_LOG_TAIL_LINES = 200  # enough for one line per policy on a large cluster
QUOTED_LOG_LINES = 40  # how much of the validator's log a failure message quotes

# pytest options the check sets itself; passing them through would point a run elsewhere.
MANAGED_PYTEST_OPTIONS = ("--cluster", "--cluster-name", "--kube-context", "--allow-context", "--keep-cluster",
                          "--flowcheck-report", "--junitxml", "--junit-xml", "--baseline", "--cilium-version")

Progress = Callable[[str], None]
ToolLookup = Callable[[str], str]


# ---------------------------------------------------------------------------------------------
# Versions


_VERSION_RE = re.compile(r"^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?$")


@dataclass(frozen=True, slots=True)
class CiliumVersion:
    """A Cilium release version: ``1.20.0``, ``v1.19.3``, ``1.20.0-pre.2``."""

    major: int
    minor: int
    patch: int
    prerelease: str = ""

    @classmethod
    def parse(cls, text: str) -> CiliumVersion | None:
        match = _VERSION_RE.match(text.strip())
        if match is None:
            return None
        return cls(int(match[1]), int(match[2]), int(match[3]), (match[4] or "").lstrip("-"))

    @property
    def release(self) -> tuple[int, int, int]:
        return (self.major, self.minor, self.patch)

    @property
    def minor_line(self) -> str:
        """``1.19``: what ``upgradeCompatibility`` takes."""
        return f"{self.major}.{self.minor}"

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}" + (f"-{self.prerelease}" if self.prerelease else "")


def image_tag(image: str) -> str:
    """The tag of an image reference (``quay.io/cilium/cilium:v1.19.0@sha256:...`` -> ``v1.19.0``), or ``""``."""
    ref = image.split("@", 1)[0]
    last = ref.rsplit("/", 1)[-1]
    return last.rsplit(":", 1)[1] if ":" in last else ""


def _runs(image: str, version: CiliumVersion) -> bool:
    return CiliumVersion.parse(image_tag(image)) == version


def running_version(report: CiliumStatusReport) -> CiliumVersion:
    """The Cilium version the agents run: their image tag, else the Helm chart version."""
    tags = report.image_tags(AGENT_DAEMONSET)
    if len(tags) > 1:
        raise ClusterError(f"the cilium agents run different versions ({', '.join(sorted(tags))}): an upgrade or "
                           "rollout seems to be in progress; let it finish first")
    text = next(iter(tags)) if tags else report.helm_chart_version
    if not text:
        raise ClusterError("`cilium status -o json` names neither the agents' image nor the Helm chart version, so "
                           "the running Cilium version is unknown")
    version = CiliumVersion.parse(text)
    if version is None:
        raise ClusterError(f"cannot read a Cilium release version from {text!r} (the agents' image tag or chart "
                           "version): upgradeCompatibility needs the MAJOR.MINOR that runs now")
    return version


# ---------------------------------------------------------------------------------------------
# Options and failures


@dataclass(frozen=True, slots=True)
class PreUpgradeOptions:
    """What to check. ``context`` None: flowcheck's kind cluster ``cluster_name``."""

    target: CiliumVersion
    cluster_name: str = DEFAULT_CLUSTER_NAME
    context: str | None = None
    allow_context: str | None = None
    values: Path | None = None  # None: manifests/cilium/values.yaml (kind only)
    report_dir: Path = field(default_factory=lambda: default_report_dir())
    pytest_args: tuple[str, ...] = ()
    python: str = sys.executable
    bring_up_timeout_s: float = BRING_UP_TIMEOUT_S
    suites_timeout_s: float = SUITES_TIMEOUT_S
    preflight_timeout_s: float = PREFLIGHT_TIMEOUT_S
    status_wait_s: float = STATUS_WAIT_S
    rollout_timeout_s: float = ROLLOUT_TIMEOUT_S
    poll_interval_s: float = POLL_INTERVAL_S

    @property
    def existing(self) -> bool:
        """An explicitly allowed existing cluster rather than flowcheck's kind cluster."""
        return self.context is not None and self.context != context_for(self.cluster_name)


def default_report_dir(now: datetime | None = None) -> Path:
    """``flowcheck-report/pre-upgrade-<UTC timestamp>``."""
    moment = now or datetime.now(UTC)
    return DEFAULT_REPORT_ROOT / f"pre-upgrade-{moment:%Y%m%d-%H%M%S}"


class StepFailed(FlowcheckError):
    """A step of the check failed: which one, why, and what to look at."""

    def __init__(self, step: str, message: str, look_at: str = "", exit_code: int = EXIT_FAILED) -> None:
        self.step = step
        self.message = message
        self.look_at = look_at
        self.exit_code = exit_code
        super().__init__(self.render())

    def render(self) -> str:
        text = (f"pre-upgrade: step '{self.step}' failed: {self.message}" if self.step
                else f"pre-upgrade: error: {self.message}")
        return text + (f"\n  look at: {self.look_at}" if self.look_at else "")


@dataclass(frozen=True, slots=True)
class _Values:
    """What the check needs from the Helm values file."""

    path: Path
    kube_proxy_replacement: bool
    k8s_service_host: str | None
    k8s_service_port: str | None


def read_values(path: Path) -> _Values:
    """Read the few keys the preflight release needs; a missing or malformed file is an ``InputError``."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"{path}: cannot read the Helm values file: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not valid YAML: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a mapping of Helm values, got {type(data).__name__}")
    kpr = data.get("kubeProxyReplacement")
    host = data.get("k8sServiceHost")
    port = data.get("k8sServicePort")
    return _Values(path, str(kpr).lower() in ("true", "strict"),
                   str(host) if host not in (None, "") else None, str(port) if port not in (None, "") else None)


# ---------------------------------------------------------------------------------------------
# Waiting


T = TypeVar("T")


@dataclass
class WaitOutcome(Generic[T]):
    """How a wait ended: ``done``, the last value read, and the last error (if the last read failed)."""

    done: bool
    last: T | None
    error: BaseException | None


def wait_until(read: Callable[[], T], done: Callable[[T], bool], *, timeout_s: float, interval_s: float,
               clock: Callable[[], float], sleep: Callable[[float], None]) -> WaitOutcome[T]:
    """Poll ``read`` every ``interval_s`` until ``done`` or the deadline; a ``ClusterError`` is retried too."""
    deadline = clock() + timeout_s
    seen: dict[str, T] = {}

    def attempt() -> T:
        value = read()
        seen["last"] = value
        return value

    def past_deadline(_state: RetryCallState) -> bool:
        return clock() >= deadline

    retrying = Retrying(stop=past_deadline, wait=wait_fixed(interval_s), sleep=sleep,
                        retry=retry_if_exception_type(ClusterError) | retry_if_result(lambda value: not done(value)))
    try:
        value = retrying(attempt)
    except RetryError as exc:
        error = exc.last_attempt.exception() if exc.last_attempt.failed else None
        return WaitOutcome(False, seen.get("last"), error)
    return WaitOutcome(True, value, None)


@dataclass(frozen=True, slots=True)
class PreflightState:
    """The preflight objects' readiness as the API reports it (None: the object does not exist yet)."""

    agents_desired: int | None  # the cilium DaemonSet's desiredNumberScheduled
    daemonset_ready: int | None
    deployment_ready: int | None
    deployment_replicas: int | None

    @property
    def done(self) -> bool:
        if self.agents_desired is None or self.daemonset_ready is None or self.deployment_ready is None:
            return False
        return (self.agents_desired > 0 and self.daemonset_ready >= self.agents_desired
                and self.deployment_ready >= max(1, self.deployment_replicas or 1))

    def describe(self) -> str:
        agents = "?" if self.agents_desired is None else str(self.agents_desired)
        ds = ("not created" if self.daemonset_ready is None
              else f"{self.daemonset_ready} ready (the {AGENT_DAEMONSET} DaemonSet desires {agents})")
        dep = ("not created" if self.deployment_ready is None
               else f"{self.deployment_ready}/{max(1, self.deployment_replicas or 1)} ready")
        return f"DaemonSet {PREFLIGHT_NAME}: {ds}; Deployment {PREFLIGHT_NAME}: {dep}"


def rollout_pending(report: CiliumStatusReport, target: CiliumVersion) -> list[str]:
    """What still keeps the rollout from being complete (empty when every agent runs ``target``, all ready)."""
    pending = []
    images = [(image, count) for component, image, count in report.images if component == AGENT_DAEMONSET]
    if not images:
        pending.append("`cilium status` reports no cilium agent image")
    for image, count in images:
        if not _runs(image, target):
            pending.append(f"{count} cilium agent pod(s) still run {image}")
    agents = next((c for c in report.pod_state if c.component == AGENT_DAEMONSET), None)
    if agents is None:
        pending.append(f"`cilium status` reports no state for the {AGENT_DAEMONSET} DaemonSet")
    elif not (agents.desired > 0 and agents.desired == agents.ready == agents.available and agents.unavailable == 0):
        pending.append(f"{AGENT_DAEMONSET} DaemonSet: Desired {agents.desired}, Ready {agents.ready}, "
                       f"Available {agents.available}, Unavailable {agents.unavailable}")
    if not report.healthy:  # everything else `cilium status` reports (the agents' own counts are above)
        pending += [line for line in report.problem_lines(include_warnings=False)
                    if not line.startswith(f"{AGENT_DAEMONSET} (")]
    return pending


# ---------------------------------------------------------------------------------------------
# The check


def _print(line: str) -> None:
    print(line, flush=True)


def _print_error(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class PreUpgradeCheck:
    """Runs the steps in order (see the module docstring); ``run()`` returns the exit code.

    ``repo_root`` (default: the current directory) must be the directory the runner runs commands
    in: ``pytest suites/`` and ``python -m flowcheck.cluster up`` are relative to it, as in
    ``scripts/pre-upgrade-check``. Commands' output is captured, not streamed: each long-running
    command's output is kept next to the reports (``DIR/<phase>/pytest-output.txt``,
    ``DIR/bring-up.log``) and the end of it is quoted when the command fails.
    """

    def __init__(self, options: PreUpgradeOptions, *, runner: ProcessRunner | None = None,
                 api_factory: ApiFactory | None = None, tool: ToolLookup | None = None,
                 repo_root: Path | None = None, progress: Progress = _print, error: Progress = _print_error,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self.options = options
        self.repo_root = repo_root or Path.cwd()
        self._runner = runner or SubprocessRunner()
        self._api_factory = api_factory
        bin_dirs = default_bin_dirs(self.repo_root)
        self._tool = tool or (lambda name: find_tool(name, bin_dirs=bin_dirs))
        self._say = progress
        self._error = error
        self._clock = clock
        self._sleep = sleep
        self._step_index = 0
        self.context = ""
        self.before_version: CiliumVersion | None = None
        self._values: _Values | None = None
        self._clients: KubeClients | None = None
        self._cilium: CiliumCli | None = None

    # -----------------------------------------------------------------------------------------
    # Driver

    def run(self) -> int:
        try:
            self._validate()
            return self._run_steps()
        except StepFailed as failure:
            self._error(failure.render())
            return failure.exit_code

    def _validate(self) -> None:
        """Everything that can be checked without running anything; the context guard's static part first."""
        o = self.options
        try:
            if o.allow_context is not None and o.context is None:
                raise ContextRefused(o.allow_context, "--allow-context was given without --context: name the "
                                                      f"context twice, --context {o.allow_context} --allow-context "
                                                      f"{o.allow_context}")
            # A context other than the kind cluster's, or an opt-in naming another context: refused here,
            # before anything runs, unless --allow-context names exactly --context.
            if o.existing or (o.allow_context is not None and o.allow_context != o.context):
                check_context(o.context, cluster_name=o.cluster_name, kind_clusters=None,
                              allow_context=o.allow_context)
        except ContextRefused as exc:
            raise StepFailed("context guard", str(exc), "the kube context: an existing cluster needs both "
                             "--context NAME and --allow-context NAME", EXIT_BAD_INPUT) from None
        try:
            self._validate_inputs()
        except InputError as exc:
            raise StepFailed("", str(exc), "the command line (flowcheck pre-upgrade --help)", EXIT_BAD_INPUT) from None

    def _validate_inputs(self) -> None:
        o = self.options
        if not (self.repo_root / SUITES_DIR).is_dir():
            raise InputError(f"{self.repo_root} has no {SUITES_DIR} directory: run the check from the root of the "
                             "flowcheck repository (scripts/pre-upgrade-check does)")
        for arg in o.pytest_args:
            name = arg.split("=", 1)[0]
            if name in MANAGED_PYTEST_OPTIONS:
                raise InputError(f"extra pytest argument {arg!r}: the pre-upgrade check sets {name} itself")
        if o.values is None and o.existing:
            raise InputError("an existing cluster needs --values FILE with that cluster's reviewed Helm values (the "
                             "upgrade guide: `helm get values cilium -n kube-system -o yaml`, then check renamed and "
                             "deprecated keys); manifests/cilium/values.yaml is for flowcheck's kind cluster only")
        values = read_values(o.values or self.repo_root / "manifests" / "cilium" / "values.yaml")
        if values.kube_proxy_replacement and o.existing and not values.k8s_service_host:
            raise InputError(f"{values.path} enables kubeProxyReplacement but sets no k8sServiceHost: the preflight "
                             "pods need the API server's address on a cluster without kube-proxy")
        self._values = values
        for phase in ("before", "after"):
            if (o.report_dir / phase).exists():
                raise InputError(f"{o.report_dir / phase} already exists (a previous check's results); choose a "
                                 "new --report-dir")

    def _run_steps(self) -> int:
        self._guard()
        self._cilium_before()
        self._suites("before")
        baseline_before = self._baseline("before")
        self._preflight()
        self._upgrade()
        self._rollout()
        after = self._suites("after", allow_failure=True)
        return self._compare(baseline_before, after)

    @contextmanager
    def _step(self, name: str, line: str, look_at: str = "") -> Iterator[None]:
        """Print the step's progress line; turn a ``FlowcheckError`` inside it into ``StepFailed(name)``."""
        self._step_index = STEPS.index(name) + 1
        self._say(f"pre-upgrade [{self._step_index}/{len(STEPS)}] {name}: {line}")
        try:
            yield
        except StepFailed:
            raise
        except (ContextRefused, InputError) as exc:
            raise StepFailed(name, str(exc), look_at, EXIT_BAD_INPUT) from exc
        except FlowcheckError as exc:
            raise StepFailed(name, str(exc), look_at) from exc
        except OSError as exc:  # writing a report, a baseline or a log next to them
            raise StepFailed(name, f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": "), look_at) from exc

    # -----------------------------------------------------------------------------------------
    # Steps 1-2: the context guard and, on kind, bringing the cluster up

    def _guard(self) -> None:
        o = self.options
        if o.existing:
            with self._step("context guard", f"existing cluster, context {o.context} (allowed explicitly with "
                                             f"--allow-context {o.allow_context})"):
                assert o.context is not None
                self.context = check_context(o.context, cluster_name=o.cluster_name, kind_clusters=None,
                                             allow_context=o.allow_context)
            with self._step("bring-up", "not applicable: an existing cluster is used as it is"):
                pass
            return
        name = o.cluster_name
        look_at = f"`kind get clusters`; flowcheck manages the kind cluster {name} (context {context_for(name)})"
        with self._step("context guard", f"kind cluster {name}, context {context_for(name)}", look_at):
            kind = Kind(self._runner, self._tool("kind"))
            clusters = kind.clusters()
            if name in clusters:
                self.context = check_context(context_for(name), cluster_name=name, kind_clusters=clusters,
                                             allow_context=o.allow_context)
        if name in clusters:
            with self._step("bring-up", f"kind cluster {name} exists; using it as it is"):
                return
        argv = [o.python, "-m", "flowcheck.cluster", "up", "--name", name]
        log = o.report_dir / "bring-up.log"
        with self._step("bring-up", f"no kind cluster {name}: creating it with the pinned Cilium "
                                    f"(`{command_line(argv)}`, several minutes)",
                        f"{log}; `python -m flowcheck.cluster up --name {name}` on its own"):
            result = self._runner.run(argv, timeout_s=o.bring_up_timeout_s)
            self._write_log(log, argv, result)
            if result.returncode != 0:
                raise ClusterError(f"`{command_line(argv)}` failed (exit {result.returncode}){tail(result)}")
            clusters = kind.clusters()
            try:
                self.context = check_context(context_for(name), cluster_name=name, kind_clusters=clusters,
                                             allow_context=o.allow_context)
            except ContextRefused as exc:  # the bring-up said it worked, yet kind does not list the cluster
                raise ClusterError(str(exc)) from None

    # -----------------------------------------------------------------------------------------
    # Step 3: the Cilium that runs now

    def _cilium_before(self) -> None:
        o = self.options
        with self._step("Cilium before", f"which Cilium runs on {self.context} (`cilium status --wait`, then -o json)",
                        f"`cilium status --context {self.context}`"):
            report = self._cilium_cli().wait_ready(o.status_wait_s)
            version = running_version(report)
            if not o.existing:
                pinned = self._pinned_version()
                if version != pinned:
                    raise ClusterError(
                        f"the kind cluster {o.cluster_name} runs Cilium {version}, not the pinned {pinned} "
                        f"(manifests/cilium/VERSION): the check starts from the pinned version. Delete the cluster "
                        f"(`python -m flowcheck.cluster down --name {o.cluster_name}`) and run the check again")
            target = o.target
            if target.release < version.release or target == version:
                raise InputError(f"the target {target} is not newer than the Cilium that runs ({version}): nothing "
                                 "to upgrade")
            if target.major != version.major or target.minor > version.minor + 1:
                raise InputError(f"{version} -> {target} skips a minor version: the upgrade guide tests upgrades "
                                 f"between consecutive minor versions only; upgrade to the latest "
                                 f"{version.major}.{version.minor + 1} release first")
            self.before_version = version
            self._say(f"  Cilium {version} runs ({report.summary()}); upgrading to {target}, "
                      f"upgradeCompatibility={version.minor_line}")

    def _pinned_version(self) -> CiliumVersion:
        path = self.repo_root / "manifests" / "cilium" / "VERSION"
        try:
            text = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise InputError(f"cannot read the pinned Cilium version from {path}: {exc.strerror or exc}") from None
        version = CiliumVersion.parse(text)
        if version is None:
            raise InputError(f"{path}: {text!r} is not a Cilium release version like 1.19.0")
        return version

    # -----------------------------------------------------------------------------------------
    # Steps 4, 5, 9, 10: the suites, the baselines, the comparison

    def suites_argv(self, phase: str) -> list[str]:
        """``python -m pytest suites/`` against this cluster, reporting into ``DIR/<phase>``."""
        o = self.options
        report = o.report_dir / phase
        argv = [o.python, "-m", "pytest", SUITES_DIR]
        if o.existing:
            argv += ["--cluster=existing", "--kube-context", self.context, "--allow-context", self.context]
        else:
            argv += ["--cluster=kind", "--cluster-name", o.cluster_name, "--keep-cluster"]
        return [*argv, "--flowcheck-report", str(report), "--junitxml", str(report / "junit.xml"), *o.pytest_args]

    def _suites(self, phase: str, *, allow_failure: bool = False) -> CompletedExec:
        o = self.options
        report = o.report_dir / phase
        argv = self.suites_argv(phase)
        log = report / "pytest-output.txt"
        look_at = f"{report / 'report.html'}, {report / 'junit.xml'}, {log}"
        name = f"suites {phase}"
        with self._step(name, f"`{command_line(argv)}` (several minutes)", look_at):
            report.mkdir(parents=True, exist_ok=True)
            result = self._runner.run(argv, timeout_s=o.suites_timeout_s)
            self._write_log(log, argv, result)
            summary = _last_line(result.stdout)
            if summary:
                self._say(f"  pytest: {summary}")
            if result.returncode == 4:  # pytest's exit code for a usage error: the extra arguments
                raise InputError(f"pytest rejected its arguments (exit 4){tail(result, 4)}")
            if result.returncode != 0 and not allow_failure:
                raise ClusterError(f"the suites failed before the upgrade (pytest exit {result.returncode}): a "
                                   "pre-upgrade check needs a green starting point; nothing was upgraded"
                                   f"{tail(result, 6)}")
            if result.returncode != 0 and not (report / MATRIX_FILE).is_file():
                raise ClusterError(f"the suites failed after the upgrade (pytest exit {result.returncode}) and wrote "
                                   f"no {MATRIX_FILE} to compare; the cluster now runs Cilium {o.target}"
                                   f"{tail(result, 6)}")
        return result

    def _read_run(self, phase: str) -> Baseline:
        """The baseline of ``DIR/<phase>/matrix.json``; it must come from a live run on this context."""
        path = self.options.report_dir / phase / MATRIX_FILE
        try:
            report = read_matrix(path)
        except InputError as exc:  # a missing or broken matrix.json is a failed run, not bad input
            raise ClusterError(f"the suites' report cannot be read: {exc}") from None
        mode = report.metadata.get("mode")
        if mode != "live":
            reason = report.metadata.get("offline_reason", "no reason recorded")
            raise ClusterError(f"{path}: the suites did not run live (mode {mode!r}: {reason}); a pre-upgrade check "
                               "compares what the cluster did")
        cluster = report.metadata.get("cluster")
        if cluster is not None and cluster != self.context:
            raise ClusterError(f"{path}: the suites ran against {cluster!r}, not {self.context!r}")
        if not report.flows:
            raise ClusterError(f"{path}: the suites checked no flow, so there is nothing to compare")
        version = self.before_version if phase == "before" else self.options.target
        return record_baseline(report, {"cilium_version": str(version), "context": self.context})

    def _baseline(self, phase: str) -> Baseline:
        target = self.options.report_dir / f"baseline-{phase}.json"
        with self._step(f"baseline {phase}", f"recording {target}", f"{self.options.report_dir / phase}"):
            baseline = self._read_run(phase)
            write_baseline(baseline, target)
        return baseline

    def _compare(self, before: Baseline, after_result: CompletedExec) -> int:
        o = self.options
        target = o.report_dir / "baseline-after.json"
        after_look_at = f"{o.report_dir / 'after' / 'report.html'}, {o.report_dir / 'after' / 'junit.xml'}"
        with self._step("compare", f"recording {target} and comparing it with the baseline before", after_look_at):
            try:
                after = self._read_run("after")
            except ClusterError as exc:
                if after_result.returncode == 0:
                    raise
                raise StepFailed("suites after", f"the suites failed after the upgrade to Cilium {o.target} (pytest "
                                 f"exit {after_result.returncode}) and their report cannot be compared: {exc}",
                                 after_look_at) from exc
            write_baseline(after, target)
            diff = compare_baselines(before, after)
            self._say(render_diff(diff, old_label=f"before (Cilium {self.before_version})",
                                  new_label=f"after (Cilium {o.target})").rstrip("\n"))
        if after_result.returncode != 0:
            raise StepFailed("suites after", f"the suites failed after the upgrade to Cilium {o.target} (pytest exit "
                             f"{after_result.returncode}); the comparison above shows which verdicts changed"
                             f"{tail(after_result, 6)}", after_look_at)
        if diff.has_changes:
            raise StepFailed("compare", f"{len(diff.changes)} flow(s) differ between Cilium {self.before_version} "
                             f"and {o.target} (listed above); the cluster now runs Cilium {o.target}",
                             f"{o.report_dir / 'before' / 'report.html'} and {o.report_dir / 'after' / 'report.html'}")
        self._say(f"pre-upgrade: no verdict changed from Cilium {self.before_version} to {o.target} "
                  f"({diff.compared} flows compared); reports in {o.report_dir}")
        if not o.existing:
            self._say(f"pre-upgrade: the kind cluster {o.cluster_name} now runs Cilium {o.target}; delete it with "
                      f"`python -m flowcheck.cluster down --name {o.cluster_name}`")
        return EXIT_OK

    # -----------------------------------------------------------------------------------------
    # Step 6: the upgrade guide's pre-flight check

    def preflight_install_argv(self) -> list[str]:
        """``helm install cilium-preflight`` as the upgrade guide gives it (+ the API address without kube-proxy)."""
        argv = [self._tool("helm"), "install", PREFLIGHT_RELEASE, HELM_CHART, "--version", str(self.options.target),
                "--namespace", CILIUM_NAMESPACE, "--kube-context", self.context,
                "--set", "preflight.enabled=true", "--set", "agent=false", "--set", "operator.enabled=false"]
        values = self._values
        if values is not None and values.kube_proxy_replacement:
            # As flowcheck.cluster.cilium does for the agents: on kind the API server is the control-plane
            # node's container, named after the cluster; on an existing cluster the values file says.
            host = values.k8s_service_host if self.options.existing else f"{self.options.cluster_name}-control-plane"
            argv += ["--set", f"k8sServiceHost={host}"]
            if values.k8s_service_port:
                argv += ["--set", f"k8sServicePort={values.k8s_service_port}"]
        return argv

    def preflight_uninstall_argv(self) -> list[str]:
        return [self._tool("helm"), "uninstall", PREFLIGHT_RELEASE, "--namespace", CILIUM_NAMESPACE,
                "--kube-context", self.context]

    def _preflight(self) -> None:
        o = self.options
        look_at = (f"`kubectl --context {self.context} -n {CILIUM_NAMESPACE} get daemonset,deployment "
                   f"{PREFLIGHT_NAME}`; the upgrade guide's \"CNP Validation\" section")
        with self._step("preflight", f"helm release {PREFLIGHT_RELEASE} for Cilium {o.target} (pre-pulls the image on "
                                     "every node, validates every CNP/CCNP)", look_at):
            repo_add = [self._tool("helm"), "repo", "add", HELM_REPO_NAME, HELM_REPO_URL, "--force-update"]
            self._checked(repo_add, "adding the Cilium Helm repository", HELM_QUERY_TIMEOUT_S)
            try:
                self._checked(self.preflight_install_argv(), f"installing the preflight check for Cilium {o.target}",
                              HELM_INSTALL_TIMEOUT_S)
                self._wait_for_preflight()
            except FlowcheckError as exc:
                problem = self._uninstall_preflight()
                after = (f"\n(removing the {PREFLIGHT_RELEASE} release failed too: {problem})" if problem
                         else f"\n(the {PREFLIGHT_RELEASE} release was removed; nothing was upgraded)")
                raise ClusterError(f"{exc}{after}") from exc
            except BaseException:
                self._uninstall_preflight()
                raise
            problem = self._uninstall_preflight()
            if problem:
                raise ClusterError(f"the preflight check passed, but removing the {PREFLIGHT_RELEASE} release failed: "
                                   f"{problem}. Remove it (`{command_line(self.preflight_uninstall_argv())}`) before "
                                   "upgrading")

    def _uninstall_preflight(self) -> str | None:
        """``helm uninstall`` the preflight release; never raises (it also runs while handling a failure)."""
        argv = self.preflight_uninstall_argv()
        try:
            result = self._runner.run(argv, timeout_s=HELM_UNINSTALL_TIMEOUT_S)
        except FlowcheckError as exc:
            return str(exc)
        if result.returncode != 0:
            # helm's messages are not parsed (their wording is not confirmed here): the exit code decides.
            return f"`{command_line(argv)}` exit {result.returncode}{tail(result, 4)}"
        return None

    def read_preflight(self) -> PreflightState:
        clients = self._kube()
        agents = _read_or_none(f"reading DaemonSet {CILIUM_NAMESPACE}/{AGENT_DAEMONSET}",
                               clients.apps.read_namespaced_daemon_set, AGENT_DAEMONSET, CILIUM_NAMESPACE)
        ds = _read_or_none(f"reading DaemonSet {CILIUM_NAMESPACE}/{PREFLIGHT_NAME}",
                           clients.apps.read_namespaced_daemon_set, PREFLIGHT_NAME, CILIUM_NAMESPACE)
        dep = _read_or_none(f"reading Deployment {CILIUM_NAMESPACE}/{PREFLIGHT_NAME}",
                            clients.apps.read_namespaced_deployment, PREFLIGHT_NAME, CILIUM_NAMESPACE)
        if agents is None:
            raise ClusterError(f"there is no {AGENT_DAEMONSET} DaemonSet in {CILIUM_NAMESPACE}: is Cilium installed?")
        return PreflightState(
            agents_desired=_count(agents.status, "desired_number_scheduled"),
            daemonset_ready=None if ds is None else _count(ds.status, "number_ready"),
            deployment_ready=None if dep is None else _count(dep.status, "ready_replicas"),
            deployment_replicas=None if dep is None else _count(dep.spec, "replicas"),
        )

    def _wait_for_preflight(self) -> None:
        o = self.options
        outcome = wait_until(self.read_preflight, lambda state: state.done, timeout_s=o.preflight_timeout_s,
                             interval_s=o.poll_interval_s, clock=self._clock, sleep=self._sleep)
        if outcome.done:
            assert outcome.last is not None
            self._say(f"  preflight ready: {outcome.last.describe()}")
            return
        state = outcome.last
        lines = [f"the preflight check was not ready within {o.preflight_timeout_s:g} s: "
                 + (state.describe() if state is not None else "its state could not be read")]
        if outcome.error is not None:
            lines.append(f"last error: {outcome.error}")
        if state is not None and state.deployment_ready is not None and not (
                state.deployment_ready >= max(1, state.deployment_replicas or 1)):
            lines += self._validator_report()
        if state is not None and state.daemonset_ready is not None and state.agents_desired is not None \
                and state.daemonset_ready < state.agents_desired:
            lines.append(f"the {PREFLIGHT_NAME} DaemonSet pulls the Cilium {o.target} image on every node: pods that "
                         "are not ready usually mean the image cannot be pulled there")
        raise ClusterError("\n".join(lines))

    def _validator_report(self) -> list[str]:
        """What the CNP validator says: the lines of its log about invalid policies (or the log's end)."""
        clients = self._kube()
        try:
            dep = kube.call(f"reading Deployment {CILIUM_NAMESPACE}/{PREFLIGHT_NAME}",
                            clients.apps.read_namespaced_deployment, PREFLIGHT_NAME, CILIUM_NAMESPACE)
            labels: Mapping[str, str] = dep.spec.selector.match_labels or {}
            selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
            pods = kube.call(f"listing the pods of Deployment {PREFLIGHT_NAME}", clients.core.list_namespaced_pod,
                             CILIUM_NAMESPACE, label_selector=selector).items
        except ClusterError as exc:
            return [f"the CNP validator's log could not be read: {exc}"]
        if not pods:
            return [f"Deployment {PREFLIGHT_NAME} has no pod, so there is no CNP validator log to read"]
        lines = []
        for pod in sorted(pods, key=lambda p: p.metadata.name):
            name = pod.metadata.name
            text, source = self._validator_log(clients, name)
            if text is None:
                lines.append(f"the CNP validator's log of pod {name} could not be read: {source}")
                continue
            quoted = _validator_lines(text)
            lines.append(f"the CNP validator (container {CNP_VALIDATOR_CONTAINER} of pod {name}, {source}) reports:")
            lines += [f"    {line}" for line in quoted] or ["    (an empty log)"]
        lines.append("fix or remove the invalid CiliumNetworkPolicies/CiliumClusterwideNetworkPolicies it names "
                     "before upgrading (upgrade guide, \"CNP Validation\")")
        return lines

    def _validator_log(self, clients: KubeClients, pod: str) -> tuple[str | None, str]:
        """The current container's log, or -- when it is empty or unreadable -- the previous one's.

        The validator is expected to exit when a policy is invalid, and the kubelet restarts it: what
        it printed is then in the previous instance (``kubectl logs --previous``).
        """
        errors = []
        for previous in (False, True):
            what = "previous container log" if previous else "log"
            try:
                text = kube.call(f"reading the {what} of {pod}", clients.core.read_namespaced_pod_log, pod,
                                 CILIUM_NAMESPACE, container=CNP_VALIDATOR_CONTAINER, previous=previous,
                                 tail_lines=VALIDATOR_LOG_TAIL_LINES)
            except ClusterError as exc:
                errors.append(str(exc))
                continue
            if isinstance(text, str) and text.strip():
                return text, what
        return None, "; ".join(errors) or "the log is empty"

    # -----------------------------------------------------------------------------------------
    # Steps 7-8: the upgrade and the rollout

    def upgrade_argv(self) -> list[str]:
        """``cilium upgrade`` to the target.

        ``--reset-values`` + ``--values``, never ``--reuse-values``: the upgrade guide warns that
        reusing the old release's values across minor versions ignores the new chart's defaults and
        can render wrong templates. cilium-cli's ``--reset-then-reuse-values`` defaults to true, so it
        is switched off explicitly rather than relying on Helm letting ``--reset-values`` win. The
        values file therefore has to be complete (flowcheck's own, or the staging cluster's reviewed
        ``helm get values`` output). ``upgradeCompatibility`` is the minor version that ran before, so
        the new chart keeps that version's defaults where they changed.
        """
        o = self.options
        assert self.before_version is not None and self._values is not None
        argv = [self._tool("cilium"), "upgrade", "--context", self.context, "--version", str(o.target),
                "--reset-values", "--reset-then-reuse-values=false", "--values", str(self._values.path),
                "--set", f"upgradeCompatibility={self.before_version.minor_line}"]
        if not o.existing:
            # as CiliumCli.install_argv: the values file names the default cluster's control-plane node
            argv += ["--set", f"k8sServiceHost={o.cluster_name}-control-plane"]
        return argv

    def _upgrade(self) -> None:
        argv = self.upgrade_argv()
        with self._step("upgrade", f"`{command_line(argv)}`",
                        f"`helm history cilium -n {CILIUM_NAMESPACE} --kube-context {self.context}`; to roll back: "
                        f"`helm rollback cilium -n {CILIUM_NAMESPACE}` (upgrade guide, \"Rolling Back\")"):
            self._checked(argv, f"upgrading Cilium to {self.options.target}", INSTALL_TIMEOUT_S)

    def _rollout(self) -> None:
        o = self.options
        cilium = self._cilium_cli()
        with self._step("rollout", f"waiting until every Cilium agent runs {o.target} and is ready (no L7 check may "
                                   "run while agents roll)",
                        f"`cilium status --context {self.context}`; `kubectl --context {self.context} -n "
                        f"{CILIUM_NAMESPACE} get pods -l {AGENT_SELECTOR} -o wide`"):
            try:
                first = cilium.wait_ready(o.status_wait_s)
            except ClusterError as exc:
                raise ClusterError(f"{exc}{self._agents_not_on_target()}; the cluster is partly or fully upgraded "
                                   f"to {o.target}") from exc
            reports = [first]

            def read() -> CiliumStatusReport:
                return reports.pop() if reports else cilium.status()

            outcome = wait_until(read, lambda report: not rollout_pending(report, o.target),
                                 timeout_s=o.rollout_timeout_s, interval_s=o.poll_interval_s, clock=self._clock,
                                 sleep=self._sleep)
            if not outcome.done:
                pending = rollout_pending(outcome.last, o.target) if outcome.last is not None else []
                if outcome.error is not None:
                    pending.append(f"last error: {outcome.error}")
                detail = "".join(f"\n    {line}" for line in pending)
                raise ClusterError(f"the Cilium agents did not all roll to {o.target} within "
                                   f"{o.rollout_timeout_s:g} s after `cilium status --wait` returned; still "
                                   f"rolling:{detail}"
                                   f"{self._agents_not_on_target()}")
            assert outcome.last is not None
            self._say(f"  {outcome.last.summary()}")

    def _agents_not_on_target(self) -> str:
        """The agent pods (from the Kubernetes API) whose agent container is not the target's image."""
        try:
            pods = kube.call("listing the cilium agent pods", self._kube().core.list_namespaced_pod,
                             CILIUM_NAMESPACE, label_selector=AGENT_SELECTOR).items
        except ClusterError as exc:
            return f"\n  (the agent pods could not be listed: {exc})"
        lines = []
        for pod in sorted(pods, key=lambda p: p.metadata.name):
            containers = pod.spec.containers if pod.spec is not None else []
            image = next((c.image for c in containers if c.name == AGENT_CONTAINER), None) or "(no agent container)"
            if not _runs(image, self.options.target):
                node = pod.spec.node_name if pod.spec is not None and pod.spec.node_name else "?"
                lines.append(f"\n    {pod.metadata.name} on node {node}: {image}")
        if not lines:
            return ""
        return f"\n  agent pods not on {self.options.target}:" + "".join(lines)

    # -----------------------------------------------------------------------------------------
    # Helpers

    def _cilium_cli(self) -> CiliumCli:
        if self._cilium is None:
            self._cilium = CiliumCli(self._runner, self._tool("cilium"), context=self.context)
        return self._cilium

    def _kube(self) -> KubeClients:
        if self._clients is None:
            factory = self._api_factory or kube.client_factory(self.context)
            self._clients = factory()
        return self._clients

    def _checked(self, argv: Sequence[str], what: str, timeout_s: float) -> CompletedExec:
        result = self._runner.run(argv, timeout_s=timeout_s)
        if result.returncode != 0:
            raise ClusterError(f"{what} failed (exit {result.returncode}: `{command_line(argv)}`){tail(result)}")
        return result

    @staticmethod
    def _write_log(path: Path, argv: Sequence[str], result: CompletedExec) -> None:
        """Keep a captured command's output next to the reports (the runner captures, so nothing is shown live)."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"$ {command_line(argv)}\n# exit {result.returncode}\n\n## stdout\n{result.stdout}\n"
                            f"## stderr\n{result.stderr}", encoding="utf-8")
        except OSError:
            pass  # the log is a convenience; failing to write it must not hide the command's own outcome


def _read_or_none(what: str, fn: Callable[..., Any], *args: Any) -> Any:
    """An API read that returns None for 404 (not created yet) and raises ``ClusterError`` otherwise."""
    try:
        return fn(*args)
    except Exception as exc:
        if kube.is_api_error(exc, 404):
            return None
        if kube.is_api_error(exc):
            raise ClusterError(f"{what}: {kube.api_message(exc)}") from exc
        raise


def _count(obj: Any, name: str) -> int:
    """A count from an API status/spec; absent (``omitempty`` zero) counts as 0."""
    value = getattr(obj, name, None) if obj is not None else None
    return value if isinstance(value, int) else 0


def _validator_lines(text: str) -> list[str]:
    """The validator log lines about invalid policies or errors; the log's last lines when none are."""
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    relevant = [line for line in lines if "invalid" in line.lower() or "level=error" in line.lower()]
    chosen = relevant or lines
    return chosen[-QUOTED_LOG_LINES:]


def _last_line(text: str) -> str:
    for line in reversed(text.splitlines()):
        if line.strip():
            return line.strip().strip("=").strip()
    return ""


# ---------------------------------------------------------------------------------------------
# Command line


class _ExtraArgsAfterDoubleDash(argparse.ArgumentParser):
    """A parser that hands everything after the first ``--`` to pytest (``args.pytest_args``).

    argparse (3.11) matches an ``nargs="*"`` positional as soon as the first positional is seen, so
    ``pre-upgrade 1.20.0 --context C -- -k dns`` would reject ``-k dns``. Splitting at ``--`` before
    parsing keeps the documented form working wherever the options stand.
    """

    def parse_known_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                         namespace: argparse.Namespace | None = None) -> tuple[argparse.Namespace, list[str]]:
        words = list(sys.argv[1:] if args is None else args)
        extra: list[str] = []
        if "--" in words:
            cut = words.index("--")
            words, extra = words[:cut], words[cut + 1:]
        parsed, rest = super().parse_known_args(words, namespace)
        parsed.pytest_args = [*(getattr(parsed, "pytest_args", None) or []), *extra]
        return parsed, rest


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", metavar="TARGET_VERSION", help="the Cilium version to upgrade to, e.g. 1.20.0")
    parser.add_argument("--cluster-name", default=DEFAULT_CLUSTER_NAME,
                        help=f"flowcheck's kind cluster (default {DEFAULT_CLUSTER_NAME}; created with the pinned "
                             "Cilium when absent)")
    parser.add_argument("--context", metavar="NAME", default=None,
                        help="an existing cluster's kube context instead of the kind cluster (needs --allow-context)")
    parser.add_argument("--allow-context", metavar="NAME", default=None,
                        help="the explicit opt-in to run against --context NAME (the same name)")
    parser.add_argument("--values", metavar="FILE", type=Path, default=None,
                        help="Helm values for the upgrade (default manifests/cilium/values.yaml on kind; required "
                             "for an existing cluster)")
    parser.add_argument("--report-dir", metavar="DIR", type=Path, default=None,
                        help="where the runs' reports and baselines go (default flowcheck-report/pre-upgrade-<time>)")
    parser.set_defaults(pytest_args=[])  # filled from what follows `--` (_ExtraArgsAfterDoubleDash)


USAGE = ("%(prog)s TARGET_VERSION [--cluster-name N] [--context C --allow-context C] [--values FILE] "
         "[--report-dir DIR] [-- PYTEST_ARG ...]")
DESCRIPTION = ("Run the suites on the current Cilium, run the upgrade guide's preflight check for TARGET_VERSION, "
               "upgrade, wait until every agent has rolled, run the suites again and compare. Arguments after -- go "
               "to both pytest runs. Exit 0 when nothing changed, 1 on a change or a failed step, 2 on bad input or "
               "a refused context. Runs on flowcheck's kind cluster unless --context NAME --allow-context NAME names "
               "an existing one.")


def add_preupgrade_command(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``pre-upgrade`` to ``subparsers`` (what ``ArgumentParser.add_subparsers()`` returned)."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "pre-upgrade",
        help="check that no flow's verdict changes when Cilium is upgraded to TARGET_VERSION",
        usage=USAGE,
        description=DESCRIPTION,
    )
    # The subparser's class is chosen by whoever created `subparsers`; only its `--` handling is changed.
    parser.__class__ = _ExtraArgsAfterDoubleDash
    _add_arguments(parser)
    parser.set_defaults(func=_cmd_pre_upgrade)
    return parser


def options_from_args(args: argparse.Namespace, *, python: str = sys.executable,
                      now: datetime | None = None) -> PreUpgradeOptions:
    """The parsed command line as options; a malformed TARGET_VERSION is an ``InputError``."""
    target = CiliumVersion.parse(args.target)
    if target is None:
        raise InputError(f"TARGET_VERSION {args.target!r} is not a Cilium release version like 1.20.0 "
                         "(MAJOR.MINOR.PATCH, optionally v-prefixed or with a -pre.N suffix)")
    return PreUpgradeOptions(target=target, cluster_name=args.cluster_name, context=args.context,
                             allow_context=args.allow_context, values=args.values,
                             report_dir=args.report_dir or default_report_dir(now),
                             pytest_args=tuple(args.pytest_args), python=python)


def _cmd_pre_upgrade(args: argparse.Namespace) -> int:
    try:
        options = options_from_args(args)
    except InputError as exc:
        print(f"flowcheck: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return PreUpgradeCheck(options).run()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m flowcheck.harness.preupgrade TARGET_VERSION [...]`` (what scripts/pre-upgrade-check runs)."""
    parser = _ExtraArgsAfterDoubleDash(prog="pre-upgrade-check", usage=USAGE,
                                       description=DESCRIPTION)
    _add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return _cmd_pre_upgrade(args)
    except KeyboardInterrupt:
        print("flowcheck: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
