"""What a pre-upgrade check is asked to do, and the defaults the command line and the check share.

One frozen ``PreUpgradeOptions`` is built at the edge (by ``flowcheck.cli.preupgrade`` or by a
test) and read by every step. The timeouts are options, not constants in the steps, so tests can
shrink them and a slow cluster can be given more time without touching the code.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from flowcheck.cluster import kind, kube
from flowcheck.cluster.options import ClusterTarget
from flowcheck.cluster.process import DEFAULT_INTERRUPT_GRACE_S
from flowcheck.harness.preupgrade.versions import CiliumVersion

DEFAULT_REPORT_ROOT = Path("flowcheck-report")

BRING_UP_TIMEOUT_S = 2400.0  # kind create (up to 15 min) + cilium install (15) + status --wait (10)
SUITES_TIMEOUT_S = 7200.0  # the suites plus a full connectivity test (6-12 min upstream), on a slow runner
PREFLIGHT_TIMEOUT_S = 600.0  # every node pulls the new agent image first
STATUS_WAIT_S = 600.0  # `cilium status --wait-duration`, as Cilium's own upgrade CI uses (10m)
ROLLOUT_TIMEOUT_S = 600.0  # after `status --wait`: until every agent runs the target image
POLL_INTERVAL_S = 5.0

# How long an interrupted child (Ctrl-C, or its timeout above) may take to undo what it did before it
# is killed; killing it early leaves the repository's policies applied on a staging cluster.
# `pytest suites/` tears down on KeyboardInterrupt: its own running command (e.g. `cilium
# connectivity test`) gets the default grace first, then LiveCluster.teardown exports the kind logs
# of a failed run (up to kind.EXPORT_LOGS_TIMEOUT_S, 300 s), deletes pods, policies (restoring
# replaced ones), ConfigMaps, service accounts and namespaces -- a few API calls each, 120 s is
# ample -- and waits for the namespaces to be gone (up to kube.NAMESPACE_GONE_TIMEOUT_S, 180 s).
TEARDOWN_API_CALLS_S = 120.0
SUITES_INTERRUPT_GRACE_S = (DEFAULT_INTERRUPT_GRACE_S + kind.EXPORT_LOGS_TIMEOUT_S + TEARDOWN_API_CALLS_S
                            + kube.NAMESPACE_GONE_TIMEOUT_S)  # 610 s
# `flowcheck cluster up` interrupted while creating the cluster: `kind create` gets the
# default grace, then the half-created cluster is listed, its logs exported and it is deleted.
BRING_UP_INTERRUPT_GRACE_S = (DEFAULT_INTERRUPT_GRACE_S + kind.QUERY_TIMEOUT_S + kind.EXPORT_LOGS_TIMEOUT_S
                              + kind.DELETE_TIMEOUT_S)  # 670 s


@dataclass(frozen=True, slots=True)
class PreUpgradeTimeouts:
    """How long each step may take, and how long an interrupted child may take to undo what it did."""

    bring_up_s: float = BRING_UP_TIMEOUT_S
    suites_s: float = SUITES_TIMEOUT_S
    preflight_s: float = PREFLIGHT_TIMEOUT_S
    status_wait_s: float = STATUS_WAIT_S
    rollout_s: float = ROLLOUT_TIMEOUT_S
    poll_interval_s: float = POLL_INTERVAL_S
    suites_interrupt_grace_s: float = SUITES_INTERRUPT_GRACE_S
    bring_up_interrupt_grace_s: float = BRING_UP_INTERRUPT_GRACE_S


@dataclass(frozen=True, slots=True)
class PreUpgradeOptions:
    """What to check, where, how long it may take, and where the results go.

    What: the upgrade to ``target`` with the Helm ``values`` (None: manifests/cilium/values.yaml,
    kind only), the suites run with ``pytest_args`` by ``python``. Where: ``cluster`` -- flowcheck's
    kind cluster ``cluster.name`` unless ``cluster.context`` names an existing one (allowed with
    ``cluster.allow_context``). How long: ``timeouts``. Output: ``report_dir``.
    """

    target: CiliumVersion
    values: Path | None = None
    pytest_args: tuple[str, ...] = ()
    python: str = sys.executable
    cluster: ClusterTarget = field(default_factory=ClusterTarget)
    timeouts: PreUpgradeTimeouts = field(default_factory=PreUpgradeTimeouts)
    report_dir: Path = field(default_factory=lambda: default_report_dir())

    @property
    def existing(self) -> bool:
        """An explicitly allowed existing cluster rather than flowcheck's kind cluster."""
        return self.cluster.existing


def default_report_dir(now: datetime | None = None) -> Path:
    """``flowcheck-report/pre-upgrade-<UTC timestamp>``."""
    moment = now or datetime.now(UTC)
    return DEFAULT_REPORT_ROOT / f"pre-upgrade-{moment:%Y%m%d-%H%M%S}"
