"""The plugin's command-line options and ini keys, and the ``FlowcheckSettings`` resolved from them.

The plugin loads into every pytest run of an environment where flowcheck is installed, so every
option, ini key and marker carries flowcheck's name (``--flowcheck-...``, ``flowcheck_...``): a
project's own ``--cluster`` option or ``live`` marker stays its own. Persistent options are mirrored
as ini keys so a repository can keep them in ``pyproject.toml``; the command line wins.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from flowcheck.cluster.kind import DEFAULT_CLUSTER_NAME
from flowcheck.cluster.workloads import DEFAULT_PROBE_IMAGE
from flowcheck.harness.settings import CheckInputs, ProbeSettings
from flowcheck.model.semantics import SEMANTICS
from flowcheck.plugin.settings import CLUSTER_MODES, ClusterChoice, FlowcheckSettings, OutputSettings
from flowcheck.probe.plan import DEFAULT_PROBE_TIMEOUT_S

DEFAULT_POLICIES = "manifests/network-policies"
DEFAULT_TOPOLOGY = "fixtures/topology.yaml"
MAX_PROBE_TIMEOUT_S = 300.0

MARKERS = {
    "flowcheck_live": "needs a reachable kind + Cilium cluster (flowcheck skips it offline, with the reason)",
    "flowcheck_l7": "exercises Cilium's L7 (Envoy/DNS) proxy",
    "flowcheck_dns": "exercises DNS resolution or DNS L7 policy",
}
"""The markers the plugin registers. It acts on ``flowcheck_live`` only; the others label suites for
``-m`` selection. A generic ``slow`` is left to each project (registering it in every project would
hide a project's own unregistered ``slow`` from ``--strict-markers``)."""


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("flowcheck", "flowcheck: network policy checks")
    group.addoption("--flowcheck-cluster", choices=CLUSTER_MODES, default=None,
                    help="where live checks run: auto (kind when Docker and the tools exist, else offline), kind, "
                         "existing (the --flowcheck-kube-context cluster), none (offline)")
    group.addoption("--flowcheck-kube-context", default=None, metavar="NAME",
                    help="kube context for --flowcheck-cluster=existing")
    group.addoption("--flowcheck-allow-context", metavar="NAME", default=None,
                    help="opt in to running against a context that is not a kind cluster flowcheck created")
    group.addoption("--flowcheck-cluster-name", default=None, metavar="NAME",
                    help=f"kind cluster name (default {DEFAULT_CLUSTER_NAME})")
    group.addoption("--flowcheck-keep-cluster", action="store_true", default=False,
                    help="do not delete the kind cluster at the end")
    group.addoption("--flowcheck-cilium-version", default=None, metavar="VERSION",
                    help="Cilium version (default manifests/cilium/VERSION)")
    group.addoption("--flowcheck-policies", action="append", default=None, metavar="PATH",
                    help=f"policy file or directory, repeatable (default {DEFAULT_POLICIES})")
    group.addoption("--flowcheck-topology", default=None, metavar="FILE",
                    help=f"topology file (default {DEFAULT_TOPOLOGY})")
    group.addoption("--flowcheck-probe-timeout", type=float, default=None, metavar="SECONDS",
                    help=f"per-probe timeout (default {DEFAULT_PROBE_TIMEOUT_S})")
    group.addoption("--flowcheck-probe-image", default=None, metavar="IMAGE",
                    help=f"probe pod image (default {DEFAULT_PROBE_IMAGE})")
    group.addoption("--flowcheck-semantics", choices=SEMANTICS, default=None,
                    help="model semantics: cilium (default) or the kubernetes NetworkPolicy spec")
    group.addoption("--flowcheck-report", default=None, metavar="DIR",
                    help="write matrix.json, report.html and report.md of every checked path to DIR")
    group.addoption("--flowcheck-cilium-test", action="append", default=None, metavar="REGEX",
                    help="filter for `cilium connectivity test --test` (repeatable; `!` excludes); the "
                         "internet-dependent scenarios are always excluded")
    group.addoption("--flowcheck-baseline", default=None, metavar="FILE",
                    help="fail the run when a path's verdict differs from this baseline (flowcheck baseline record)")
    group.addoption("--flowcheck-strict", action="store_true", default=None,
                    help="fail on warnings: parts of policies that match nothing in the topology, intent entries "
                         "still marked `review:` (for CI)")

    parser.addini("flowcheck_cluster", "default for --flowcheck-cluster", default="auto")
    parser.addini("flowcheck_policies", "default for --flowcheck-policies", type="paths", default=[])
    parser.addini("flowcheck_topology", f"default for --flowcheck-topology (default {DEFAULT_TOPOLOGY})", default="")
    parser.addini("flowcheck_cluster_name", "default for --flowcheck-cluster-name", default=DEFAULT_CLUSTER_NAME)
    parser.addini("flowcheck_cilium_version", "default for --flowcheck-cilium-version", default="")
    parser.addini("flowcheck_probe_timeout", "default for --flowcheck-probe-timeout",
                  default=str(DEFAULT_PROBE_TIMEOUT_S))
    parser.addini("flowcheck_probe_image", "default for --flowcheck-probe-image", default=DEFAULT_PROBE_IMAGE)
    parser.addini("flowcheck_semantics", "default for --flowcheck-semantics", default="cilium")
    parser.addini("flowcheck_strict", "default for --flowcheck-strict", type="bool", default=False)


def resolve_settings(config: pytest.Config) -> FlowcheckSettings:
    """The run's settings: the command line, else the ini keys, else the defaults. Values that
    cannot mean anything are a ``pytest.UsageError`` naming the option."""
    root = config.rootpath

    def path(value: str | Path) -> Path:
        p = Path(value)
        return p if p.is_absolute() else root / p

    def option_or_ini(option: str, ini: str) -> str:
        value = config.getoption(option)
        return str(value) if value is not None else str(config.getini(ini))

    policies_opt: list[str] | None = config.getoption("flowcheck_policies")
    ini_policies: list[Path] = config.getini("flowcheck_policies")
    if policies_opt:
        policies = [Path(p).absolute() for p in policies_opt]
    else:
        policies = list(ini_policies) or [path(DEFAULT_POLICIES)]
    topology_opt = config.getoption("flowcheck_topology")
    report_opt = config.getoption("flowcheck_report")
    baseline_opt = config.getoption("flowcheck_baseline")
    kube_context: str | None = config.getoption("flowcheck_kube_context")
    mode = option_or_ini("flowcheck_cluster", "flowcheck_cluster")
    if mode not in CLUSTER_MODES:
        raise pytest.UsageError(f"flowcheck_cluster = {mode!r}: expected one of {', '.join(CLUSTER_MODES)}")
    if kube_context and mode != "existing":
        raise pytest.UsageError("--flowcheck-kube-context only applies with --flowcheck-cluster=existing (with "
                                "--flowcheck-cluster=kind the context is kind-<--flowcheck-cluster-name>)")
    if mode == "existing" and not kube_context:
        raise pytest.UsageError("--flowcheck-cluster=existing needs --flowcheck-kube-context NAME (and "
                                "--flowcheck-allow-context NAME unless it is a kind cluster flowcheck manages): "
                                "flowcheck never uses the current context implicitly")
    semantics = option_or_ini("flowcheck_semantics", "flowcheck_semantics")
    if semantics not in SEMANTICS:
        raise pytest.UsageError(f"flowcheck_semantics = {semantics!r}: expected one of {', '.join(SEMANTICS)}")
    try:
        timeout = float(option_or_ini("flowcheck_probe_timeout", "flowcheck_probe_timeout"))
    except ValueError:
        raise pytest.UsageError("flowcheck_probe_timeout: expected a number of seconds") from None
    if not 0 < timeout <= MAX_PROBE_TIMEOUT_S:
        raise pytest.UsageError(f"--flowcheck-probe-timeout {timeout}: expected more than 0 and at most "
                                f"{MAX_PROBE_TIMEOUT_S:g} seconds")
    ini_topology = str(config.getini("flowcheck_topology"))
    topology = Path(topology_opt).absolute() if topology_opt else path(ini_topology or DEFAULT_TOPOLOGY)
    # Configured: the policies or the topology named, on the command line or as ini keys (not the defaults,
    # which are this repository's own layout): then the plugin adds the generic checks (``collect``).
    configured = bool(policies_opt or ini_policies or topology_opt or ini_topology)
    # A path named but absent is one usage error, not the same failure in every test.
    named = [("--flowcheck-policies" if policies_opt else "flowcheck_policies (ini)", p)
             for p in (policies if policies_opt or ini_policies else [])]
    if topology_opt or ini_topology:
        named.append(("--flowcheck-topology" if topology_opt else "flowcheck_topology (ini)", topology))
    for option, named_path in named:
        if not named_path.exists():
            raise pytest.UsageError(f"{option} {named_path}: no such file or directory")
    strict_opt = config.getoption("flowcheck_strict")
    strict = bool(strict_opt) if strict_opt is not None else bool(config.getini("flowcheck_strict"))
    return FlowcheckSettings(
        check=CheckInputs(policies=tuple(policies), topology=topology, semantics=semantics),
        repo_root=root,
        cluster=ClusterChoice(
            mode=mode,
            name=option_or_ini("flowcheck_cluster_name", "flowcheck_cluster_name"),
            keep=bool(config.getoption("flowcheck_keep_cluster")),
            kube_context=kube_context,
            allow_context=config.getoption("flowcheck_allow_context"),
            cilium_version=option_or_ini("flowcheck_cilium_version", "flowcheck_cilium_version") or None,
            probe_image=option_or_ini("flowcheck_probe_image", "flowcheck_probe_image"),
            connectivity_tests=tuple(config.getoption("flowcheck_cilium_test") or ()),
        ),
        probe=ProbeSettings(timeout_s=timeout),
        output=OutputSettings(report_dir=Path(report_opt).absolute() if report_opt else None,
                              baseline=Path(baseline_opt).absolute() if baseline_opt else None),
        configured=configured,
        strict=strict,
    )
