"""Which live back end a run uses -- a conftest's, flowcheck's cluster, or none -- and, when none, why.

Consulted only when a test needs the live back end (a ``flowcheck_live`` test is collected, or a
fixture asks): a run that does not use flowcheck never probes for Docker.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from flowcheck.errors import FlowcheckError
from flowcheck.harness.backends import BackendProvider
from flowcheck.plugin.settings import FlowcheckSettings

DOCKER_INFO_TIMEOUT_S = 20.0


def choose_backend(config: pytest.Config, settings: FlowcheckSettings) -> tuple[BackendProvider | None, str | None]:
    """The live back end of this run and, when there is none, why (printed once at the end)."""
    provided = config.hook.pytest_flowcheck_backend(config=config)
    if provided is not None:
        return provided, None
    reason = offline_reason(settings)
    if reason is not None:
        return None, reason
    from flowcheck.cluster.options import ClusterOptions, ClusterSetup, ClusterTarget  # imported only when live
    from flowcheck.harness.cluster_backend import ClusterBackendProvider

    choice = settings.cluster
    report_dir = settings.output.report_dir
    return ClusterBackendProvider(ClusterOptions(
        target=ClusterTarget(name=choice.name, context=choice.kube_context if choice.mode == "existing" else None,
                             allow_context=choice.allow_context),
        setup=ClusterSetup(repo_root=settings.repo_root, cilium_version=choice.cilium_version,
                           image=choice.probe_image),
        keep_cluster=choice.keep, logs_dir=report_dir / "kind-logs" if report_dir else None)), None


def offline_reason(settings: FlowcheckSettings) -> str | None:
    """Why live checks cannot run, or None when a cluster should be used."""
    mode = settings.cluster.mode
    if mode == "none":
        return "--flowcheck-cluster=none: offline mode requested"
    if mode != "auto":
        return None  # kind or existing were asked for: failing to reach them is an error, not a skip
    if shutil.which("docker") is None:
        return "no Docker client on PATH (live checks need Docker, kind and the cilium CLI)"
    try:
        probe = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True,
                               text=True, timeout=DOCKER_INFO_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"Docker engine not reachable ({exc})"
    if probe.returncode != 0:
        return "no Docker engine is running (`docker info` failed), so no kind cluster can run here"
    from flowcheck.cluster.tools import default_bin_dirs, find_tool

    for tool in ("kind", "cilium"):
        try:
            find_tool(tool, bin_dirs=default_bin_dirs(settings.repo_root))
        except FlowcheckError as exc:
            return str(exc)
    return None
