"""The flowcheck pytest plugin (entry point ``pytest11``): options, markers, fixtures, reports.

It follows pytest's own plugins: one option group whose persistent options are mirrored as ini
keys (so a repository can keep them in ``pyproject.toml``), markers registered in
``pytest_configure`` (the project runs with ``--strict-markers``), state in ``config.stash``, xdist
awareness via ``hasattr(config, "workerinput")``.

What a suite gets: the ``paths`` fixture (declare intended paths; each is checked against the
model, and probed live when a cluster is attached), ``flowcheck_model``, ``flowcheck_plan`` (the
model's whole matrix, planned once per session), ``flowcheck_live`` and ``flowcheck_settings``.
Tests marked ``live`` need a cluster and are skipped with the reason when there is none; the
reason is printed once at the end, while the model checks still run and can fail. The live back
end is set up once per run -- by the first process that needs it, shared with every pytest-xdist
worker through a state file -- and torn down once, by the controlling process.
At the end the controlling process prints the truth table, writes ``--flowcheck-report DIR``
(``matrix.json``, ``report.html``, ``report.md``, and the Markdown to ``$GITHUB_STEP_SUMMARY``) and
compares the run with ``--baseline FILE``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Generator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from flowcheck.cluster.kind import DEFAULT_CLUSTER_NAME
from flowcheck.cluster.workloads import DEFAULT_PROBE_IMAGE
from flowcheck.errors import FlowcheckError
from flowcheck.harness import hookspecs
from flowcheck.harness.backends import BackendProvider, LiveBackend
from flowcheck.harness.checker import PathChecker
from flowcheck.harness.run import FlowcheckRun, RunSettings
from flowcheck.harness.run_state import RunOnce
from flowcheck.model.engine import SEMANTICS, Model
from flowcheck.model.matrix import PlannedFlow, decide_matrix
from flowcheck.probe.plan import DEFAULT_PROBE_TIMEOUT_S
from flowcheck.report.baseline import compare_baselines, read_baseline, record_baseline, render_diff
from flowcheck.report.files import write_report_dir
from flowcheck.report.markdown import append_step_summary
from flowcheck.report.records import CheckedFlow, MatrixReport
from flowcheck.report.terminal import render_table

CLUSTER_MODES = ("auto", "kind", "existing", "none")

DEFAULT_POLICIES = "manifests/network-policies"
DEFAULT_TOPOLOGY = "fixtures/topology.yaml"
DOCKER_INFO_TIMEOUT_S = 20.0

MARKERS = {
    "live": "needs a reachable kind + Cilium cluster (skipped offline, with the reason)",
    "l7": "exercises Cilium's L7 (Envoy/DNS) proxy",
    "dns": "exercises DNS resolution or DNS L7 policy",
    "slow": "takes more than a few seconds",
}


@dataclass(slots=True)
class FlowcheckSettings:
    """The resolved options of one pytest run."""

    cluster: str
    policies: list[Path]
    topology: Path
    cluster_name: str
    keep_cluster: bool
    kube_context: str | None
    allow_context: str | None
    cilium_version: str | None
    probe_timeout_s: float
    probe_image: str
    semantics: str
    report_dir: Path | None
    baseline: Path | None
    repo_root: Path
    cilium_tests: tuple[str, ...] = ()


@dataclass(slots=True)
class PluginState:
    """Plugin state kept in ``config.stash``; the run is created on first use."""

    config: pytest.Config
    settings: FlowcheckSettings
    _run: FlowcheckRun | None = None
    skipped_live: list[str] = field(default_factory=list)
    worker_flows: list[CheckedFlow] = field(default_factory=list)
    workers_used_live: bool = False
    live_description: str | None = None
    teardown_error: str | None = None
    report: MatrixReport | None = None
    baseline_text: str | None = None

    @property
    def is_worker(self) -> bool:
        return hasattr(self.config, "workerinput")

    def run(self) -> FlowcheckRun:
        if self._run is None:
            provider, offline_reason = _choose_backend(self.config, self.settings)
            s = self.settings
            self._run = FlowcheckRun(
                settings=RunSettings(tuple(s.policies), s.topology, s.semantics, s.probe_timeout_s, s.repo_root),
                shared_dir=lambda: _shared_dir(self.config), provider=provider,
                offline_reason=offline_reason, progress=lambda text: _progress(self.config, text))
        return self._run

    @property
    def started(self) -> bool:
        return self._run is not None


settings_key = pytest.StashKey[FlowcheckSettings]()
state_key = pytest.StashKey[PluginState]()


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("flowcheck", "flowcheck: network policy checks")
    group.addoption("--cluster", choices=CLUSTER_MODES, default=None,
                    help="where live checks run: auto (kind when Docker and the tools exist, else "
                         "offline), kind, existing (the --kube-context cluster), none (offline)")
    group.addoption("--kube-context", default=None, help="kube context for --cluster=existing")
    group.addoption("--allow-context", metavar="NAME", default=None,
                    help="opt in to running against a context that is not a kind cluster flowcheck created")
    group.addoption("--cluster-name", default=None, help=f"kind cluster name (default {DEFAULT_CLUSTER_NAME})")
    group.addoption("--keep-cluster", action="store_true", default=False,
                    help="do not delete the kind cluster at the end")
    group.addoption("--cilium-version", default=None, help="Cilium version (default manifests/cilium/VERSION)")
    group.addoption("--policies", action="append", default=None, metavar="PATH",
                    help=f"policy file or directory, repeatable (default {DEFAULT_POLICIES})")
    group.addoption("--topology", default=None, metavar="FILE", help=f"topology file (default {DEFAULT_TOPOLOGY})")
    group.addoption("--probe-timeout", type=float, default=None, metavar="SECONDS",
                    help=f"per-probe timeout (default {DEFAULT_PROBE_TIMEOUT_S})")
    group.addoption("--probe-image", default=None, help=f"probe pod image (default {DEFAULT_PROBE_IMAGE})")
    group.addoption("--semantics", choices=SEMANTICS, default=None,
                    help="model semantics: cilium (default) or the kubernetes NetworkPolicy spec")
    group.addoption("--flowcheck-report", default=None, metavar="DIR",
                    help="write matrix.json, report.html and report.md of every checked path to DIR")
    group.addoption("--cilium-test", action="append", default=None, metavar="REGEX",
                    help="filter for `cilium connectivity test --test` (repeatable; `!` excludes); the "
                         "internet-dependent scenarios are always excluded")
    group.addoption("--baseline", default=None, metavar="FILE",
                    help="fail the run when a path's verdict differs from this baseline (flowcheck baseline record)")

    parser.addini("flowcheck_cluster", "default for --cluster", default="auto")
    parser.addini("flowcheck_policies", "default for --policies", type="paths", default=[])
    parser.addini("flowcheck_topology", "default for --topology", default=DEFAULT_TOPOLOGY)
    parser.addini("flowcheck_cluster_name", "default for --cluster-name", default=DEFAULT_CLUSTER_NAME)
    parser.addini("flowcheck_cilium_version", "default for --cilium-version", default="")
    parser.addini("flowcheck_probe_timeout", "default for --probe-timeout", default=str(DEFAULT_PROBE_TIMEOUT_S))
    parser.addini("flowcheck_probe_image", "default for --probe-image", default=DEFAULT_PROBE_IMAGE)
    parser.addini("flowcheck_semantics", "default for --semantics", default="cilium")


def pytest_configure(config: pytest.Config) -> None:
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    settings = _resolve_settings(config)
    config.stash[settings_key] = settings
    config.stash[state_key] = PluginState(config, settings)


def _resolve_settings(config: pytest.Config) -> FlowcheckSettings:
    root = config.rootpath

    def path(value: str | Path) -> Path:
        p = Path(value)
        return p if p.is_absolute() else root / p

    def option_or_ini(option: str, ini: str) -> str:
        value = config.getoption(option)
        return str(value) if value is not None else str(config.getini(ini))

    policies_opt: list[str] | None = config.getoption("policies")
    ini_policies: list[Path] = config.getini("flowcheck_policies")
    if policies_opt:
        policies = [Path(p).absolute() for p in policies_opt]
    else:
        policies = list(ini_policies) or [path(DEFAULT_POLICIES)]
    topology_opt = config.getoption("topology")
    report_opt = config.getoption("flowcheck_report")
    baseline_opt = config.getoption("baseline")
    cluster = option_or_ini("cluster", "flowcheck_cluster")
    if cluster not in CLUSTER_MODES:
        raise pytest.UsageError(f"flowcheck_cluster = {cluster!r}: expected one of {', '.join(CLUSTER_MODES)}")
    if config.getoption("kube_context") and cluster != "existing":
        raise pytest.UsageError("--kube-context only applies with --cluster=existing (with --cluster=kind the "
                                "context is kind-<--cluster-name>)")
    if cluster == "existing" and not config.getoption("kube_context"):
        raise pytest.UsageError("--cluster=existing needs --kube-context NAME (and --allow-context NAME unless it "
                                "is a kind cluster flowcheck manages): flowcheck never uses the current context "
                                "implicitly")
    semantics = option_or_ini("semantics", "flowcheck_semantics")
    if semantics not in SEMANTICS:
        raise pytest.UsageError(f"flowcheck_semantics = {semantics!r}: expected one of {', '.join(SEMANTICS)}")
    try:
        timeout = float(option_or_ini("probe_timeout", "flowcheck_probe_timeout"))
    except ValueError:
        raise pytest.UsageError("flowcheck_probe_timeout: expected a number of seconds") from None
    if not 0 < timeout <= 300:
        raise pytest.UsageError(f"--probe-timeout {timeout}: expected more than 0 and at most 300 seconds")
    return FlowcheckSettings(
        cluster=cluster,
        policies=policies,
        topology=Path(topology_opt).absolute() if topology_opt else path(str(config.getini("flowcheck_topology"))),
        cluster_name=option_or_ini("cluster_name", "flowcheck_cluster_name"),
        keep_cluster=bool(config.getoption("keep_cluster")),
        kube_context=config.getoption("kube_context"),
        allow_context=config.getoption("allow_context"),
        cilium_version=option_or_ini("cilium_version", "flowcheck_cilium_version") or None,
        probe_timeout_s=timeout,
        probe_image=option_or_ini("probe_image", "flowcheck_probe_image"),
        semantics=semantics,
        report_dir=Path(report_opt).absolute() if report_opt else None,
        baseline=Path(baseline_opt).absolute() if baseline_opt else None,
        repo_root=root,
        cilium_tests=tuple(config.getoption("cilium_test") or ()),
    )


def _choose_backend(config: pytest.Config, settings: FlowcheckSettings) -> tuple[BackendProvider | None, str | None]:
    """The live back end of this run and, when there is none, why (printed once at the end)."""
    provided = config.hook.pytest_flowcheck_backend(config=config)
    if provided is not None:
        return provided, None
    reason = _offline_reason(settings)
    if reason is not None:
        return None, reason
    from flowcheck.cluster.session import ClusterOptions  # imported only when live
    from flowcheck.harness.cluster_backend import ClusterBackendProvider

    return ClusterBackendProvider(ClusterOptions(
        cluster_name=settings.cluster_name,
        context=settings.kube_context if settings.cluster == "existing" else None,
        allow_context=settings.allow_context, keep_cluster=settings.keep_cluster,
        cilium_version=settings.cilium_version, repo_root=settings.repo_root, image=settings.probe_image,
        logs_dir=settings.report_dir / "kind-logs" if settings.report_dir else None)), None


def _offline_reason(settings: FlowcheckSettings) -> str | None:
    """Why live checks cannot run, or None when a cluster should be used."""
    if settings.cluster == "none":
        return "--cluster=none: offline mode requested"
    if settings.cluster != "auto":
        return None  # kind or existing were asked for: failing to reach them is an error, not a skip
    if shutil.which("docker") is None:
        return "no Docker client on PATH (live checks need Docker, kind and the cilium CLI)"
    try:
        probe = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True,
                               text=True, timeout=DOCKER_INFO_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"Docker engine not reachable ({exc})"
    if probe.returncode != 0:
        return "no Docker engine is running (`docker info` failed), so no kind cluster can run here"
    from flowcheck.cluster.tools import default_bin_dirs, find_tool

    for tool in ("kind", "cilium"):
        try:
            find_tool(tool, bin_dirs=default_bin_dirs(settings.repo_root))
        except FlowcheckError as exc:
            return str(exc)
    return None


def _shared_dir(config: pytest.Config) -> Path:
    """The directory every process of this run shares (pytest-xdist's own basetemp recipe)."""
    # xdist gives each worker `<controller basetemp>/popen-gwN` as its basetemp.
    base = config._tmp_path_factory.getbasetemp()  # type: ignore[attr-defined]
    return Path(base.parent if hasattr(config, "workerinput") else base)


def _progress(config: pytest.Config, text: str) -> None:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or hasattr(config, "workerinput"):
        print(f"flowcheck: {text}", file=sys.stderr)
        return
    if capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"flowcheck: {text}")
    else:
        reporter.write_line(f"flowcheck: {text}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    live_items = [item for item in items if item.get_closest_marker("live") is not None]
    if not live_items:
        return  # nothing live to run: do not even look for Docker
    state = config.stash[state_key]
    run = state.run()
    if run.provider is not None:
        return
    skip = pytest.mark.skip(reason=f"live check skipped: {run.offline_reason}")
    for item in live_items:
        item.add_marker(skip)
        state.skipped_live.append(item.nodeid)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    """Check a test's pending expectations when its body returns (a body that raised is not checked)."""
    result = yield
    checker = getattr(item, "funcargs", {}).get("paths")
    if isinstance(checker, PathChecker) and checker.pending:
        try:
            checker.check()
        finally:
            for i, flow in enumerate(checker.checked):
                item.user_properties.extend([
                    (f"flowcheck.{i}.source", flow.source), (f"flowcheck.{i}.destination", flow.destination),
                    (f"flowcheck.{i}.port", f"{flow.port}/{flow.protocol}" if flow.port else flow.protocol),
                    (f"flowcheck.{i}.request", flow.request or ""),
                    (f"flowcheck.{i}.expected", flow.expected.value if flow.expected else ""),
                    (f"flowcheck.{i}.model", flow.model.value),
                    (f"flowcheck.{i}.observed", flow.observed.value if flow.observed else ""),
                ])
    return result


@pytest.fixture(scope="session")
def flowcheck_settings(pytestconfig: pytest.Config) -> FlowcheckSettings:
    """The resolved flowcheck options of this run."""
    return pytestconfig.stash[settings_key]


@pytest.fixture(scope="session")
def flowcheck_model(pytestconfig: pytest.Config) -> Model:
    """The policy model of this run (topology + policies + semantics)."""
    try:
        return pytestconfig.stash[state_key].run().model()
    except FlowcheckError as exc:
        pytest.fail(f"flowcheck: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def flowcheck_plan(flowcheck_model: Model) -> tuple[PlannedFlow, ...]:
    """The model's whole matrix (every workload to every workload on every served port, with the model's
    decision), planned once per session; filter it and pass it to ``paths.expect_planned``."""
    return tuple(decide_matrix(flowcheck_model))


@pytest.fixture(scope="session")
def flowcheck_live(pytestconfig: pytest.Config) -> LiveBackend | None:
    """The live back end (set up on first use, once per run), or None offline."""
    try:
        return pytestconfig.stash[state_key].run().live()
    except FlowcheckError as exc:
        pytest.fail(f"flowcheck: live set-up failed: {exc}", pytrace=False)


@pytest.fixture
def paths(request: pytest.FixtureRequest, flowcheck_model: Model, flowcheck_live: LiveBackend | None) -> PathChecker:
    """Declare intended paths with ``paths.expect(...)``; they are checked when the test ends."""
    context = request.config.stash[state_key].run().context()
    return PathChecker(context, request.node.nodeid)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = session.config.stash.get(state_key, None)
    if state is None:
        return
    if state.is_worker:
        _hand_over_to_controller(state)
        return
    used = state.started or state.worker_flows or state.workers_used_live or _xdist_set_up_a_backend(session.config)
    if not used:
        return  # flowcheck was not used in this run
    own = state.run()
    try:
        flows = [*own.records, *state.worker_flows]
        if flows:
            state.report = MatrixReport(tuple(flows), _metadata(state, own))
            _write_outputs(state, state.report, session)
    finally:
        try:
            # Whenever a back end was set up -- also when the run was interrupted before any worker reported.
            own.tear_down(failed=bool(exitstatus) or session.testsfailed > 0)
        except FlowcheckError as exc:
            state.teardown_error = str(exc)
            if session.exitstatus == pytest.ExitCode.OK:
                session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _xdist_set_up_a_backend(config: pytest.Config) -> bool:
    """In the pytest-xdist controller: did some worker set up the live back end? (It may have been
    interrupted before reporting anything, and the teardown must still happen.)"""
    if not config.pluginmanager.has_plugin("dsession"):
        return False
    return RunOnce(_shared_dir(config), "backend").read() is not None


def _hand_over_to_controller(state: PluginState) -> None:
    """A pytest-xdist worker sends what it recorded to the controlling process (``workeroutput``)."""
    if not state.started:
        return
    run = state.run()
    output = state.config.workeroutput  # type: ignore[attr-defined]
    output["flowcheck"] = {
        "records": [flow.to_json() for flow in run.records],
        "skipped_live": state.skipped_live,
        "used_live": run.live_started,
        "live_description": run.live_description,
    }


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: object, error: object) -> None:
    """pytest-xdist, in the controller: merge what a finished worker recorded."""
    config = getattr(node, "config", None)
    output = getattr(node, "workeroutput", {}).get("flowcheck")
    if config is None or not isinstance(output, dict):
        return
    state = config.stash[state_key]
    state.worker_flows.extend(CheckedFlow.from_json(item, path="<xdist worker>") for item in output["records"])
    state.skipped_live.extend(output["skipped_live"])
    state.workers_used_live = state.workers_used_live or bool(output["used_live"])
    state.live_description = state.live_description or output.get("live_description")


def _metadata(state: PluginState, run: FlowcheckRun) -> dict[str, str]:
    s = state.settings
    meta = {"run": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "semantics": s.semantics,
            "mode": "offline" if run.provider is None else "live",
            "policies": ", ".join(str(p) for p in s.policies), "topology": str(s.topology)}
    if run.offline_reason:
        meta["offline_reason"] = run.offline_reason
    described = run.live_description or state.live_description
    if described:
        meta["cluster"] = described  # as the back end measured it (e.g. the running Cilium chart version)
    if s.cilium_version:
        meta["cilium_version_requested"] = s.cilium_version
    return meta


def _write_outputs(state: PluginState, report: MatrixReport, session: pytest.Session) -> None:
    settings = state.settings
    if settings.report_dir is not None:
        written = write_report_dir(report, settings.report_dir)
        append_step_summary(written.markdown_text)
    if settings.baseline is not None:
        try:
            diff = compare_baselines(read_baseline(settings.baseline), record_baseline(report))
        except FlowcheckError as exc:
            state.baseline_text = f"flowcheck: cannot compare with the baseline: {exc}"
            session.exitstatus = pytest.ExitCode.USAGE_ERROR
            return
        state.baseline_text = render_diff(diff, old_label=str(settings.baseline), new_label="this run")
        if diff.failed:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    state = config.stash.get(state_key, None)
    if state is None or state.is_worker or not (state.started or state.skipped_live or state.teardown_error):
        return
    run = state.run()
    if state.report is not None:
        terminalreporter.write_sep("=", "flowcheck")
        color = terminalreporter.hasmarkup and "NO_COLOR" not in os.environ
        terminalreporter.write_line(render_table(state.report, color=color))
        if state.settings.report_dir is not None:
            terminalreporter.write_line(f"flowcheck: report written to {state.settings.report_dir}")
    if state.baseline_text:
        terminalreporter.write_line(state.baseline_text)
    unprobed = [f for f in state.report.flows if f.observed is None] if state.report else []
    if run.provider is None:
        if unprobed or state.skipped_live:
            terminalreporter.write_line(
                f"flowcheck: live checks skipped ({run.offline_reason}): {len(unprobed)} paths were checked "
                f"against the model only, {len(set(state.skipped_live))} live-only tests were skipped.", yellow=True)
    elif unprobed:
        reasons = sorted({f.observed_detail for f in unprobed})
        terminalreporter.write_line(
            f"flowcheck: {len(unprobed)} paths could not be probed live and were checked against the model only: "
            + "; ".join(reasons), yellow=True)
    if state.teardown_error:
        terminalreporter.write_line(f"flowcheck: teardown failed: {state.teardown_error}", red=True)
