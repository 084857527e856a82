"""Waiting until the Cilium agents have taken in newly applied policies -- never a fixed sleep.

What cilium-cli does (``connectivity/check/policy.go``, per the project's reference notes): before
applying, it records every agent's policy revision by exec'ing ``cilium policy get -o
jsonpath='{.revision}'`` (``cilium-dbg`` since Cilium 1.15) in the ``cilium-agent`` container; after
applying it waits, up to 30 s, until all endpoints have realized revision >= old + delta.

What flowcheck does, through the same documented exec: read each agent's revision before
applying; apply; then poll every agent's revision (``polling.wait_until``) until each reports
at least ``before + number of policies created``. That proves every agent has *imported* the new
policies into its repository. It does not prove that each endpoint has regenerated with them:
the per-endpoint realized revision is in ``cilium-dbg endpoint list -o json``, whose field names
are not confirmed against a real output, so flowcheck does not read it (the live suites' own
retry-while-disagreeing covers the short regeneration gap). Replaced policies do not count toward
the delta: whether Cilium bumps its revision for an update that leaves the rules unchanged is not
confirmed, and counting it could make the wait fail on a healthy cluster.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

from flowcheck.cluster.kube import KubeClients, call
from flowcheck.cluster.podexec import ExecStartError, PodTarget, exec_in_pod
from flowcheck.cluster.polling import wait_until
from flowcheck.cluster.process import tail
from flowcheck.errors import ClusterError

CILIUM_NAMESPACE = "kube-system"
AGENT_SELECTOR = "k8s-app=cilium"
AGENT_CONTAINER = "cilium-agent"
# cilium-cli passes the quotes inside the argv element (no shell), so the output is quoted too.
REVISION_COMMANDS: tuple[tuple[str, ...], ...] = (
    ("cilium-dbg", "policy", "get", "-o", "jsonpath='{.revision}'"),
    ("cilium", "policy", "get", "-o", "jsonpath='{.revision}'"),  # agents older than Cilium 1.15
)
POLICY_WAIT_TIMEOUT_S = 30.0  # cilium-cli's PolicyWaitTimeout
POLL_INTERVAL_S = 0.5
EXEC_TIMEOUT_S = 30.0


def agent_pods(clients: KubeClients) -> list[str]:
    """The Running cilium agent pods (``k8s-app=cilium`` in kube-system), by name."""
    pods = call(clients, "listing the cilium agent pods", clients.core.list_namespaced_pod, CILIUM_NAMESPACE,
                label_selector=AGENT_SELECTOR).items
    names = sorted(p.metadata.name for p in pods if p.status is not None and p.status.phase == "Running")
    if not names:
        raise ClusterError(f"no Running cilium agent pod ({AGENT_SELECTOR}) in {CILIUM_NAMESPACE}: "
                           "is Cilium installed?")
    return names


def parse_revision(stdout: str) -> int:
    """``'42'`` (quotes and whitespace around the number are stripped, as cilium-cli does)."""
    text = stdout.strip().strip("'").strip()
    try:
        return int(text)
    except ValueError:
        raise ClusterError(f"unexpected policy revision output {stdout[:80]!r}: expected a number like '42'") from None


class RevisionReader:
    """Reads agents' policy revisions, remembering which of the two commands each agent understands."""

    def __init__(self, clients: Callable[[], KubeClients], *, exec_timeout_s: float = EXEC_TIMEOUT_S) -> None:
        self._clients = clients
        self._exec_timeout_s = exec_timeout_s
        self._command: dict[str, tuple[str, ...]] = {}

    def read(self, pod: str) -> int:
        known = self._command.get(pod)
        commands = (known,) if known else REVISION_COMMANDS
        failures = []
        for argv in commands:
            target = PodTarget(CILIUM_NAMESPACE, pod, AGENT_CONTAINER)
            try:
                result = exec_in_pod(self._clients(), target, argv, timeout_s=self._exec_timeout_s)
            except ExecStartError as exc:
                failures.append(str(exc))
                continue
            if result.returncode != 0:
                failures.append(f"`{' '.join(argv)}` exited {result.returncode}{tail(result, 3)}")
                continue
            self._command[pod] = argv
            return parse_revision(result.stdout)
        raise ClusterError(f"cannot read the policy revision of cilium agent {pod}: " + "; ".join(failures))

    def read_all(self, pods: Sequence[str]) -> dict[str, int]:
        return {pod: self.read(pod) for pod in pods}


def wait_for_revisions(reader: RevisionReader, targets: Mapping[str, int], *,
                       timeout_s: float = POLICY_WAIT_TIMEOUT_S, interval_s: float = POLL_INTERVAL_S,
                       clock: Callable[[], float] = time.monotonic,
                       sleep: Callable[[float], None] = time.sleep) -> dict[str, int]:
    """Poll until every agent's revision reaches its target; return the revisions last read.

    Raises ``ClusterError`` at the deadline naming each agent that lags and where it stands.
    """
    current: dict[str, int] = {}

    def lagging() -> dict[str, int]:
        for pod, target in targets.items():
            if current.get(pod, -1) < target:
                current[pod] = reader.read(pod)
        return {pod: rev for pod, rev in current.items() if rev < targets.get(pod, rev)}

    outcome = wait_until(lagging, lambda behind: not behind, timeout_s=timeout_s, interval_s=interval_s, clock=clock,
                         sleep=sleep)
    if outcome.done:
        return dict(current)
    if outcome.error is not None:
        raise ClusterError(f"policies not realized within {timeout_s:g} s: {outcome.error}") from outcome.error
    detail = ", ".join(f"{pod} at revision {rev} (waiting for >= {targets[pod]})"
                       for pod, rev in sorted((outcome.last or {}).items()))
    raise ClusterError(f"policies not realized within {timeout_s:g} s: {detail}")
