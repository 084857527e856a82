"""What the plugin collects by itself: intent files, and the generic checks every repository needs.

pytest's doctest plugin is the model: ``pytest_collect_file`` turns files of a known shape into
``pytest.File``/``pytest.Item`` nodes whose ``repr_failure`` gives one line, not a traceback.

* **Intent files** (``*.flowcheck.yaml``/``.yml``, docs/contracts.md, "Intent files") are
  collected wherever pytest collects -- the test paths, or a file named on the command line. Each
  entry is one test, named by its ``name`` (or by its path), so ``-k`` selects it; it is checked as
  a ``flowcheck_paths.expect`` call is, against the model and, with a cluster, live, and recorded in
  the same reports.
* **Generic checks**, when flowcheck is configured (the policies or the topology named by option or
  ini key): every manifest under the policies validates (one test per file), every manifest file is
  applied when a kustomization lists what is applied, and the policies load with the topology
  (warnings for what matches nothing; with ``--flowcheck-strict`` they fail). They are added under
  one node, ``flowcheck``, so a repository needs no file copied from anywhere; they are left out
  when tests are chosen by node id (``pytest tests/x.py::test_y``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from flowcheck.errors import FlowcheckError
from flowcheck.vocabulary import counted

if TYPE_CHECKING:
    from flowcheck.harness.intent_file import IntentEntry, IntentError
    from flowcheck.plugin import PluginState


class IntentFile(pytest.File):
    """An intent file: one item per entry, a malformed entry included (it fails with its one line); a file that
    cannot be read as a whole is one collection error line."""

    def collect(self) -> Iterator[pytest.Item]:
        from flowcheck.harness.intent_file import IntentError, parse_intent_entries

        shown = _shown(self.config, self.path)
        try:
            read = parse_intent_entries(self.path.read_text(encoding="utf-8"), shown)
        except (OSError, UnicodeDecodeError) as exc:
            raise self.CollectError(f"{shown}: cannot read file: {exc}") from None
        except IntentError as exc:
            raise self.CollectError(str(exc)) from None
        if not read:
            self.warn(pytest.PytestWarning(f"{shown}: no paths: an intent file without entries checks nothing"))
        taken = {entry.name for entry in read if not isinstance(entry, IntentError)}
        for entry in read:
            if isinstance(entry, IntentError):
                yield MalformedEntryItem.from_parent(self, name=_malformed_id(entry, taken), error=entry)
                continue
            item = IntentItem.from_parent(self, name=entry.name, entry=entry)
            if entry.http is not None:
                item.add_marker("flowcheck_l7")
            if entry.dns is not None:
                item.add_marker("flowcheck_dns")
            yield item

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, self.CollectError):
            return str(excinfo.value.args[0])
        return super().repr_failure(excinfo)


def _malformed_id(error: IntentError, taken: set[str]) -> str:
    """A malformed entry's test id: its name, as a good entry's, else (no usable name, or another entry's)
    ``entry N``; added to ``taken``."""
    chosen = error.name if error.name and error.name not in taken else f"entry {error.index}"
    while chosen in taken:  # another entry is named "entry N"
        chosen += " (malformed)"
    taken.add(chosen)
    return chosen


class MalformedEntryItem(pytest.Item):
    """An entry whose shape is wrong: its test fails with the mistake's one line, and the file's other entries
    run as usual."""

    reports_input_errors = True  # the run's reports list it (its path is missing from their tables)

    def __init__(self, *, error: IntentError, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.error = error

    def runtest(self) -> None:
        raise self.error

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        return _one_line(excinfo) or super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        line = self.error.line - 1 if self.error.line else None
        headline = f"entry {self.error.index}"
        return self.path, line, headline if self.name == headline else f"{headline}: {self.name}"


class IntentItem(pytest.Item):
    """One intent entry: checked against the model, and live when a cluster is attached."""

    def __init__(self, *, entry: IntentEntry, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.entry = entry

    def runtest(self) -> None:
        from flowcheck.harness.checker import PathChecker
        from flowcheck.plugin import record_properties

        state = _state(self.config)
        run = state.run()
        model = state.model()
        expectation = self.entry.expectation(model.topology)
        checker = PathChecker(run.context(), self.nodeid)
        checker.add(expectation)
        if self.entry.review is not None:  # counted whether or not the check below passes
            where = f"{self.entry.path}:{self.entry.line}" if self.entry.line else self.entry.path
            state.under_review.append(FlowcheckError(f"{where}: {self.entry.name}: {self.entry.review}"))
        try:
            checker.check()
        finally:
            record_properties(self, checker)
        if self.entry.review is not None and state.settings.strict:
            raise self.entry.error("still marked for review (--flowcheck-strict): confirm the entry states what "
                                   "you mean, then delete its `review:`", "review")

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        return _one_line(excinfo) or super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        # The domain is the failure's headline; not the node id's tail, so pytest leaves its dots alone.
        return self.path, (self.entry.line - 1 if self.entry.line else None), f"entry {self.entry.index}: {self.name}"


MODEL_CHECK = "policies match the topology"
MODEL_CHECK_ID = f"flowcheck::{MODEL_CHECK}"  # it owns a model that does not load (``ModelUnavailable``)


class GenericChecks(pytest.Collector):
    """The generic checks, under the node ``flowcheck`` (see the module docstring)."""

    def collect(self) -> Iterator[pytest.Item]:
        from flowcheck.manifests.documents import KUSTOMIZATION_FILES, list_manifest_files

        policies = _state(self.config).settings.check.policies
        files = list_manifest_files(policies)
        for path in files:
            item = ManifestItem.from_parent(self, name=f"manifest {_shown(self.config, path)}", target=path)
            if path.name in KUSTOMIZATION_FILES and _is_component(path):
                item.add_marker(pytest.mark.skip(reason=COMPONENT_SKIP))
            yield item
        if any(f.name in KUSTOMIZATION_FILES for f in files):
            yield PoliciesAppliedItem.from_parent(self, name="every policy file is applied")
        yield ModelItem.from_parent(self, name=MODEL_CHECK)


class _GenericItem(pytest.Item):
    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        return _one_line(excinfo) or super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        policies = _state(self.config).settings.check.policies
        return (policies[0] if policies else self.path), None, f"flowcheck: {self.name}"


class ManifestItem(_GenericItem):
    """One manifest file validates (Kubernetes' schemas, Cilium's CRD schema; strict)."""

    def __init__(self, *, target: Path, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.target = target

    def runtest(self) -> None:
        from flowcheck.manifests.documents import KUSTOMIZATION_FILES
        from flowcheck.manifests.validation import validate_paths

        report = validate_paths([self.target])
        if report.errors:
            pytest.fail("\n".join(str(e) for e in report.errors), pytrace=False)
        if not report.checked and self.target.name not in KUSTOMIZATION_FILES:
            pytest.fail(f"{_shown(self.config, self.target)}: holds no Kubernetes object", pytrace=False)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.target, 0, f"flowcheck: {self.name}"  # a line, which pytest needs to report a skip


COMPONENT_SKIP = ("a kustomize Component is not rendered on its own (kustomize refuses it); it is rendered, and "
                  "its objects validated, by each kustomization that lists it under `components:`")


def _is_component(kustomization: Path) -> bool:
    """``kind: Component`` (kustomize.config.k8s.io/v1alpha1): a kustomization only others can render."""
    import yaml

    try:
        body = yaml.safe_load(kustomization.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False  # rendering it says what is wrong
    return isinstance(body, dict) and body.get("kind") == "Component"


class PoliciesAppliedItem(_GenericItem):
    """Every manifest file under the policies is read when they are applied as Flux applies them (through
    their kustomizations): a file no kustomization lists sits in git and is never applied."""

    def runtest(self) -> None:
        from flowcheck.manifests.documents import read_documents, unapplied_files

        policies = _state(self.config).settings.check.policies
        never = sorted(_shown(self.config, f) for f in unapplied_files(policies, list(read_documents(policies))))
        if never:
            pytest.fail("manifest files no kustomization lists (never applied): " + ", ".join(never), pytrace=False)


class ModelItem(_GenericItem):
    """The policies and the topology load -- when they do not, this test shows why in full, and every other
    test that needs the model points here; what in the policies matches nothing is a warning (a failure
    with ``--flowcheck-strict``)."""

    reports_input_errors = True  # policies or a topology that do not load: the reports say so

    def runtest(self) -> None:
        state = _state(self.config)
        model = state.run().model()
        warnings = state.match_warnings(model)
        if warnings and state.settings.strict:
            pytest.fail(f"{counted(len(warnings), 'warning')} (--flowcheck-strict):\n"
                        + "\n".join(w.describe() for w in warnings), pytrace=False)


def generic_items(session: pytest.Session) -> list[pytest.Item]:
    """The generic checks of a configured run (see the module docstring), or none."""
    state = _state(session.config)
    if not state.settings.configured or any("::" in arg for arg in session.config.args):
        return []
    state.generic = True
    # genitems reports the collector as pytest collects any node: its items are counted and listed.
    return list(session.genitems(GenericChecks.from_parent(session, name="flowcheck", nodeid="flowcheck")))


def _one_line(excinfo: pytest.ExceptionInfo[BaseException]) -> str:
    """The message of a failure flowcheck explains in full itself (no traceback), or ``""``."""
    error = excinfo.value
    if isinstance(error, pytest.fail.Exception):
        return str(error.msg)
    if isinstance(error, FlowcheckError):
        from flowcheck.harness.intent_file import IntentError

        return str(error) if isinstance(error, IntentError) else f"flowcheck: {error}"
    return ""


def _state(config: pytest.Config) -> PluginState:
    from flowcheck.plugin import state_key

    return config.stash[state_key]


def _shown(config: pytest.Config, path: Path) -> str:
    """A path as the user names it: relative to the rootdir when below it."""
    try:
        return str(path.resolve().relative_to(config.rootpath.resolve()))
    except ValueError:
        return str(path)
