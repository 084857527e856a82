"""``LabExecutor``: the ``ProbeExecutor`` (``flowcheck.probe.executor``) of the netns lab.

It runs the real ``agent.py`` inside a lab pod with ``ip netns exec`` -- the lab's equivalent of the
Kubernetes exec the cluster layer uses -- so the harness pipeline (build specs → ``build_plan`` →
``run_agent`` → ``parse_results`` → ``classify``) runs unchanged over real packets::

    with NetLab() as lab:
        lab.add_pod("default/api", http=[8080])
        lab.add_pod("tenant/client")
        executor = LabExecutor(lab)
        plan = build_plan([HttpProbe("1", executor.address_of("default/api"), 8080)], timeout_s=1.0)
        done = executor.run_agent("tenant/client", plan, timeout_s=agent_budget_s(plan))
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from flowcheck.errors import ClusterError
from flowcheck.probe.executor import CompletedExec
from flowcheck.probe.launch import agent_argv
from tests.netlab.lab import AGENT_PATH, LabError, NetLab


class LabExecutor:
    """Runs the probe agent in lab pods named ``namespace/name`` (see ``NetLab.add_pod``).

    The agent starts as it does in a probe pod (``flowcheck.probe.launch.agent_argv``: ``python -S``,
    imported from cached bytecode), with the bytecode cache in the pod's own scratch directory
    (``NetLab.tmp_dir``, the lab's stand-in for a pod's ``/tmp``): the first run in each pod compiles the
    agent, later runs there do not -- as in a cluster, where every pod has its own ``/tmp``. ``-S`` also
    keeps the development venv's site hooks (an editable-install finder, setuptools' distutils hack, ~17 ms
    per interpreter start) out of the lab's figures.
    """

    def __init__(self, lab: NetLab, *, python: str | None = None, agent_path: Path = AGENT_PATH) -> None:
        self.lab = lab
        self.python = python or lab.python or sys.executable
        self.agent_path = agent_path

    def address_of(self, workload: str) -> str:
        try:
            return self.lab.address_of(workload)
        except LabError as exc:
            raise ClusterError(str(exc)) from None

    def run_agent(self, source: str, plan_json: str, *, timeout_s: float) -> CompletedExec:
        """Run the agent inside ``source`` with the plan on stdin.

        Like the Kubernetes executor: a non-zero exit is returned, not raised; an agent still running
        after ``timeout_s`` is killed and returned with returncode ``-SIGKILL`` and whatever it printed.
        ``ClusterError`` only when the agent cannot be started at all (unknown pod, no ``ip``).
        """
        try:
            argv = agent_argv(str(self.agent_path), python=self.python,
                              pycache_dir=str(self.lab.tmp_dir(source) / "flowcheck-pycache"))
            command = self.lab.command(source, argv)
        except LabError as exc:
            raise ClusterError(f"cannot run the agent in {source!r}: {exc}") from None
        try:
            done = subprocess.run(command, input=plan_json.encode("utf-8"), capture_output=True,
                                  timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired as exc:
            stdout = (exc.stdout or b"").decode("utf-8", "replace")
            stderr = (exc.stderr or b"").decode("utf-8", "replace")
            stderr += f"\n[netlab] agent killed after {timeout_s} s"
            return CompletedExec(returncode=-signal.SIGKILL, stdout=stdout, stderr=stderr)
        except OSError as exc:
            raise ClusterError(f"cannot start the agent in {source!r}: {exc}") from None
        return CompletedExec(returncode=done.returncode, stdout=done.stdout.decode("utf-8", "replace"),
                             stderr=done.stderr.decode("utf-8", "replace"))
