"""What a live run on a cluster is asked to do, grouped: where, what to set up, how long, what to keep.

One frozen ``ClusterOptions`` is built at the edge -- by the pytest plugin from its options, by
``flowcheck cluster up`` from the command line, by a test -- and read by ``LiveCluster``. Each
group can be built on its own and has defaults for everything but what only the caller knows:

* ``ClusterTarget``  -- which cluster: flowcheck's kind cluster ``name``, or an existing ``context``
                        (which the context guard lets through only with ``allow_context``);
* ``ClusterSetup``   -- what to install and deploy: the Cilium version and values, the kind config,
                        the probe image and the pods' resources (paths default to the repository's);
* ``ClusterTimeouts`` -- how long each wait may take;
* and, on ``ClusterOptions`` itself, the run's lifecycle: keep the cluster, where its logs go, its id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from flowcheck.cluster.cilium import STATUS_WAIT_S
from flowcheck.cluster.kind import DEFAULT_CLUSTER_NAME, context_for
from flowcheck.cluster.kube import NAMESPACE_GONE_TIMEOUT_S
from flowcheck.cluster.realization import POLICY_WAIT_TIMEOUT_S
from flowcheck.cluster.versions import read_pinned_version
from flowcheck.cluster.workloads import DEFAULT_PROBE_IMAGE, POD_READY_TIMEOUT_S, PodResources


@dataclass(frozen=True, slots=True)
class ClusterTarget:
    """Which cluster: ``context`` None means flowcheck's kind cluster ``name`` (context ``kind-<name>``)."""

    name: str = DEFAULT_CLUSTER_NAME
    context: str | None = None  # an existing cluster's kube context, used as it is
    allow_context: str | None = None  # the explicit opt-in for a context that is not flowcheck's kind cluster
    kubeconfig: str | None = None  # None: $KUBECONFIG or ~/.kube/config

    @property
    def manages_cluster(self) -> bool:
        """flowcheck creates, reuses and may delete the kind cluster (no ``context`` was named)."""
        return self.context is None

    @property
    def existing(self) -> bool:
        """An explicitly named cluster that is not flowcheck's kind cluster ``name``."""
        return self.context is not None and self.context != context_for(self.name)


@dataclass(frozen=True, slots=True)
class ClusterSetup:
    """What to install and deploy; paths default to the repository layout under ``repo_root``."""

    repo_root: Path = field(default_factory=Path.cwd)
    cilium_version: str | None = None  # None: manifests/cilium/VERSION
    upgrade_cilium: bool = False  # `cilium upgrade` an existing installation to the pinned version
    kind_config: Path | None = None  # None: <repo>/manifests/kind/cluster.yaml
    cilium_values: Path | None = None  # None: <repo>/manifests/cilium/values.yaml
    image: str = DEFAULT_PROBE_IMAGE
    load_images: tuple[str, ...] = ()  # local Docker images to `kind load` into the nodes (`up --load-image`)
    resources: PodResources = field(default_factory=PodResources)

    def resolved_kind_config(self) -> Path:
        return self.kind_config or self.repo_root / "manifests" / "kind" / "cluster.yaml"

    def resolved_cilium_values(self) -> Path:
        return self.cilium_values or self.repo_root / "manifests" / "cilium" / "values.yaml"

    def resolved_cilium_version(self) -> str:
        return self.cilium_version or str(read_pinned_version(self.repo_root))


@dataclass(frozen=True, slots=True)
class ClusterTimeouts:
    """How long each wait may take (tests shrink them; a slow cluster may be given more)."""

    status_wait_s: float = STATUS_WAIT_S
    pod_ready_timeout_s: float = POD_READY_TIMEOUT_S
    policy_wait_timeout_s: float = POLICY_WAIT_TIMEOUT_S
    namespace_gone_timeout_s: float = NAMESPACE_GONE_TIMEOUT_S


@dataclass(frozen=True, slots=True)
class ClusterOptions:
    """Everything ``LiveCluster`` needs to know (see the module docstring)."""

    target: ClusterTarget = field(default_factory=ClusterTarget)
    setup: ClusterSetup = field(default_factory=ClusterSetup)
    timeouts: ClusterTimeouts = field(default_factory=ClusterTimeouts)
    keep_cluster: bool = False  # keep a kind cluster flowcheck created (a reused one is always kept)
    logs_dir: Path | None = None  # None: <repo>/flowcheck-report/kind-logs-<run id>
    run_id: str | None = None  # None: a new one
