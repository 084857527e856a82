"""The check itself: ``PreUpgradeCheck`` runs the named steps in order; a failure stops it.

The steps and what each one does are described in the package docstring. Each step is a ``with
self._step(...)`` block: it prints one progress line, and any ``FlowcheckError`` inside it becomes a
``StepFailed`` naming the step and what to look at (``StepRejected`` when it was bad input: a
refused context, a wrong option or values file), which stops the sequence. ``run()`` returns the
comparison when nothing changed and raises otherwise; the command line prints and maps to an exit
code (``flowcheck.cli.preupgrade``). Processes, the
Kubernetes API, tool lookup and time are all injected, so tests run the whole sequence on fakes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from flowcheck.cluster import kube
from flowcheck.cluster.cilium import (
    CILIUM_CONFIG_MAP,
    CLUSTER_NAME_KEY,
    INSTALL_TIMEOUT_S,
    CiliumCli,
    CiliumStatusReport,
    kind_service_host,
    running_cluster_name,
)
from flowcheck.cluster.guard import check_context
from flowcheck.cluster.kind import Kind, context_for
from flowcheck.cluster.kube import ApiFactory, KubeClients
from flowcheck.cluster.polling import wait_until
from flowcheck.cluster.process import ProcessRunner, SubprocessRunner, command_line, run_checked, tail
from flowcheck.cluster.realization import AGENT_CONTAINER, AGENT_SELECTOR, CILIUM_NAMESPACE
from flowcheck.cluster.tools import default_bin_dirs, find_tool
from flowcheck.cluster.versions import read_pinned_version
from flowcheck.errors import ClusterError, ContextRefused, FlowcheckError, InputError
from flowcheck.harness.preupgrade.options import PreUpgradeOptions
from flowcheck.harness.preupgrade.preflight import (
    HELM_CHART,
    HELM_INSTALL_TIMEOUT_S,
    HELM_QUERY_TIMEOUT_S,
    HELM_REPO_NAME,
    HELM_REPO_URL,
    HELM_UNINSTALL_TIMEOUT_S,
    PREFLIGHT_NAME,
    PREFLIGHT_RELEASE,
    PreflightState,
    read_preflight_state,
    validator_report,
)
from flowcheck.harness.preupgrade.values import HelmValues, read_values
from flowcheck.harness.preupgrade.versions import CiliumVersion, rollout_pending, running_version, runs_version
from flowcheck.probe.executor import CompletedExec
from flowcheck.report.baseline import (
    Baseline,
    BaselineDiff,
    compare_baselines,
    record_baseline,
    render_diff,
    write_baseline,
)
from flowcheck.report.files import MATRIX_FILE, read_matrix

SUITES_DIR = "suites/"

STEPS: tuple[str, ...] = ("context guard", "bring-up", "Cilium before", "suites before", "baseline before",
                          "preflight", "upgrade", "rollout", "suites after", "compare")

# pytest options the check sets itself; passing them through would point a run elsewhere.
MANAGED_PYTEST_OPTIONS = ("--flowcheck-cluster", "--flowcheck-cluster-name", "--flowcheck-kube-context",
                          "--flowcheck-allow-context", "--flowcheck-keep-cluster", "--flowcheck-report", "--junitxml",
                          "--junit-xml", "--flowcheck-baseline", "--flowcheck-cilium-version")

Progress = Callable[[str], None]
ToolLookup = Callable[[str], str]


class StepFailed(FlowcheckError):
    """A step of the check failed: which one, why, and what to look at."""

    def __init__(self, step: str, message: str, look_at: str = "") -> None:
        self.step = step
        self.message = message
        self.look_at = look_at
        super().__init__(self.render())

    def render(self) -> str:
        text = (f"pre-upgrade: step '{self.step}' failed: {self.message}" if self.step
                else f"pre-upgrade: error: {self.message}")
        return text + (f"\n  look at: {self.look_at}" if self.look_at else "")


class StepRejected(StepFailed, InputError):
    """A step refused its input -- a kube context that was not opted in, an option, a values file --
    before it changed anything: the user's to fix (the command line exits 2)."""


def _print(line: str) -> None:
    print(line, flush=True)


class PreUpgradeCheck:
    """Runs the steps in order (see the package docstring); ``run()`` returns the exit code.

    ``repo_root`` (default: the current directory) must be the directory the runner runs commands
    in: ``pytest suites/`` and ``python -m flowcheck cluster up`` are relative to it, as in
    ``scripts/pre-upgrade-check``. Commands' output is captured, not streamed: each long-running
    command's output is kept next to the reports (``DIR/<phase>/pytest-output.txt``,
    ``DIR/bring-up.log``) and the end of it is quoted when the command fails. Interrupted (Ctrl-C, or
    a timeout), those two commands get ``options.timeouts.suites_interrupt_grace_s`` /
    ``bring_up_interrupt_grace_s`` to undo what they did before they are killed (``process`` module).
    """

    def __init__(self, options: PreUpgradeOptions, *, runner: ProcessRunner | None = None,
                 api_factory: ApiFactory | None = None, tool: ToolLookup | None = None,
                 repo_root: Path | None = None, progress: Progress = _print,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self.options = options
        self.repo_root = repo_root or Path.cwd()
        self._runner = runner or SubprocessRunner()
        self._api_factory = api_factory
        bin_dirs = default_bin_dirs(self.repo_root)
        self._tool = tool or (lambda name: find_tool(name, bin_dirs=bin_dirs))
        self._say = progress
        self._clock = clock
        self._sleep = sleep
        self._step_index = 0
        self.context = ""
        self.before_version: CiliumVersion | None = None
        self.cilium_cluster_name = ""  # the cluster.name the running Cilium uses, read before the upgrade
        self._values: HelmValues | None = None
        self._clients: KubeClients | None = None
        self._cilium: CiliumCli | None = None

    # -----------------------------------------------------------------------------------------
    # Driver

    def run(self) -> BaselineDiff:
        """Every step in order; the comparison of before and after when no verdict changed.

        Raises ``StepFailed`` (``StepRejected`` for bad input) naming the step that failed, also
        for a change: the comparison has then been printed.
        """
        self._validate()
        return self._run_steps()

    def _validate(self) -> None:
        """Everything that can be checked without running anything; the context guard's static part first."""
        o = self.options
        where = o.cluster
        try:
            if where.allow_context is not None and where.context is None:
                raise ContextRefused(where.allow_context, "--allow-context was given without --context: name the "
                                                          f"context twice, --context {where.allow_context} "
                                                          f"--allow-context {where.allow_context}")
            # A context other than the kind cluster's, or an opt-in naming another context: refused here,
            # before anything runs, unless --allow-context names exactly --context.
            if o.existing or (where.allow_context is not None and where.allow_context != where.context):
                check_context(where.context, cluster_name=where.name, kind_clusters=None,
                              allow_context=where.allow_context)
        except ContextRefused as exc:
            raise StepRejected("context guard", str(exc), "the kube context: an existing cluster needs both "
                               "--context NAME and --allow-context NAME") from None
        try:
            self._validate_inputs()
        except InputError as exc:
            raise StepRejected("", str(exc), "the command line (flowcheck pre-upgrade --help)") from None

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

    def _run_steps(self) -> BaselineDiff:
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
            raise StepRejected(name, str(exc), look_at) from exc
        except FlowcheckError as exc:
            raise StepFailed(name, str(exc), look_at) from exc
        except OSError as exc:  # writing a report, a baseline or a log next to them
            raise StepFailed(name, f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": "), look_at) from exc

    # -----------------------------------------------------------------------------------------
    # Steps 1-2: the context guard and, on kind, bringing the cluster up

    def _guard(self) -> None:
        o = self.options
        if o.existing:
            with self._step("context guard", f"existing cluster, context {o.cluster.context} (allowed explicitly with "
                                             f"--allow-context {o.cluster.allow_context})"):
                assert o.cluster.context is not None
                self.context = check_context(o.cluster.context, cluster_name=o.cluster.name, kind_clusters=None,
                                             allow_context=o.cluster.allow_context)
            with self._step("bring-up", "not applicable: an existing cluster is used as it is"):
                pass
            return
        name = o.cluster.name
        look_at = f"`kind get clusters`; flowcheck manages the kind cluster {name} (context {context_for(name)})"
        with self._step("context guard", f"kind cluster {name}, context {context_for(name)}", look_at):
            kind = Kind(self._runner, self._tool("kind"))
            clusters = kind.clusters()
            if name in clusters:
                self.context = check_context(context_for(name), cluster_name=name, kind_clusters=clusters,
                                             allow_context=o.cluster.allow_context)
        if name in clusters:
            with self._step("bring-up", f"kind cluster {name} exists; using it as it is"):
                return
        argv = [o.python, "-m", "flowcheck", "cluster", "up", "--name", name]
        log = o.report_dir / "bring-up.log"
        with self._step("bring-up", f"no kind cluster {name}: creating it with the pinned Cilium "
                                    f"(`{command_line(argv)}`, several minutes)",
                        f"{log}; `flowcheck cluster up --name {name}` on its own"):
            result = self._runner.run(argv, timeout_s=o.timeouts.bring_up_s,
                                      interrupt_grace_s=o.timeouts.bring_up_interrupt_grace_s)
            self._write_log(log, argv, result)
            if result.returncode != 0:
                raise ClusterError(f"`{command_line(argv)}` failed (exit {result.returncode}){tail(result)}")
            clusters = kind.clusters()
            try:
                self.context = check_context(context_for(name), cluster_name=name, kind_clusters=clusters,
                                             allow_context=o.cluster.allow_context)
            except ContextRefused as exc:  # the bring-up said it worked, yet kind does not list the cluster
                raise ClusterError(str(exc)) from None

    # -----------------------------------------------------------------------------------------
    # Step 3: the Cilium that runs now

    def _cilium_before(self) -> None:
        o = self.options
        with self._step("Cilium before", f"which Cilium runs on {self.context} (`cilium status --wait`, then -o json)",
                        f"`cilium status --context {self.context}`"):
            report = self._cilium_cli().wait_ready(o.timeouts.status_wait_s)
            version = running_version(report)
            if not o.existing:
                pinned = read_pinned_version(self.repo_root)
                if version != pinned:
                    raise ClusterError(
                        f"the kind cluster {o.cluster.name} runs Cilium {version}, not the pinned {pinned} "
                        f"(manifests/cilium/VERSION): the check starts from the pinned version. Delete the cluster "
                        f"(`flowcheck cluster down --name {o.cluster.name}`) and run the check again")
            target = o.target
            if target.release < version.release or target == version:
                raise InputError(f"the target {target} is not newer than the Cilium that runs ({version}): nothing "
                                 "to upgrade")
            if target.major != version.major or target.minor > version.minor + 1:
                raise InputError(f"{version} -> {target} skips a minor version: the upgrade guide tests upgrades "
                                 f"between consecutive minor versions only; upgrade to the latest "
                                 f"{version.major}.{version.minor + 1} release first")
            self.before_version = version
            self.cilium_cluster_name = self._running_cluster_name()
            self._say(f"  Cilium {version} runs ({report.summary()}); upgrading to {target}, "
                      f"upgradeCompatibility={version.minor_line}, cluster.name={self.cilium_cluster_name}")

    def _running_cluster_name(self) -> str:
        """The ``cluster.name`` the upgrade must keep: the one the running agents use.

        ``cilium upgrade --reset-values`` does not carry it over (only ``cilium install`` detects it),
        and a new name re-creates every identity mid-check -- on a staging cluster, a production-like
        outage. So it is read from the running configuration and set explicitly, and a values file
        that names the cluster otherwise is refused rather than obeyed.
        """
        config = f"{CILIUM_NAMESPACE}/{CILIUM_CONFIG_MAP}"
        name = running_cluster_name(self._kube())
        if name is None:
            raise ClusterError(f"{config} does not exist, so the cluster name the running Cilium uses cannot be "
                               "read, and an upgrade with --reset-values would reset it")
        assert self._values is not None
        wanted = self._values.cluster_name
        if wanted is not None and wanted != name:
            raise InputError(f"{self._values.path} sets cluster.name: {wanted}, but the cluster runs as {name!r} "
                             f"({config} key {CLUSTER_NAME_KEY}); renaming it would re-create every identity. Remove "
                             f"cluster.name from the values file or set it to {name!r}")
        return name

    # -----------------------------------------------------------------------------------------
    # Steps 4, 5, 9, 10: the suites, the baselines, the comparison

    def suites_argv(self, phase: str) -> list[str]:
        """``python -m pytest suites/`` against this cluster, reporting into ``DIR/<phase>``."""
        o = self.options
        report = o.report_dir / phase
        argv = [o.python, "-m", "pytest", SUITES_DIR]
        if o.existing:
            argv += ["--flowcheck-cluster=existing", "--flowcheck-kube-context", self.context,
                     "--flowcheck-allow-context", self.context]
        else:
            argv += ["--flowcheck-cluster=kind", "--flowcheck-cluster-name", o.cluster.name, "--flowcheck-keep-cluster"]
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
            result = self._runner.run(argv, timeout_s=o.timeouts.suites_s,
                                      interrupt_grace_s=o.timeouts.suites_interrupt_grace_s)
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

    def _compare(self, before: Baseline, after_result: CompletedExec) -> BaselineDiff:
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
            self._say(f"pre-upgrade: the kind cluster {o.cluster.name} now runs Cilium {o.target}; delete it with "
                      f"`flowcheck cluster down --name {o.cluster.name}`")
        return diff

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
            argv += ["--set", f"k8sServiceHost={values.k8s_service_host}" if self.options.existing
                     else kind_service_host(self.options.cluster.name)]
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
            run_checked(self._runner, repo_add, what="adding the Cilium Helm repository",
                        timeout_s=HELM_QUERY_TIMEOUT_S)
            try:
                run_checked(self._runner, self.preflight_install_argv(),
                            what=f"installing the preflight check for Cilium {o.target}",
                            timeout_s=HELM_INSTALL_TIMEOUT_S)
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
        """The preflight objects' readiness now (see ``preflight.read_preflight_state``)."""
        return read_preflight_state(self._kube())

    def _wait_for_preflight(self) -> None:
        o = self.options
        outcome = wait_until(self.read_preflight, lambda state: state.done, timeout_s=o.timeouts.preflight_s,
                             interval_s=o.timeouts.poll_interval_s, clock=self._clock, sleep=self._sleep)
        if outcome.done:
            assert outcome.last is not None
            self._say(f"  preflight ready: {outcome.last.describe()}")
            return
        state = outcome.last
        lines = [f"the preflight check was not ready within {o.timeouts.preflight_s:g} s: "
                 + (state.describe() if state is not None else "its state could not be read")]
        if outcome.error is not None:
            lines.append(f"last error: {outcome.error}")
        if state is not None and state.deployment_behind:
            lines += validator_report(self._kube())
        if state is not None and state.daemonset_behind:
            lines.append(f"the {PREFLIGHT_NAME} DaemonSet pulls the Cilium {o.target} image on every node: pods that "
                         "are not ready usually mean the image cannot be pulled there")
        raise ClusterError("\n".join(lines))

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
        assert self.before_version is not None and self._values is not None and self.cilium_cluster_name
        argv = [self._tool("cilium"), "upgrade", "--context", self.context, "--version", str(o.target),
                "--reset-values", "--reset-then-reuse-values=false", "--values", str(self._values.path),
                "--set", f"upgradeCompatibility={self.before_version.minor_line}"]
        if not o.existing:
            # as CiliumCli.install_argv: the values file names the default cluster's control-plane node
            argv += ["--set", kind_service_host(o.cluster.name)]
        # the name the cluster runs with (see _running_cluster_name), never the chart's `default`
        return [*argv, "--set", f"cluster.name={self.cilium_cluster_name}"]

    def _upgrade(self) -> None:
        argv = self.upgrade_argv()
        with self._step("upgrade", f"`{command_line(argv)}`",
                        f"`helm history cilium -n {CILIUM_NAMESPACE} --kube-context {self.context}`; to roll back: "
                        f"`helm rollback cilium -n {CILIUM_NAMESPACE}` (upgrade guide, \"Rolling Back\")"):
            run_checked(self._runner, argv, what=f"upgrading Cilium to {self.options.target}",
                        timeout_s=INSTALL_TIMEOUT_S)

    def _rollout(self) -> None:
        o = self.options
        cilium = self._cilium_cli()
        with self._step("rollout", f"waiting until every Cilium agent runs {o.target} and is ready (no L7 check may "
                                   "run while agents roll)",
                        f"`cilium status --context {self.context}`; `kubectl --context {self.context} -n "
                        f"{CILIUM_NAMESPACE} get pods -l {AGENT_SELECTOR} -o wide`"):
            try:
                first = cilium.wait_ready(o.timeouts.status_wait_s)
            except ClusterError as exc:
                raise ClusterError(f"{exc}{self._agents_not_on_target()}; the cluster is partly or fully upgraded "
                                   f"to {o.target}") from exc
            reports = [first]

            def read() -> CiliumStatusReport:
                return reports.pop() if reports else cilium.status()

            outcome = wait_until(read, lambda report: not rollout_pending(report, o.target),
                                 timeout_s=o.timeouts.rollout_s, interval_s=o.timeouts.poll_interval_s,
                                 clock=self._clock, sleep=self._sleep)
            if not outcome.done:
                pending = rollout_pending(outcome.last, o.target) if outcome.last is not None else []
                if outcome.error is not None:
                    pending.append(f"last error: {outcome.error}")
                detail = "".join(f"\n    {line}" for line in pending)
                raise ClusterError(f"the Cilium agents did not all roll to {o.target} within "
                                   f"{o.timeouts.rollout_s:g} s after `cilium status --wait` returned; still "
                                   f"rolling:{detail}"
                                   f"{self._agents_not_on_target()}")
            assert outcome.last is not None
            self._say(f"  {outcome.last.summary()}")

    def _agents_not_on_target(self) -> str:
        """The agent pods (from the Kubernetes API) whose agent container is not the target's image."""
        try:
            clients = self._kube()
            pods = kube.call(clients, "listing the cilium agent pods", clients.core.list_namespaced_pod,
                             CILIUM_NAMESPACE, label_selector=AGENT_SELECTOR).items
        except ClusterError as exc:
            return f"\n  (the agent pods could not be listed: {exc})"
        lines = []
        for pod in sorted(pods, key=lambda p: p.metadata.name):
            containers = pod.spec.containers if pod.spec is not None else []
            image = next((c.image for c in containers if c.name == AGENT_CONTAINER), None) or "(no agent container)"
            if not runs_version(image, self.options.target):
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

    @staticmethod
    def _write_log(path: Path, argv: Sequence[str], result: CompletedExec) -> None:
        """Keep a captured command's output next to the reports (the runner captures, so nothing is shown live)."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"$ {command_line(argv)}\n# exit {result.returncode}\n\n## stdout\n{result.stdout}\n"
                            f"## stderr\n{result.stderr}", encoding="utf-8")
        except OSError:
            pass  # the log is a convenience; failing to write it must not hide the command's own outcome


def _last_line(text: str) -> str:
    for line in reversed(text.splitlines()):
        if line.strip():
            return line.strip().strip("=").strip()
    return ""
