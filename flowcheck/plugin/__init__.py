"""The flowcheck pytest plugin (entry point ``pytest11``): options, markers, fixtures, reports.

It follows pytest's own plugins: one option group whose persistent options are mirrored as ini
keys (so a repository can keep them in ``pyproject.toml``), markers registered in
``pytest_configure`` (the project runs with ``--strict-markers``), state in ``config.stash``, xdist
awareness via ``hasattr(config, "workerinput")``.

It loads into every pytest run of an environment where flowcheck is installed, so it minds its own
business: every option, ini key, marker and fixture carries flowcheck's name (``options``), and a
run that uses none of them is left as it is -- no marker acted on, no Docker probed, no report, and
the harness, the model's loaders and the reports are not even imported.

What a repository gets without writing Python (``collect``): every ``*.flowcheck.yaml`` intent file's
entries as tests, and -- when the policies or the topology are named -- the generic checks (every
manifest validates, every policy file is applied, the policies match the topology).

What a suite gets: the ``flowcheck_paths`` fixture (declare intended paths; each is checked against
the model, and probed live when a cluster is attached), ``flowcheck_model``, ``flowcheck_matrix``
(the model's whole matrix, decided once per session), ``flowcheck_live`` and ``flowcheck_settings``.
Tests marked ``flowcheck_live`` need a cluster and are skipped with the reason when there is none;
the reason is printed once at the end, while the model checks still run and can fail. The live
back end is set up once per run -- by the first process that needs it, shared with every
pytest-xdist worker through a state file -- and torn down once, by the controlling process. At the
end the controlling process prints the truth table, writes ``--flowcheck-report DIR``
(``matrix.json``, ``report.html``, ``report.md``, and the Markdown to ``$GITHUB_STEP_SUMMARY``) and
compares the run with ``--flowcheck-baseline FILE``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Generator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from flowcheck.errors import FlowcheckError, InputError, TopologyError
from flowcheck.plugin import hookspecs
from flowcheck.plugin.options import DEFAULT_POLICIES, DEFAULT_TOPOLOGY, MARKERS, add_options, resolve_settings
from flowcheck.plugin.settings import FlowcheckSettings
from flowcheck.vocabulary import INTENT_FILE_SUFFIXES, counted

if TYPE_CHECKING:
    from flowcheck.harness.backends import LiveBackend
    from flowcheck.harness.checker import PathChecker
    from flowcheck.harness.run import FlowcheckRun
    from flowcheck.model.engine import Model
    from flowcheck.model.matrix import PlannedFlow
    from flowcheck.model.unmatched import MatchWarning
    from flowcheck.report.records import CheckedFlow, MatrixReport

LIVE_MARKER = "flowcheck_live"
_LISTED = 5  # intent entries under review named in the summary
PATHS_FIXTURE = "flowcheck_paths"
INPUT_ERROR_PROPERTY = "flowcheck.input_error"  # a test's report property: input that kept paths unchecked


class ModelUnavailable(FlowcheckError):
    """The policies or the topology do not load: what every test that needs the model meets.

    The load error is one mistake, however many tests need the model: the test that owns it -- the
    generic check "policies match the topology" when it is collected, else the first test of the
    process to meet it -- shows it in full; every other says in one short line where to look
    (``PluginState.unavailable_line``, applied in ``pytest_runtest_makereport``).
    """

    def __init__(self, cause: FlowcheckError, what: str | None = None) -> None:
        self.cause = cause
        self.what = what or ("the topology does not load" if isinstance(cause, TopologyError)
                             else "the policies do not load")
        super().__init__(f"{self.what}: {cause}")


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
    live_notes: dict[str, str] = field(default_factory=dict)
    collected: list[str] = field(default_factory=list)  # test ids, in collection order (xdist: the workers')
    finished: set[str] = field(default_factory=set)  # tests that ran (passed, failed or skipped)
    keyboard_interrupted: bool = False  # Ctrl-C or a signal (``_TestTracker``)
    generic: bool = False  # this process added the generic checks (``collect``)
    under_review: list[FlowcheckError] = field(default_factory=list)  # intent entries still marked `review:`
    model_owner: str | None = None  # the test showing in full why the model does not load (``ModelUnavailable``)
    input_errors: list[str] = field(default_factory=list)  # what kept declared paths from being checked
    _warnings: list[MatchWarning] | None = None

    @property
    def is_worker(self) -> bool:
        return hasattr(self.config, "workerinput")

    def run(self) -> FlowcheckRun:
        if self._run is None:
            from flowcheck.harness.run import FlowcheckRun
            from flowcheck.plugin.backend_choice import choose_backend

            provider, offline_reason = choose_backend(self.config, self.settings)
            self._run = FlowcheckRun(
                settings=self.settings.run_settings(), shared_dir=lambda: _shared_dir(self.config),
                provider=provider, offline_reason=offline_reason, progress=lambda text: _progress(self.config, text))
        return self._run

    @property
    def started(self) -> bool:
        return self._run is not None

    def model(self) -> Model:
        """The run's model, for a test that needs it but does not own its loading (``ModelUnavailable``)."""
        try:
            return self.run().model()
        except ModelUnavailable:
            raise
        except FlowcheckError as exc:
            check = self.settings.check
            defaults_here = check.topology.exists() and all(p.exists() for p in check.policies)
            if not self.settings.configured and not defaults_here:
                # Nothing named, and this layout's defaults are not here: say what to name, not "cannot read".
                raise ModelUnavailable(InputError(
                    "nothing names the policies and topology to check: pass --flowcheck-policies PATH and "
                    "--flowcheck-topology FILE (or set the ini keys flowcheck_policies and flowcheck_topology); "
                    f"without them flowcheck looks for {DEFAULT_POLICIES} and {DEFAULT_TOPOLOGY} under "
                    f"{self.config.rootpath}, which are not there"), "nothing names the policies and topology"
                ) from None
            raise ModelUnavailable(exc) from None

    def unavailable_line(self, nodeid: str, error: ModelUnavailable) -> str:
        """What test ``nodeid`` says when the model does not load: the error in full if it owns it, else a pointer."""
        if self.model_owner is None:
            self.model_owner = nodeid
        if self.model_owner == nodeid:
            return f"flowcheck: {error.cause}"
        return f"flowcheck: {error.what} (see {self.model_owner})"

    def match_warnings(self, model: Model) -> list[MatchWarning]:
        """What in the policies matches nothing in the topology (worked out once)."""
        if self._warnings is None:
            from flowcheck.model.unmatched import unmatched

            self._warnings = unmatched(model.topology, model.policies)
        return self._warnings


settings_key = pytest.StashKey[FlowcheckSettings]()
state_key = pytest.StashKey[PluginState]()


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    settings = resolve_settings(config)
    config.stash[settings_key] = settings
    state = config.stash[state_key] = PluginState(config, settings)
    if not state.is_worker:
        config.pluginmanager.register(_TestTracker(state), "flowcheck-test-tracker")


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


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """Intent files (``*.flowcheck.yaml``) are collected as tests (``flowcheck.plugin.collect``)."""
    if not file_path.name.endswith(INTENT_FILE_SUFFIXES):
        return None  # every other file: not flowcheck's, and nothing more is imported for it
    from flowcheck.plugin.collect import IntentFile

    return IntentFile.from_parent(parent, path=file_path)


@pytest.hookimpl(tryfirst=True)  # before -k/-m deselect: the generic checks are selectable like any test
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.stash[settings_key].configured:
        from flowcheck.plugin.collect import generic_items

        items[:0] = generic_items(session)
    live_items = [item for item in items if item.get_closest_marker(LIVE_MARKER) is not None]
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


def pytest_collection_finish(session: pytest.Session) -> None:
    """The generic check "policies match the topology", when it will run, owns a model that does not load."""
    state = session.config.stash.get(state_key, None)
    if state is None or not state.generic:
        return
    from flowcheck.plugin.collect import MODEL_CHECK_ID

    if any(item.nodeid == MODEL_CHECK_ID for item in session.items):
        state.model_owner = MODEL_CHECK_ID


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport,
                                                                                           pytest.TestReport]:
    """A test that failed because the model does not load says so in one line (``ModelUnavailable``)."""
    report = yield
    error = call.excinfo.value if call.excinfo is not None else None
    if isinstance(error, ModelUnavailable) and report.failed:
        state = item.config.stash[state_key]
        report.longrepr = state.unavailable_line(item.nodeid, error)
        if state.model_owner == item.nodeid:  # the test that owns the error, shown in full
            report.user_properties.append((INPUT_ERROR_PROPERTY, str(error.cause)))
    elif isinstance(error, FlowcheckError) and report.failed and getattr(item, "reports_input_errors", False):
        report.user_properties.append((INPUT_ERROR_PROPERTY, str(error)))  # a malformed entry, a model that won't load
    return report


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    """Check a test's pending expectations when its body returns. When the body raised (or was
    interrupted), its pending expectations are recorded as not checked, so the report counts them."""
    try:
        result = yield
    except BaseException as exc:
        checker = _checker_of(item)
        if checker is not None and checker.pending:
            checker.record_unchecked(reason=f"not checked: the test stopped before its paths were checked "
                                            f"({type(exc).__name__})")
        raise
    checker = _checker_of(item)
    if checker is not None and checker.pending:
        try:
            checker.check()
        finally:
            record_properties(item, checker)
    return result


def _checker_of(item: pytest.Item) -> PathChecker | None:
    """The test's ``flowcheck_paths``, if it has one (without that module loaded, none can exist)."""
    checker = getattr(item, "funcargs", {}).get(PATHS_FIXTURE)
    if checker is None or "flowcheck.harness.checker" not in sys.modules:
        return None
    from flowcheck.harness.checker import PathChecker

    return checker if isinstance(checker, PathChecker) else None


class _TestTracker:
    """Which tests were collected and which ran (registered in the controlling process only), so an interrupted
    or stopped run's report can say which tests -- and so which paths -- were not checked."""

    def __init__(self, state: PluginState) -> None:
        self.state = state

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.state.collected.extend(item.nodeid for item in session.items)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: object, ids: list[str]) -> None:
        """pytest-xdist, in the controller: the tests a worker collected (each worker collects them all)."""
        if not self.state.collected:
            self.state.collected.extend(ids)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call" or report.skipped or (report.when == "setup" and report.failed):
            self.state.finished.add(report.nodeid)
        for name, value in report.user_properties:  # from this process or, under xdist, a worker's
            if name == INPUT_ERROR_PROPERTY and value not in self.state.input_errors:
                self.state.input_errors.append(str(value))

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        """Ctrl-C or a signal -- not errors during collection, which pytest also ends as "interrupted"."""
        if not isinstance(excinfo.value, pytest.Session.Interrupted):
            self.state.keyboard_interrupted = True


def record_properties(item: pytest.Item, checker: PathChecker) -> None:
    """Each checked path as JUnit properties of the test (``flowcheck.N.source``, ...)."""
    for i, flow in enumerate(checker.checked):
        item.user_properties.extend([
            (f"flowcheck.{i}.source", flow.source), (f"flowcheck.{i}.destination", flow.destination),
            (f"flowcheck.{i}.port", f"{flow.port}/{flow.protocol}" if flow.port else flow.protocol),
            (f"flowcheck.{i}.request", flow.request or ""),
            (f"flowcheck.{i}.expected", flow.expected.value if flow.expected else ""),
            (f"flowcheck.{i}.model", flow.model.value),
            (f"flowcheck.{i}.observed", flow.observed.value if flow.observed else ""),
        ])


@pytest.fixture(scope="session")
def flowcheck_settings(pytestconfig: pytest.Config) -> FlowcheckSettings:
    """The resolved flowcheck settings of this run (what to check, where, how long, output)."""
    return pytestconfig.stash[settings_key]


@pytest.fixture(scope="session")
def flowcheck_model(pytestconfig: pytest.Config) -> Model:
    """The policy model of this run (topology + policies + semantics)."""
    return pytestconfig.stash[state_key].model()  # a load error: one line per test (ModelUnavailable)


@pytest.fixture(scope="session")
def flowcheck_matrix(flowcheck_model: Model) -> tuple[PlannedFlow, ...]:
    """The model's whole matrix (every workload to every workload on every served port, with the model's
    decision), decided once per session; filter it and pass it to ``flowcheck_paths.expect_planned``."""
    from flowcheck.model.matrix import decide_matrix

    return tuple(decide_matrix(flowcheck_model))


@pytest.fixture(scope="session")
def flowcheck_live(pytestconfig: pytest.Config) -> LiveBackend | None:
    """The live back end (set up on first use, once per run), or None offline."""
    state = pytestconfig.stash[state_key]
    state.model()  # the back end applies the policies: when they do not load, say so as every test does
    try:
        return state.run().live()
    except FlowcheckError as exc:
        pytest.fail(f"flowcheck: live set-up failed: {exc}", pytrace=False)


@pytest.fixture
def flowcheck_paths(request: pytest.FixtureRequest, flowcheck_model: Model,
                    flowcheck_live: LiveBackend | None) -> PathChecker:
    """Declare intended paths with ``flowcheck_paths.expect(...)``; they are checked when the test ends."""
    from flowcheck.harness.checker import PathChecker

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
    used = state.started or state.worker_flows or state.workers_used_live or state.generic \
        or _xdist_set_up_a_backend(session.config)
    if not used:
        return  # flowcheck was not used in this run
    from flowcheck.report.records import MatrixReport

    own = state.run()
    _settle_warnings(state, session)
    try:
        flows = [*own.records, *state.worker_flows]
        stopped = _stopped(state, session, exitstatus)
        # A run that checked nothing has a report only when cut short, or when input it could not read is why.
        if flows or state.keyboard_interrupted or state.input_errors:
            metadata = _metadata(state, own)
            if state.input_errors:
                shown = state.input_errors[:NOT_RUN_LISTED]
                more = len(state.input_errors) - len(shown)
                metadata["input_errors"] = f"{counted(len(state.input_errors), 'error')}: " + "; ".join(shown) + (
                    f"; and {more} more" if more else "")
            if stopped:  # an interrupted run's report must never look clean: say so, and what did not run
                metadata["interrupted"] = stopped
                metadata["not_run"] = _not_run(state)
            state.report = MatrixReport(tuple(flows), metadata)
            _write_outputs(state, state.report, session)
    finally:
        try:
            # Whenever a back end was set up -- also when the run was interrupted before any worker reported.
            own.tear_down(failed=bool(exitstatus) or session.testsfailed > 0)
        except FlowcheckError as exc:
            state.teardown_error = str(exc)
            if session.exitstatus == pytest.ExitCode.OK:
                session.exitstatus = pytest.ExitCode.TESTS_FAILED


NOT_RUN_LISTED = 10


def _stopped(state: PluginState, session: pytest.Session, exitstatus: int) -> str:
    """Why the run ended before every collected test ran, or empty when it did not."""
    if state.keyboard_interrupted:
        return "yes: the run was interrupted (Ctrl-C or a signal); the report covers only what ran before"
    if session.shouldstop or session.shouldfail:
        return f"yes: the run stopped early ({session.shouldstop or session.shouldfail})"
    if exitstatus == pytest.ExitCode.INTERRUPTED:
        return "yes: the run stopped before its tests ran (errors during collection)"
    return ""


def _not_run(state: PluginState) -> str:
    """The tests that did not run: their paths were not checked at all."""
    collected = list(dict.fromkeys(state.collected))
    missing = [test for test in collected if test not in state.finished]
    if not state.collected:
        return "unknown: the run stopped before the tests were collected"
    if not missing:
        return "none"
    shown = ", ".join(missing[:NOT_RUN_LISTED])
    more = f" and {len(missing) - NOT_RUN_LISTED} more" if len(missing) > NOT_RUN_LISTED else ""
    return f"{len(missing)} of {len(collected)} tests (their paths were not checked): {shown}{more}"


def _settle_warnings(state: PluginState, session: pytest.Session) -> None:
    """Work out the warnings for the summary; with ``--flowcheck-strict`` they fail the run."""
    try:
        warnings = state.match_warnings(state.run().model())
    except FlowcheckError:
        return  # the tests that need the model report why it could not be built
    failing = warnings or state.under_review
    if failing and state.settings.strict and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _xdist_set_up_a_backend(config: pytest.Config) -> bool:
    """In the pytest-xdist controller: did some worker set up the live back end? (It may have been
    interrupted before reporting anything, and the teardown must still happen.)"""
    if not config.pluginmanager.has_plugin("dsession"):
        return False
    from flowcheck.harness.run_state import RunOnce

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
        "live_notes": run.live_notes,
        "generic": state.generic,
        "under_review": [str(e) for e in state.under_review],
    }


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: object, error: object) -> None:
    """pytest-xdist, in the controller: merge what a finished worker recorded."""
    config = getattr(node, "config", None)
    output = getattr(node, "workeroutput", {}).get("flowcheck")
    if config is None or not isinstance(output, dict):
        return
    from flowcheck.report.records import CheckedFlow

    state = config.stash[state_key]
    state.worker_flows.extend(CheckedFlow.from_json(item, path="<xdist worker>") for item in output["records"])
    state.skipped_live.extend(output["skipped_live"])
    state.workers_used_live = state.workers_used_live or bool(output["used_live"])
    state.generic = state.generic or bool(output.get("generic"))
    state.under_review.extend(FlowcheckError(text) for text in output.get("under_review", ()))
    state.live_description = state.live_description or output.get("live_description")
    state.live_notes = state.live_notes or dict(output.get("live_notes") or {})


def _metadata(state: PluginState, run: FlowcheckRun) -> dict[str, str]:
    s = state.settings
    meta = {"run": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "semantics": s.check.semantics,
            "mode": "offline" if run.provider is None else "live",
            "policies": ", ".join(str(p) for p in s.check.policies), "topology": str(s.check.topology)}
    if run.offline_reason:
        meta["offline_reason"] = run.offline_reason
    described = run.live_description or state.live_description
    if described:
        meta["cluster"] = described  # as the back end measured it (e.g. the running Cilium chart version)
    meta.update(run.live_notes or state.live_notes)  # placement, shared probe pods, denial settings
    if s.cluster.cilium_version:
        meta["cilium_version_requested"] = s.cluster.cilium_version
    return meta


def _write_outputs(state: PluginState, report: MatrixReport, session: pytest.Session) -> None:
    from flowcheck.report.baseline import compare_baselines, read_baseline, record_baseline, render_diff
    from flowcheck.report.files import write_report_dir
    from flowcheck.report.markdown import append_step_summary

    output = state.settings.output
    if output.report_dir is not None:
        written = write_report_dir(report, output.report_dir)
        append_step_summary(written.markdown_text)
    if output.baseline is not None:
        try:
            diff = compare_baselines(read_baseline(output.baseline), record_baseline(report))
        except FlowcheckError as exc:
            state.baseline_text = f"flowcheck: cannot compare with the baseline: {exc}"
            session.exitstatus = pytest.ExitCode.USAGE_ERROR
            return
        state.baseline_text = render_diff(diff, old_label=str(output.baseline), new_label="this run")
        if diff.failed:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    state = config.stash.get(state_key, None)
    if state is None or state.is_worker or not (state.started or state.skipped_live or state.teardown_error):
        return
    run = state.run()
    _write_warnings(terminalreporter, state)
    if state.report is not None:
        from flowcheck.report.terminal import render_table

        terminalreporter.write_sep("=", "flowcheck")
        color = terminalreporter.hasmarkup and "NO_COLOR" not in os.environ
        terminalreporter.write_line(render_table(state.report, color=color))
        if state.settings.output.report_dir is not None:
            terminalreporter.write_line(f"flowcheck: report written to {state.settings.output.report_dir}")
        model = run.loaded_model()
        for note in model.policies.notes if model is not None else ():  # which renderer read what, namespaces assumed
            terminalreporter.write_line(f"flowcheck: note: {note}")
    if state.baseline_text:
        terminalreporter.write_line(state.baseline_text)
    unprobed = [f for f in state.report.flows if f.observed is None] if state.report else []
    if run.provider is None:
        if unprobed or state.skipped_live:
            terminalreporter.write_line(
                f"flowcheck: live checks skipped ({run.offline_reason}): {counted(len(unprobed), 'path')} checked "
                f"against the model only, {counted(len(set(state.skipped_live)), 'live-only test')} skipped.",
                yellow=True)
    elif unprobed:
        reasons = sorted({f.observed_detail for f in unprobed})
        terminalreporter.write_line(
            f"flowcheck: {counted(len(unprobed), 'path')} not probed live, checked against the model only: "
            + "; ".join(reasons), yellow=True)
    if state.report is not None:
        from flowcheck.harness.checker import LIVE_ONLY_UNSETTLED

        unsettled = [f for f in state.report.flows if f.observed_detail.startswith(LIVE_ONLY_UNSETTLED)]
        if unsettled:
            terminalreporter.write_line(
                f"flowcheck: {counted(len(unsettled), 'live-only path')} the model cannot decide, awaiting a cluster: "
                + "; ".join(f"{f.source} -> {f.destination} ({f.model_reasons[0] if f.model_reasons else 'unknown'})"
                            for f in unsettled), yellow=True)
    if state.teardown_error:
        terminalreporter.write_line(f"flowcheck: teardown failed: {state.teardown_error}", red=True)


def _write_warnings(terminalreporter: pytest.TerminalReporter, state: PluginState) -> None:
    """What matches nothing, and intent still marked for review: printed whether or not they fail the run."""
    strict = state.settings.strict
    warnings = state._warnings or []
    if warnings:
        how = "failing the run (--flowcheck-strict)" if strict else "--flowcheck-strict fails on them"
        terminalreporter.write_line(f"flowcheck: {counted(len(warnings), 'warning')}, parts of the policies match "
                                    f"nothing in the topology ({how}):", red=strict, yellow=not strict)
        for warning in warnings:
            terminalreporter.write_line(f"  {warning.describe()}")
    if state.under_review:
        count = len(state.under_review)
        marked = "1 intent entry is" if count == 1 else f"{count} intent entries are"
        terminalreporter.write_line(f"flowcheck: {marked} still marked for review "
                                    "(`review:`, as flowcheck init wrote them): confirm each states what you mean, "
                                    "then delete the mark", red=strict, yellow=not strict)
        for entry in state.under_review[:_LISTED]:
            terminalreporter.write_line(f"  {entry}")
        if len(state.under_review) > _LISTED:
            terminalreporter.write_line(f"  ... and {len(state.under_review) - _LISTED} more")
