"""Test support: a network-namespace lab where the real probe agent and server meet real nftables rules.

Not a product backend -- flowcheck's own tests (and benchmarks) use it to prove the probe layer on real
packets. ``NetLab`` builds the namespaces, ``LabExecutor`` is its ``ProbeExecutor``, and
``netlab_unavailable_reason`` says why the lab cannot run (not root, no ``ip``/``nft``) so tests skip.
"""

from tests.netlab.executor import LabExecutor
from tests.netlab.lab import (
    AGENT_PATH,
    LAB_NETWORK,
    SERVER_PATH,
    LabError,
    LabPod,
    LabProcess,
    NetLab,
    netlab_unavailable_reason,
    sweep_leftovers,
)

__all__ = [
    "AGENT_PATH",
    "LAB_NETWORK",
    "SERVER_PATH",
    "LabError",
    "LabExecutor",
    "LabPod",
    "LabProcess",
    "NetLab",
    "netlab_unavailable_reason",
    "sweep_leftovers",
]
