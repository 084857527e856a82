"""The flowcheck pytest plugin (entry point ``pytest11``): options, markers and shared state.

It follows pytest's own plugins: one option group whose persistent options are mirrored as ini
keys (so a repository can keep them in ``pyproject.toml``), markers registered in
``pytest_configure`` (the project runs with ``--strict-markers``), and state kept in
``config.stash``. Tests marked ``live`` need a cluster; without one they are skipped with the
reason, and the reason is printed once in the terminal summary, while the model checks still run.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

CLUSTER_MODES = ("auto", "kind", "existing", "none")
SEMANTICS = ("cilium", "kubernetes")

DEFAULT_POLICIES = "manifests/network-policies"
DEFAULT_TOPOLOGY = "fixtures/topology.yaml"
DEFAULT_CLUSTER_NAME = "flowcheck"
DEFAULT_PROBE_TIMEOUT_S = 2.0
DEFAULT_PROBE_IMAGE = "python:3-alpine"

MARKERS = {
    "live": "needs a reachable kind + Cilium cluster (skipped offline, with the reason)",
    "l7": "exercises Cilium's L7 (Envoy/DNS) proxy",
    "dns": "exercises DNS resolution or DNS L7 policy",
    "slow": "takes more than a few seconds",
}


@dataclass(slots=True)
class FlowcheckSettings:
    """The resolved options of one pytest run."""

    cluster: str
    policies: list[Path]
    topology: Path
    cluster_name: str
    keep_cluster: bool
    kube_context: str | None
    allow_context: str | None
    cilium_version: str | None
    probe_timeout_s: float
    probe_image: str
    semantics: str
    offline_reason: str | None = None  # decided at collection, only when live tests exist
    skipped_live: list[str] = field(default_factory=list)


settings_key = pytest.StashKey[FlowcheckSettings]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("flowcheck", "flowcheck: network policy checks")
    group.addoption("--cluster", choices=CLUSTER_MODES, default=None,
                    help="where live checks run: auto (kind when Docker and the tools exist, else "
                         "offline), kind, existing (the current/--kube-context cluster), none (offline)")
    group.addoption("--kube-context", default=None, help="kube context for --cluster=existing")
    group.addoption("--allow-context", metavar="NAME", default=None,
                    help="opt in to running against a context that is not a kind cluster flowcheck created")
    group.addoption("--cluster-name", default=None, help=f"kind cluster name (default {DEFAULT_CLUSTER_NAME})")
    group.addoption("--keep-cluster", action="store_true", default=False,
                    help="do not delete the kind cluster at the end")
    group.addoption("--cilium-version", default=None, help="Cilium version (default manifests/cilium/VERSION)")
    group.addoption("--policies", action="append", default=None, metavar="PATH",
                    help=f"policy file or directory, repeatable (default {DEFAULT_POLICIES})")
    group.addoption("--topology", default=None, metavar="FILE", help=f"topology file (default {DEFAULT_TOPOLOGY})")
    group.addoption("--probe-timeout", type=float, default=None, metavar="SECONDS",
                    help=f"per-probe timeout (default {DEFAULT_PROBE_TIMEOUT_S})")
    group.addoption("--probe-image", default=None, help=f"probe pod image (default {DEFAULT_PROBE_IMAGE})")
    group.addoption("--semantics", choices=SEMANTICS, default=None,
                    help="model semantics: cilium (default) or the kubernetes NetworkPolicy spec")

    parser.addini("flowcheck_cluster", "default for --cluster", default="auto")
    parser.addini("flowcheck_policies", "default for --policies", type="paths", default=[])
    parser.addini("flowcheck_topology", "default for --topology", default=DEFAULT_TOPOLOGY)
    parser.addini("flowcheck_cluster_name", "default for --cluster-name", default=DEFAULT_CLUSTER_NAME)
    parser.addini("flowcheck_cilium_version", "default for --cilium-version", default="")
    parser.addini("flowcheck_probe_timeout", "default for --probe-timeout", default=str(DEFAULT_PROBE_TIMEOUT_S))
    parser.addini("flowcheck_probe_image", "default for --probe-image", default=DEFAULT_PROBE_IMAGE)
    parser.addini("flowcheck_semantics", "default for --semantics", default="cilium")


def pytest_configure(config: pytest.Config) -> None:
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    config.stash[settings_key] = _resolve_settings(config)


def _resolve_settings(config: pytest.Config) -> FlowcheckSettings:
    root = config.rootpath

    def path(value: str | Path) -> Path:
        p = Path(value)
        return p if p.is_absolute() else root / p

    policies_opt: list[str] | None = config.getoption("policies")
    ini_policies: list[Path] = config.getini("flowcheck_policies")
    if policies_opt:
        policies = [Path(p).absolute() for p in policies_opt]
    elif ini_policies:
        policies = list(ini_policies)
    else:
        policies = [path(DEFAULT_POLICIES)]
    topology_opt = config.getoption("topology")
    timeout_opt = config.getoption("probe_timeout")
    settings = FlowcheckSettings(
        cluster=config.getoption("cluster") or str(config.getini("flowcheck_cluster")),
        policies=policies,
        topology=Path(topology_opt).absolute() if topology_opt else path(str(config.getini("flowcheck_topology"))),
        cluster_name=config.getoption("cluster_name") or str(config.getini("flowcheck_cluster_name")),
        keep_cluster=bool(config.getoption("keep_cluster")),
        kube_context=config.getoption("kube_context"),
        allow_context=config.getoption("allow_context"),
        cilium_version=config.getoption("cilium_version") or str(config.getini("flowcheck_cilium_version")) or None,
        probe_timeout_s=float(timeout_opt if timeout_opt is not None else config.getini("flowcheck_probe_timeout")),
        probe_image=config.getoption("probe_image") or str(config.getini("flowcheck_probe_image")),
        semantics=config.getoption("semantics") or str(config.getini("flowcheck_semantics")),
    )
    if settings.cluster not in CLUSTER_MODES:
        raise pytest.UsageError(f"flowcheck_cluster = {settings.cluster!r}: expected one of {', '.join(CLUSTER_MODES)}")
    return settings


def _offline_reason(settings: FlowcheckSettings) -> str | None:
    """Why live checks cannot run, or None when a cluster should be used."""
    if settings.cluster == "none":
        return "--cluster=none: offline mode requested"
    if settings.cluster == "auto":
        if shutil.which("docker") is None:
            return "no Docker client on PATH (live checks need Docker, kind and the cilium CLI)"
        try:
            probe = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"],
                                   capture_output=True, text=True, timeout=20, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"Docker engine not reachable ({exc})"
        if probe.returncode != 0:
            return "no Docker engine is running (`docker info` failed), so no kind cluster can run here"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    settings = config.stash[settings_key]
    if not any(item.get_closest_marker("live") is not None for item in items):
        return  # nothing live to run: do not even look for Docker
    settings.offline_reason = _offline_reason(settings)
    if settings.offline_reason is None:
        return
    skip = pytest.mark.skip(reason=f"live check skipped: {settings.offline_reason}")
    for item in items:
        if item.get_closest_marker("live") is not None:
            item.add_marker(skip)
            settings.skipped_live.append(item.nodeid)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    settings = config.stash.get(settings_key, None)
    if settings is None or settings.offline_reason is None or not settings.skipped_live:
        return
    terminalreporter.write_line(
        f"flowcheck: {len(settings.skipped_live)} live checks skipped ({settings.offline_reason}); "
        "the model checks ran.", yellow=True)


@pytest.fixture(scope="session")
def flowcheck_settings(pytestconfig: pytest.Config) -> FlowcheckSettings:
    """The resolved flowcheck options of this run."""
    return pytestconfig.stash[settings_key]
