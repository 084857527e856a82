"""The per-process state of one pytest run: settings, model, live back end, recorded flows.

Everything expensive is lazy and done once: the model is built the first time a test needs it
(a broken policy file then fails the tests that use it, with the file and field, instead of
stopping collection); the live back end is set up the first time a test probes, by exactly one
process of the run (``RunOnce``), and every other process attaches to it. Recorded flows are kept
in memory; pytest-xdist workers hand theirs to the controlling process (the plugin sends them as
``workeroutput``), which builds one report from all of them.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flowcheck.errors import FlowcheckError
from flowcheck.harness.backends import BackendProvider, LiveBackend, SetupRequest
from flowcheck.harness.checker import HarnessContext
from flowcheck.harness.run_ledger import RunLedger
from flowcheck.harness.run_state import RunOnce
from flowcheck.harness.settings import RunSettings
from flowcheck.manifests.documents import SourceDocument
from flowcheck.model.engine import Model
from flowcheck.model.policies import load_policies
from flowcheck.model.topology import load_topology
from flowcheck.report.records import CheckedFlow


@dataclass(slots=True)
class FlowcheckRun:
    """One process's view of the run (the controller's, or one xdist worker's)."""

    settings: RunSettings
    shared_dir: Callable[[], Path]
    provider: BackendProvider | None
    offline_reason: str | None
    progress: Callable[[str], None]
    records: list[CheckedFlow] = field(default_factory=list)
    _model: Model | None = None
    _model_error: FlowcheckError | None = None
    _documents: tuple[SourceDocument, ...] = ()  # the policy documents the model was built from
    _live: LiveBackend | None = None
    _keys: Any = field(default_factory=itertools.count)
    ledger: RunLedger = field(default_factory=RunLedger)  # this process's memory of the live run

    def model(self) -> Model:
        """The policy model of this run (built once; a load error is raised again on every use)."""
        if self._model_error is not None:
            raise self._model_error
        if self._model is None:
            try:
                topology = load_topology(self.settings.check.topology)
                read: list[SourceDocument] = []  # kept for the live set-up, which applies them
                policies = load_policies(list(self.settings.check.policies), keep=read)
                self._model = Model(topology, policies, self.settings.check.semantics)
                self._documents = tuple(read)
            except FlowcheckError as exc:
                self._model_error = exc
                raise
        return self._model

    def loaded_model(self) -> Model | None:
        """The model if it has been built (for notes in a summary), without building it."""
        return self._model

    def live(self) -> LiveBackend | None:
        """The live back end, set up once per run across processes; None when offline."""
        if self.provider is None:
            return None
        if self._live is None:
            provider = self.provider
            model = self.model()
            settings = self.settings

            def set_up() -> dict[str, Any]:
                return provider.set_up(SetupRequest(model.topology, self._documents, settings.repo_root,
                                                    self.progress))

            state = RunOnce(self.shared_dir(), "backend").get_or_create(set_up)
            self._live = provider.attach(state)
        return self._live

    def context(self) -> HarnessContext:
        return HarnessContext(model=self.model(), live=self.live(), offline_reason=self.offline_reason,
                              probe_timeout_s=self.settings.probe.timeout_s, record=self.record,
                              next_key=lambda: next(self._keys), ledger=self.ledger)

    def record(self, flow: CheckedFlow) -> None:
        self.records.append(flow)

    @property
    def live_description(self) -> str | None:
        """What the attached back end says it is (e.g. ``kind cluster flowcheck ..., Cilium 1.19.0``)."""
        return self._live.description if self._live is not None else None

    @property
    def live_notes(self) -> dict[str, str]:
        """What the attached back end says about the deployment (placement, shared probe pods, denials)."""
        return dict(self._live.notes) if self._live is not None else {}

    @property
    def live_started(self) -> bool:
        """True when this process set up or attached to the live back end."""
        return self._live is not None

    def tear_down(self, *, failed: bool) -> None:
        """Tear the back end down if this run set one up (call once, in the controlling process)."""
        if self.provider is None:
            return
        outcome = RunOnce(self.shared_dir(), "backend").read()
        if outcome and outcome.get("ok") and isinstance(outcome.get("state"), dict):
            self.progress("tearing down the live back end")
            self.provider.tear_down(outcome["state"], failed=failed)

