"""Do an expensive set-up once per pytest run, even with pytest-xdist workers.

The pattern is pytest-xdist's "Making session-scoped fixtures execute only once": every worker
takes a file lock under the run's shared base temp directory; the first one performs the set-up
and writes its result as JSON; the others read it. A failed set-up is recorded too, so the other
workers fail fast with the same message instead of trying the same broken set-up again. Teardown
is not done here: it happens once, in the controlling process at the end of the session, from the
same state file.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from filelock import FileLock

from flowcheck.errors import FlowcheckError


class SharedSetupFailed(FlowcheckError):
    """The set-up failed in this or another worker; the message is the original failure."""


class RunOnce:
    """A set-up step shared by every process of one pytest run, keyed by ``name``."""

    def __init__(self, shared_dir: Path, name: str) -> None:
        self.state_file = shared_dir / f"flowcheck-{name}.json"
        self._lock = FileLock(str(self.state_file) + ".lock")

    def get_or_create(self, create: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """Return the shared state, running ``create`` if no process has yet."""
        with self._lock:
            existing = self.read()
            if existing is None:
                try:
                    existing = {"ok": True, "state": create()}
                except Exception as exc:
                    existing = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
                    self._write(existing)
                    raise
                self._write(existing)
        if not existing.get("ok"):
            raise SharedSetupFailed(f"set-up failed earlier in this run: {existing.get('error')}")
        state = existing.get("state")
        if not isinstance(state, dict):
            raise SharedSetupFailed(f"{self.state_file}: no state recorded")
        return state

    def read(self) -> dict[str, Any] | None:
        """The recorded outcome (``{"ok": ..., "state"|"error": ...}``), or None before any set-up."""
        if not self.state_file.is_file():
            return None
        data = json.loads(self.state_file.read_text())
        return data if isinstance(data, dict) else None

    def _write(self, data: dict[str, Any]) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        tmp.replace(self.state_file)
