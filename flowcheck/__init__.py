"""flowcheck: prove that a cluster's network policies do what their authors meant.

Each intended path is written once and checked twice: against a policy model (offline, in
every pull request) and against a live kind + Cilium cluster (nightly and before upgrades).
The layers, in the only direction they may import: ``model`` and ``probe`` (pure, independent),
``report`` (reads their results), ``cluster`` (talks to kind, the cilium CLI, Kubernetes and
Hubble), and ``plugin``/``cli`` which compose everything.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("flowcheck")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
