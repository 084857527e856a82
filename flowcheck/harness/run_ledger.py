"""What this process has seen of the live cluster so far in the run: verdicts per path, reachable pods.

Three questions a single batch of probes cannot answer alone:

- **Has every applied policy been realized?** Asked of the back end once (``realized``) before the
  first probe of the process, and never assumed.
- **Was the same path observed differently earlier in the run?** A path probed by two tests (or two
  batches) must show one verdict; a difference means something changed under the run (a policy
  realized late, a flapping datapath) and both observations are suspect, so the later one is flagged
  (``observe``).
- **Is a destination that timed out actually up?** A timeout is a drop only when the destination pod
  is known to answer: some probe of this run reached it (``reachable``), or Hubble showed the policy
  drop. The ledger remembers which probe targets answered.

One ledger per process (a pytest-xdist worker keeps its own); the reports compare observations
across processes too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flowcheck.verdict import Verdict

PathKey = tuple[str, str, str, int | None, str]  # source target, destination target, protocol, port, request


@dataclass(slots=True)
class RunLedger:
    """Per-process memory of the live run (see the module docstring)."""

    realized: bool = False
    _verdicts: dict[PathKey, tuple[Verdict, str]] = field(default_factory=dict)
    _reachable: dict[str, str] = field(default_factory=dict)

    def observe(self, key: PathKey, verdict: Verdict, where: str) -> str:
        """Remember the verdict of ``key``; return what an earlier observation said when it differs
        (empty when this is the first, or it agrees)."""
        before = self._verdicts.get(key)
        if before is None:
            self._verdicts[key] = (verdict, where)
            return ""
        earlier, earlier_where = before
        if earlier is verdict:
            return ""
        return f"observed {earlier.value} earlier in this run ({earlier_where}), {verdict.value} now"

    def note_reachable(self, target: str, how: str) -> None:
        self._reachable.setdefault(target, how)

    def reachable(self, target: str) -> str | None:
        """How ``target`` was shown to answer in this run, or None."""
        return self._reachable.get(target)
