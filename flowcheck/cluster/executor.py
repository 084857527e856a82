"""``PodExecutor``: the ``ProbeExecutor`` that runs the probe agent inside the deployed probe pods.

The harness probes many source pods at once from a thread pool, and ``kubernetes.stream`` is not
thread-safe on a shared ``ApiClient``, so each thread gets its own (``PerThreadClients``). The
executor only needs the deployed state and a client factory, so a pytest-xdist worker can build
one from the ``DeployedTopology`` in the ``LiveCluster.state()`` the controlling process shared.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from flowcheck.cluster.deployed import DeployedTopology
from flowcheck.cluster.kube import ApiFactory, PerThreadClients
from flowcheck.cluster.podexec import ExecStartError, PodTarget, exec_in_pod
from flowcheck.cluster.workloads import AGENT_PATH
from flowcheck.errors import ClusterError
from flowcheck.probe.executor import CompletedExec
from flowcheck.probe.launch import agent_argv

# Imported from cached bytecode in the pod's /tmp, not run as a script: see flowcheck.probe.launch.
AGENT_ARGV = tuple(agent_argv(AGENT_PATH))


class PodExecutor:
    """Runs the agent (``/flowcheck/agent.py``, see ``AGENT_ARGV``) with the plan on stdin in a workload's probe pod."""

    def __init__(self, deployed: DeployedTopology, api_factory: ApiFactory, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.deployed = deployed
        self._clients = PerThreadClients(api_factory)
        self._clock = clock

    def address_of(self, workload: str) -> str:
        """The IP of probe target ``workload`` (a pod ``namespace/pod``, or a workload's first pod)."""
        return self.deployed.pod(workload).ip

    def run_agent(self, source: str, plan_json: str, *, timeout_s: float) -> CompletedExec:
        pod = self.deployed.pod(source)
        if pod.existing:
            raise ClusterError(f"{source} is an existing workload (pod {pod.namespace}/{pod.pod_name}): flowcheck "
                               "did not deploy it and cannot run its probe agent there, so probes from it "
                               "cannot be run")
        target = PodTarget(pod.namespace, pod.pod_name, pod.container)
        try:
            return exec_in_pod(self._clients.get(), target, AGENT_ARGV, stdin=plan_json, timeout_s=timeout_s,
                               clock=self._clock)
        except ExecStartError as exc:
            raise ClusterError(f"could not start the probe agent in {source}: {exc}") from exc
