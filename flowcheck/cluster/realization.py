"""Waiting until every probe pod's endpoint enforces the policies just changed -- never a fixed sleep.

What cilium-cli does since v0.19.6 (``connectivity/check/policy.go``): before applying, it reads each
agent's policy repository revision (``cilium policy get -o jsonpath='{.revision}'`` in the
``cilium-agent`` container); it counts one revision per policy it created, per policy whose
``metadata.generation`` the update moved, and per policy it deleted; then, per agent, it polls
``cilium endpoint list -o json`` every 2 s for up to 30 s until no endpoint with an identity has a
realized revision (``status.policy.realized.policy-revision``) below ``old + delta``.

flowcheck does the same, narrowed to the endpoints it is about to probe: after applying, every
deployed pod's endpoint -- on the agent of the pod's node, since revisions are agent-local -- must have
realized at least its agent's ``old + delta`` before the first probe (``wait_for_endpoints``;
``agent_endpoints`` reads the list). That covers created *and* changed policies and the endpoints'
regeneration, so no probe is judged against a half-applied policy set and nothing relies on a
retry to cover the gap. Removals at teardown are waited for at the agents' repositories
(``wait_for_revisions``), so the next run's "old" revision already counts them. ``cilium policy get``
is deprecated upstream but still present in current agents and still what cilium-cli runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

from flowcheck.cluster.agent_endpoints import lagging, parse_endpoint_list
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
ENDPOINT_LIST_COMMANDS: tuple[tuple[str, ...], ...] = (
    ("cilium-dbg", "endpoint", "list", "-o", "json"),
    ("cilium", "endpoint", "list", "-o", "json"),  # the name cilium-cli still runs; a link to cilium-dbg
)
POLICY_WAIT_TIMEOUT_S = 30.0  # cilium-cli's PolicyWaitTimeout
POLL_INTERVAL_S = 0.5
ENDPOINT_POLL_INTERVAL_S = 2.0  # cilium-cli's WaitRetryInterval between endpoint lists
EXEC_TIMEOUT_S = 30.0

PodRef = tuple[str, str, str]  # namespace, pod name, pod IP


def agent_pods(clients: KubeClients) -> list[str]:
    """The Running cilium agent pods (``k8s-app=cilium`` in kube-system), by name."""
    pods = call(clients, "listing the cilium agent pods", clients.core.list_namespaced_pod, CILIUM_NAMESPACE,
                label_selector=AGENT_SELECTOR).items
    names = sorted(p.metadata.name for p in pods if p.status is not None and p.status.phase == "Running")
    if not names:
        raise ClusterError(f"no Running cilium agent pod ({AGENT_SELECTOR}) in {CILIUM_NAMESPACE}: "
                           "is Cilium installed?")
    return names


def agents_by_node(clients: KubeClients) -> dict[str, str]:
    """The Running cilium agent pod of each node (``spec.nodeName`` -> pod name)."""
    pods = call(clients, "listing the cilium agent pods", clients.core.list_namespaced_pod, CILIUM_NAMESPACE,
                label_selector=AGENT_SELECTOR).items
    found = {p.spec.node_name: p.metadata.name for p in sorted(pods, key=lambda p: p.metadata.name)
             if p.status is not None and p.status.phase == "Running" and p.spec is not None and p.spec.node_name}
    if not found:
        raise ClusterError(f"no Running cilium agent pod ({AGENT_SELECTOR}) in {CILIUM_NAMESPACE}: "
                           "is Cilium installed?")
    return found


def parse_revision(stdout: str) -> int:
    """``'42'`` (quotes and whitespace around the number are stripped, as cilium-cli does)."""
    text = stdout.strip().strip("'").strip()
    try:
        return int(text)
    except ValueError:
        raise ClusterError(f"unexpected policy revision output {stdout[:80]!r}: expected a number like '42'") from None


class AgentCommand:
    """Runs one read-only command in agents' ``cilium-agent`` containers, trying each spelling of it
    (``cilium-dbg ...``, then ``cilium ...``) and remembering which one each agent understands."""

    def __init__(self, clients: Callable[[], KubeClients], commands: Sequence[tuple[str, ...]], what: str, *,
                 exec_timeout_s: float = EXEC_TIMEOUT_S) -> None:
        self._clients = clients
        self._commands = tuple(commands)
        self._what = what
        self._exec_timeout_s = exec_timeout_s
        self._command: dict[str, tuple[str, ...]] = {}

    def run(self, pod: str) -> str:
        """The command's stdout in agent ``pod``; ``ClusterError`` naming every attempt when none worked."""
        known = self._command.get(pod)
        commands = (known,) if known else self._commands
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
            return result.stdout
        raise ClusterError(f"cannot read {self._what} of cilium agent {pod}: " + "; ".join(failures))


class RevisionReader(AgentCommand):
    """Reads agents' policy repository revisions (``policy get``)."""

    def __init__(self, clients: Callable[[], KubeClients], *, exec_timeout_s: float = EXEC_TIMEOUT_S) -> None:
        super().__init__(clients, REVISION_COMMANDS, "the policy revision", exec_timeout_s=exec_timeout_s)

    def read(self, pod: str) -> int:
        return parse_revision(self.run(pod))

    def read_all(self, pods: Sequence[str]) -> dict[str, int]:
        return {pod: self.read(pod) for pod in pods}


class EndpointReader(AgentCommand):
    """Reads the endpoints an agent manages (``endpoint list -o json``, ``agent_endpoints``)."""

    def __init__(self, clients: Callable[[], KubeClients], *, exec_timeout_s: float = EXEC_TIMEOUT_S) -> None:
        super().__init__(clients, ENDPOINT_LIST_COMMANDS, "the endpoint list", exec_timeout_s=exec_timeout_s)

    def unrealized(self, wanted: Mapping[str, Sequence[PodRef]], targets: Mapping[str, int]) -> list[str]:
        """One look at every agent in ``wanted`` (agent -> the pods on its node): why each pod whose
        endpoint has not realized its agent's target revision is behind; empty when all have."""
        behind: list[str] = []
        for agent, pods in sorted(wanted.items()):
            if not pods:
                continue
            endpoints = parse_endpoint_list(self.run(agent), agent=agent)
            behind.extend(f"{line} (agent {agent})" for line in lagging(endpoints, pods, targets.get(agent, 0)))
        return behind


def wait_for_endpoints(reader: EndpointReader, wanted: Mapping[str, Sequence[PodRef]], targets: Mapping[str, int], *,
                       timeout_s: float = POLICY_WAIT_TIMEOUT_S, interval_s: float = ENDPOINT_POLL_INTERVAL_S,
                       clock: Callable[[], float] = time.monotonic,
                       sleep: Callable[[float], None] = time.sleep) -> None:
    """Poll every agent's endpoint list until each pod in ``wanted`` has realized its agent's revision in
    ``targets``; ``ClusterError`` at the deadline naming every pod still behind and where it stands."""
    outcome = wait_until(lambda: reader.unrealized(wanted, targets), lambda behind: not behind, timeout_s=timeout_s,
                         interval_s=interval_s, clock=clock, sleep=sleep)
    if outcome.done:
        return
    if outcome.error is not None:
        raise ClusterError(f"policies not realized within {timeout_s:g} s: {outcome.error}") from outcome.error
    raise ClusterError(f"policies not realized within {timeout_s:g} s by the probe pods' endpoints:\n"
                       + "\n".join(f"  {line}" for line in outcome.last or ()))


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
