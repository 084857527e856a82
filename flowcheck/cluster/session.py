"""``LiveCluster``: the orchestration the pytest plugin calls, from cluster up to teardown.

    with LiveCluster.bring_up(ClusterOptions(), progress=print) as live:
        deployed = live.deploy(topology_input)          # namespaces, ConfigMaps, pods per class and node
        live.apply_policies(read_documents(paths))      # waits until every pod's endpoint realized them
        live.read_denials()                             # the 403 body / DNS reject code each node uses
        executor = live.executor(deployed)              # a ProbeExecutor for the probe pipeline
        flows = live.hubble_flows(since=t0, until=t1)   # evidence
    # leaving the block tears down everything the run created -- also on failure and Ctrl-C

Two modes. Without ``options.target.context`` flowcheck manages a kind cluster: tools checked, the cluster
created from ``manifests/kind/cluster.yaml`` or reused, the context guard passed (``kind-<name>``
listed by ``kind get clusters``), Cilium installed when absent (upgraded only when asked), then
``cilium status --wait``. With ``options.target.context`` it uses that existing cluster as it is: the
guard requires it to be a kind cluster flowcheck manages or to be named by ``allow_context``; it is
never created, deleted, or given a CNI; only ``cilium status --wait`` is run as the gate. The guard
runs before anything is changed in the cluster.

Teardown deletes what the run created -- pods, ConfigMaps, service accounts, policies (restoring a
foreign policy it replaced), labels it added to pre-existing namespaces, namespaces it created --
in that order, continuing past failures and reporting them together with the ``flowcheck cleanup
--run <id>`` command that finishes the job. A kind cluster flowcheck created is deleted instead
(unless ``keep_cluster``); a reused one is kept. On failure the nodes' logs are exported first.

For pytest-xdist, one process brings the cluster up, deploys and applies, then shares
``LiveCluster.state()`` (plain JSON: run id, context, the deployed pods, and the ledger of what was
created) through a file. Other processes call ``LiveCluster.from_state(options, state)`` to probe,
collect flows and run the connectivity test -- they change nothing and their ``teardown`` does
nothing -- and the process that tears down calls ``from_state(..., owner=True)`` and
``teardown()``. Each process re-checks the context guard.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from flowcheck.cluster import kube
from flowcheck.cluster.cilium import (
    OFFLINE_TEST_EXCLUSIONS,
    CiliumCli,
    CiliumStatusReport,
    ConnectivityReport,
    running_cluster_name,
)
from flowcheck.cluster.cilium_config import NodeDenials, read_node_denials
from flowcheck.cluster.deployed import DeployedPod, DeployedTopology
from flowcheck.cluster.executor import PodExecutor
from flowcheck.cluster.guard import check_context, check_context_asking_kind
from flowcheck.cluster.hubble import FlowRecord, collect_flows
from flowcheck.cluster.kind import Kind, context_for
from flowcheck.cluster.kube import ApiFactory, AppliedPolicy, NamespaceOutcome, PerThreadClients, PolicyObjectRef
from flowcheck.cluster.options import ClusterOptions
from flowcheck.cluster.process import ProcessRunner, SubprocessRunner
from flowcheck.cluster.realization import (
    EndpointReader,
    PodRef,
    RevisionReader,
    agent_pods,
    agents_by_node,
    wait_for_endpoints,
    wait_for_revisions,
)
from flowcheck.cluster.tools import default_bin_dirs, find_tool
from flowcheck.cluster.versions import CiliumVersion
from flowcheck.cluster.workloads import (
    NodeInfo,
    PodSpecInput,
    TopologyInput,
    build_config_map,
    build_pod,
    cluster_nodes,
    create_probe_pod,
    deployed_pod,
    ensure_service_account,
    find_existing_pods,
    load_probe_files,
    replica_name,
    wait_for_pods_ready,
)
from flowcheck.errors import ClusterError
from flowcheck.manifests.documents import SourceDocument

Progress = Callable[[str], None]
STATE_FORMAT = 2
PLACEMENT_NODES = 2  # one node for same-node paths, another for cross-node ones


def new_run_id() -> str:
    """A run id usable as a label value: UTC time plus randomness (``20260827-143012-9f3a1c``)."""
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


@dataclass(frozen=True, slots=True)
class AppliedPolicies:
    """What ``apply_policies`` did: the policies, each agent's repository revision before, and the revision
    every probe pod's endpoint on that agent was shown to have realized before it returned."""

    policies: tuple[AppliedPolicy, ...]
    revisions_before: dict[str, int]
    realized_targets: dict[str, int]

    @property
    def changes(self) -> int:
        """Policies the agents had to take in: created, or replaced with a changed spec."""
        return sum(1 for p in self.policies if p.changed)


@dataclass
class _Ledger:
    """Everything the run created, appended right after each successful create (for teardown)."""

    namespaces: list[NamespaceOutcome] = field(default_factory=list)
    config_maps: list[tuple[str, str]] = field(default_factory=list)
    service_accounts: list[tuple[str, str]] = field(default_factory=list)
    pods: list[tuple[str, str]] = field(default_factory=list)
    policies: list[AppliedPolicy] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "namespaces": [{"name": o.name, "created": o.created, "added_labels": list(o.added_labels)}
                           for o in self.namespaces],
            "config_maps": [list(x) for x in self.config_maps],
            "service_accounts": [list(x) for x in self.service_accounts],
            "pods": [list(x) for x in self.pods],
            "policies": [{"kind": a.ref.kind, "namespace": a.ref.namespace, "name": a.ref.name, "outcome": a.outcome,
                          "source": a.source, "original_json": a.original_json} for a in self.policies],
        }

    @classmethod
    def from_dict(cls, data: Any) -> _Ledger:
        def pairs(key: str) -> list[tuple[str, str]]:
            return [(str(a), str(b)) for a, b in data.get(key, [])]

        return cls(
            namespaces=[NamespaceOutcome(str(n["name"]), bool(n["created"]), tuple(n.get("added_labels", ())))
                        for n in data.get("namespaces", [])],
            config_maps=pairs("config_maps"), service_accounts=pairs("service_accounts"), pods=pairs("pods"),
            policies=[AppliedPolicy(PolicyObjectRef(str(p["kind"]), p.get("namespace"), str(p["name"])),
                                    str(p["outcome"]), str(p.get("source", "")), p.get("original_json"))
                      for p in data.get("policies", [])],
        )


class LiveCluster:
    """A live kind + Cilium cluster (or an explicitly allowed one) and what flowcheck put in it."""

    def __init__(self, options: ClusterOptions, *, context: str, run_id: str, api_factory: ApiFactory | None,
                 runner: ProcessRunner, progress: Progress, kind: Kind | None, cilium: CiliumCli | None,
                 created_cluster: bool, owner: bool = True, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        """``api_factory`` None: API clients for ``context`` from ``options.target.kubeconfig``."""
        api_factory = api_factory or kube.client_factory(context, options.target.kubeconfig)
        self.options = options
        self.context = context
        self.run_id = run_id
        self.created_cluster = created_cluster
        self.owner = owner
        self.deployed: DeployedTopology | None = None
        self.cilium_status: CiliumStatusReport | None = None
        self._api_factory = api_factory
        self._clients = PerThreadClients(api_factory)
        self._runner = runner
        self._progress = progress
        self._kind = kind
        self._cilium = cilium
        self._clock = clock
        self._sleep = sleep
        self._ledger = _Ledger()
        self._torn_down = False
        self._description = ""
        self.realization_targets: dict[str, int] = {}  # agent pod -> revision every endpoint must realize
        self.denials: dict[str, NodeDenials] = {}  # node -> what its agent answers denials with

    # -----------------------------------------------------------------------------------------
    # Construction

    @classmethod
    def bring_up(cls, options: ClusterOptions | None = None, *, runner: ProcessRunner | None = None,
                 api_factory: ApiFactory | None = None, progress: Progress | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> LiveCluster:
        """Get a cluster ready for probing (see the module docstring for the two modes)."""
        options = options or ClusterOptions()
        runner = runner or SubprocessRunner()
        say = progress or (lambda _line: None)
        run_id = options.run_id or new_run_id()
        bin_dirs = default_bin_dirs(options.setup.repo_root)
        say(f"run id {run_id}")
        if not options.target.manages_cluster:
            return cls._use_existing(options, run_id, runner, api_factory, say, bin_dirs, clock, sleep)

        name = options.target.name
        kind = Kind.find(runner, bin_dirs=bin_dirs, kubeconfig=options.target.kubeconfig, progress=say)
        find_tool("docker", bin_dirs=bin_dirs)
        cilium_path = find_tool("cilium", bin_dirs=bin_dirs)
        if options.target.allow_context is not None and options.target.allow_context != context_for(name):
            # refuse before creating anything: the guard below would refuse after the fact
            check_context(context_for(name), cluster_name=name, kind_clusters=None,
                          allow_context=options.target.allow_context)
        clusters = kind.clusters()
        created = False
        if name in clusters:
            say(f"reusing kind cluster {name}")
        else:
            say(f"creating kind cluster {name} ({options.setup.resolved_kind_config()})")
            try:
                kind.create(name, options.setup.resolved_kind_config())
            except BaseException:
                if name in _safe_clusters(kind):
                    kind.export_logs(name, _logs_dir(options, run_id))
                    if not options.keep_cluster:
                        _quietly(say, f"deleting the half-created kind cluster {name}", lambda: kind.delete(name))
                raise
            created = True
            clusters = kind.clusters()
        context = check_context(context_for(name), cluster_name=name, kind_clusters=clusters,
                                allow_context=options.target.allow_context)
        cilium = CiliumCli(runner, cilium_path, context=context, kubeconfig=options.target.kubeconfig, progress=say)
        session = cls(options, context=context, run_id=run_id,
                      api_factory=api_factory, runner=runner, progress=say, kind=kind, cilium=cilium,
                      created_cluster=created, clock=clock, sleep=sleep)
        try:
            for image in options.setup.load_images:
                say(f"loading image {image} into the kind nodes")
                kind.load_image(name, image)
            session._ensure_cilium()
        except BaseException:
            session.teardown(failed=True, quiet=True)
            raise
        return session

    @classmethod
    def _use_existing(cls, options: ClusterOptions, run_id: str, runner: ProcessRunner,
                      api_factory: ApiFactory | None, say: Progress, bin_dirs: Sequence[Path],
                      clock: Callable[[], float], sleep: Callable[[float], None]) -> LiveCluster:
        context, kind = check_context_asking_kind(
            options.target.context or "", cluster_name=options.target.name, allow_context=options.target.allow_context,
            kind=lambda: Kind.find(runner, bin_dirs=bin_dirs, kubeconfig=options.target.kubeconfig, progress=say))
        cilium = CiliumCli(runner, find_tool("cilium", bin_dirs=bin_dirs), context=context,
                           kubeconfig=options.target.kubeconfig, progress=say)
        session = cls(options, context=context, run_id=run_id,
                      api_factory=api_factory, runner=runner, progress=say, kind=kind, cilium=cilium,
                      created_cluster=False, clock=clock, sleep=sleep)
        say(f"using existing context {context}; waiting for Cilium (cilium status --wait)")
        session.cilium_status = cilium.wait_ready(options.timeouts.status_wait_s)
        say(session.cilium_status.summary())
        return session

    def state(self) -> dict[str, Any]:
        """JSON-serialisable state: enough for another process to probe (``from_state``) or tear down."""
        return {"format": STATE_FORMAT, "run_id": self.run_id, "context": self.context,
                "cluster_name": self.options.target.name, "created_cluster": self.created_cluster,
                "description": self.description,
                "deployed": self.deployed.to_dict() if self.deployed is not None else None,
                "realization_targets": dict(self.realization_targets),
                "denials": [d.to_dict() for d in self.denials.values()],
                "ledger": self._ledger.to_dict()}

    @classmethod
    def from_state(cls, options: ClusterOptions, state: Mapping[str, Any], *, owner: bool = False,
                   runner: ProcessRunner | None = None, api_factory: ApiFactory | None = None,
                   progress: Progress | None = None, clock: Callable[[], float] = time.monotonic,
                   sleep: Callable[[float], None] = time.sleep) -> LiveCluster:
        """Rebuild a session from ``state()`` in any process, after checking the context guard again.

        ``owner=False`` (pytest-xdist workers): probe and collect evidence only; ``teardown`` does
        nothing. ``owner=True`` (the process that tears down): ``teardown`` removes what the state's
        ledger lists, or deletes the kind cluster when the set-up created it and ``keep_cluster`` is off.
        """
        found = state.get("format") if isinstance(state, Mapping) else None
        if found != STATE_FORMAT:
            raise ClusterError(f"unreadable cluster state (format {found!r}, expected {STATE_FORMAT})")
        runner = runner or SubprocessRunner()
        say = progress or (lambda _line: None)
        cluster_name = str(state.get("cluster_name") or options.target.name)
        context, kind = check_context_asking_kind(
            str(state["context"]), cluster_name=cluster_name, allow_context=options.target.allow_context,
            kind=lambda: Kind.find(runner, bin_dirs=default_bin_dirs(options.setup.repo_root),
                                   kubeconfig=options.target.kubeconfig, progress=say),
            need_kind=owner and options.target.manages_cluster)  # a teardown may delete the kind cluster
        session = cls(options, context=context, run_id=str(state["run_id"]),
                      api_factory=api_factory, runner=runner, progress=say, kind=kind if owner else None, cilium=None,
                      created_cluster=bool(state.get("created_cluster")), owner=owner, clock=clock, sleep=sleep)
        deployed = state.get("deployed")
        session.deployed = DeployedTopology.from_dict(deployed) if deployed else None
        session._ledger = _Ledger.from_dict(state.get("ledger") or {})
        session._description = str(state.get("description") or "")
        session.realization_targets = {str(k): int(v) for k, v in (state.get("realization_targets") or {}).items()}
        session.denials = {d.node: d for d in (NodeDenials.from_dict(x) for x in state.get("denials") or ())}
        return session

    @property
    def description(self) -> str:
        """One line for reports, e.g. ``kind cluster flowcheck (context kind-flowcheck), Cilium 1.19.0``."""
        if self._description:
            return self._description
        target = self.options.target
        where = (f"kind cluster {target.name} (context {self.context})" if target.manages_cluster
                 else f"context {self.context}")
        version = self.cilium_status.helm_chart_version if self.cilium_status is not None else ""
        return f"{where}, Cilium {version}" if version else where

    def _ensure_cilium(self) -> None:
        assert self._cilium is not None
        version = self.options.setup.resolved_cilium_version()
        values = self.options.setup.resolved_cilium_values()
        if not self._cilium_installed():
            self._progress(f"installing Cilium {version} ({values})")
            self._cilium.install(version=version, values=values, cluster_name=self.options.target.name)
        elif self.options.setup.upgrade_cilium:
            # keep the name the cluster runs with: a new one would re-create every identity
            running_name = running_cluster_name(self._clients.get())
            self._progress(f"upgrading Cilium to {version} ({values})")
            self._cilium.install(version=version, values=values, cluster_name=self.options.target.name, upgrade=True,
                                 cilium_cluster_name=running_name)
        else:
            self._progress("Cilium is installed; not upgrading it")
        wait_s = self.options.timeouts.status_wait_s
        self._progress(f"waiting for Cilium to be ready (cilium status --wait, up to {wait_s:g} s)")
        self.cilium_status = self._cilium.wait_ready(wait_s)
        self._progress(self.cilium_status.summary())
        tags = self.cilium_status.image_tags("cilium")
        if tags and not any(CiliumVersion.parse(t) == CiliumVersion.parse(version) for t in tags):
            self._progress(f"note: the cluster runs Cilium {', '.join(sorted(tags))}, the pinned version is {version}")

    def _cilium_installed(self) -> bool:
        """Whether the cilium DaemonSet exists (a fresh kind cluster has none)."""
        clients = self._clients.get()
        return kube.read_or_none(clients, "checking for the cilium DaemonSet", clients.apps.read_namespaced_daemon_set,
                                 "cilium", "kube-system") is not None

    # -----------------------------------------------------------------------------------------
    # Deploying and applying

    def deploy(self, topology: TopologyInput) -> DeployedTopology:
        """Namespaces, the probe ConfigMap, service accounts, the probe pods; wait until Ready.

        One pod per ``PodSpecInput`` (a class of workloads, ``stands_for``) -- on each of two nodes
        when two or more can run probe pods (see ``flowcheck.cluster.workloads``), so every path can be
        probed same-node and cross-node. ``existing`` workloads are matched to running pods instead,
        one per node. Everything is validated (probe files present, pod specs buildable) before the
        first object is created.
        """
        self._require_owner("deploy")
        clients = self._clients.get()
        to_deploy = [w for w in topology.workloads if not w.existing]
        files = load_probe_files() if to_deploy else {}
        every_node = cluster_nodes(clients) if to_deploy else []
        nodes = [n for n in every_node if n.schedulable]
        placement = nodes[:PLACEMENT_NODES] if len(nodes) >= PLACEMENT_NODES else []
        plan = self._pod_plan(to_deploy, placement)
        for name, labels in sorted(topology.namespace_labels().items()):
            outcome = kube.ensure_namespace(clients, name, labels, self.run_id, clock=self._clock, sleep=self._sleep,
                                            gone_timeout_s=self.options.timeouts.namespace_gone_timeout_s)
            if outcome.created or outcome.added_labels:
                self._ledger.namespaces.append(outcome)
            if outcome.created:
                self._progress(f"created namespace {name}")
            elif outcome.added_labels:
                self._progress(f"labelled existing namespace {name}: {', '.join(outcome.added_labels)}")
        for namespace in sorted({w.namespace for w in to_deploy}):
            cm = build_config_map(namespace, self.run_id, files)
            kube.call(clients, f"creating ConfigMap {namespace}/{cm.metadata.name}",
                      clients.core.create_namespaced_config_map, namespace, cm)
            self._ledger.config_maps.append((namespace, cm.metadata.name))
        for namespace, account in sorted({(w.namespace, w.service_account) for w in to_deploy}):
            if ensure_service_account(clients, namespace, account, self.run_id):
                self._ledger.service_accounts.append((namespace, account))
        for spec, manifest in plan:
            create_probe_pod(clients, manifest, spec.workload)
            self._ledger.pods.append((spec.namespace, manifest.metadata.name))
        self._say_placement(nodes, placement, len(plan))
        ready = wait_for_pods_ready(clients, [(spec.namespace, m.metadata.name) for spec, m in plan], self.run_id,
                                    timeout_s=self.options.timeouts.pod_ready_timeout_s, clock=self._clock,
                                    sleep=self._sleep)
        pods: list[DeployedPod] = [deployed_pod(spec, ready[(spec.namespace, m.metadata.name)]) for spec, m in plan]
        for w in topology.workloads:
            if w.existing:
                found = find_existing_pods(clients, w)
                self._progress(f"existing workload {w.workload} is " + ", ".join(
                    f"pod {p.pod_name} ({p.ip} on {p.node})" for p in found))
                pods.extend(found)
        used_nodes = tuple(n.name for n in placement) or tuple(sorted({p.node for p in pods if not p.existing}))
        self.deployed = DeployedTopology(self.run_id, self.context, tuple(pods), used_nodes,
                                         tuple((n.name, n.internal_ip) for n in every_node))
        placed = ", ".join(f"{p.key}@{p.node or '?'}" for p in pods if not p.existing)
        if placed:
            self._progress(f"probe pods ready: {placed}")
        return self.deployed

    def _pod_plan(self, specs: Sequence[PodSpecInput], placement: Sequence[NodeInfo]) -> list[tuple[PodSpecInput, Any]]:
        """Each class's pod manifest(s): one per placement node, pinned, or one unpinned pod."""
        setup = self.options.setup
        plan = []
        nodes: Sequence[NodeInfo | None] = placement or [None]
        for spec in specs:
            for index, node in enumerate(nodes):
                for copy in range(spec.copies):
                    name = replica_name(spec.name, index if node is not None else None, copy)
                    plan.append((spec, build_pod(spec, run_id=self.run_id, image=setup.image,
                                                 resources_=setup.resources, pod_name=name,
                                                 node=node.hostname if node is not None else None)))
        return plan

    def _say_placement(self, nodes: Sequence[NodeInfo], placement: Sequence[NodeInfo], pods: int) -> None:
        if not pods:
            return
        if placement:
            where = (f"one per class on each of {', '.join(n.name for n in placement)}: every path is probed "
                     "same-node and cross-node")
        elif nodes:
            where = (f"one node ({nodes[0].name}) can run probe pods: every path is probed same-node only "
                     "(cross-node needs two schedulable nodes)")
        else:
            where = "no node looks schedulable (all tainted, cordoned or not Ready); the scheduler decides"
        self._progress(f"waiting for {pods} probe pod(s) to be ready, {where} "
                       f"(up to {self.options.timeouts.pod_ready_timeout_s:g} s)")

    def apply_policies(self, documents: Iterable[SourceDocument]) -> AppliedPolicies:
        """Apply the policy documents in order, then wait until every deployed pod's endpoint has realized them.

        All documents are checked (policy kinds, apiVersions, names) before the first is applied. The
        wait (``flowcheck.cluster.realization``) targets each agent's revision before applying plus one
        per created policy and per replaced policy whose spec changed, on the endpoints of every pod
        flowcheck will probe -- created and replaced policies alike, and the endpoints' regeneration.
        """
        self._require_owner("apply policies")
        prepared = [kube.prepare_policy(doc, self.run_id) for doc in documents]
        clients = self._clients.get()
        agents = agents_by_node(clients)
        reader = RevisionReader(self._clients.get)
        before = reader.read_all(sorted(agents.values()))
        applied = []
        for policy in prepared:
            result = kube.apply_policy(clients, policy)
            self._ledger.policies.append(result)
            applied.append(result)
            note = "" if result.changed else " (spec unchanged)"
            self._progress(f"{result.outcome} {result.ref}{note}")
        delta = sum(1 for a in applied if a.changed)
        targets = {agent: revision + delta for agent, revision in before.items()}
        self.realization_targets = targets
        wanted = self._endpoints_wanted(agents)
        if wanted:
            timeout = self.options.timeouts.policy_wait_timeout_s
            self._progress(f"waiting until the endpoints of {sum(len(p) for p in wanted.values())} pod(s) have "
                           f"realized {delta} policy change(s) (up to {timeout:g} s)")
            wait_for_endpoints(EndpointReader(self._clients.get), wanted, targets, timeout_s=timeout,
                               clock=self._clock, sleep=self._sleep)
        return AppliedPolicies(tuple(applied), before, targets)

    def _endpoints_wanted(self, agents: Mapping[str, str]) -> dict[str, list[PodRef]]:
        """Every deployed pod (probed from, or probed) by the agent of its node."""
        if self.deployed is None:
            return {}
        wanted: dict[str, list[PodRef]] = {}
        for pod in self.deployed.pods:
            agent = agents.get(pod.node)
            if agent is None:
                raise ClusterError(f"no Running cilium agent on node {pod.node or '?'} of pod {pod.key}: its policy "
                                   "cannot be checked")
            wanted.setdefault(agent, []).append((pod.namespace, pod.pod_name, pod.ip))
        return wanted

    def unrealized(self) -> list[str]:
        """One look: every deployed pod whose endpoint has not realized the revisions ``apply_policies``
        targeted (empty when all have, or when nothing was applied in this run)."""
        if not self.realization_targets or self.deployed is None:
            return []
        clients = self._clients.get()
        return EndpointReader(self._clients.get).unrealized(self._endpoints_wanted(agents_by_node(clients)),
                                                            self.realization_targets)

    def read_denials(self) -> dict[str, NodeDenials]:
        """What each node's agent answers a denial with (``flowcheck.cluster.cilium_config``)."""
        self.denials = read_node_denials(self._clients.get, agents_by_node(self._clients.get()))
        return self.denials

    # -----------------------------------------------------------------------------------------
    # Probing and evidence

    def executor(self, deployed: DeployedTopology | None = None) -> PodExecutor:
        """A ``ProbeExecutor`` running the agent in the probe pods (one ApiClient per thread)."""
        state = deployed or self.deployed
        if state is None:
            raise ClusterError("nothing is deployed yet: call deploy() first")
        return PodExecutor(state, self._api_factory, clock=self._clock)

    def hubble_flows(self, *, since: datetime, until: datetime | None = None,
                     workloads: Sequence[str] | None = None, ports: Sequence[int] = ()) -> list[FlowRecord]:
        """Flows of the probe pods (or of ``workloads``: workloads or pod keys) in the window, from every
        cilium agent; ``ports`` (probes' source ports) narrow them to those connections."""
        if self.deployed is None:
            raise ClusterError("nothing is deployed yet: call deploy() first")
        chosen = [self.deployed.pod(w) for w in workloads] if workloads is not None else self.deployed.probe_pods
        pods = sorted({p.key for p in chosen})
        if not pods:
            return []
        return collect_flows(self._clients.get, agent_pods(self._clients.get()), since=since, until=until, pods=pods,
                             ports=ports)

    def connectivity_test(self, junit_file: Path, *, tests: Sequence[str] = (), flow_validation: str = "disabled",
                          extra_args: Sequence[str] = ()) -> ConnectivityReport:
        """``cilium connectivity test`` with a JUnit file; ``tests`` are ``--test`` filters added to
        ``OFFLINE_TEST_EXCLUSIONS``, which are always kept (kind in CI has no guaranteed internet).

        The suites run it while the repository's policies are applied. flowcheck's namespaced
        policies (NetworkPolicy, CiliumNetworkPolicy) select pods in their own namespaces only, so
        they never select cilium's test pods in the ``cilium-test-*`` namespaces (they can still
        act on the far end of a test's traffic, e.g. an ingress policy on kube-dns in kube-system).
        A CiliumClusterwideNetworkPolicy among the repository's policies selects across namespaces
        and would act on cilium's test pods too, changing the test's verdicts.
        """
        cilium = self._cilium_cli()
        junit_file.parent.mkdir(parents=True, exist_ok=True)
        report = cilium.connectivity_test(junit_file=junit_file, tests=(*OFFLINE_TEST_EXCLUSIONS, *tests),
                                          flow_validation=flow_validation, extra_args=extra_args)
        self._progress(report.summary())
        return report

    def _cilium_cli(self) -> CiliumCli:
        """The session's cilium CLI; a session rebuilt by ``from_state`` finds the tool on first use."""
        if self._cilium is None:
            path = find_tool("cilium", bin_dirs=default_bin_dirs(self.options.setup.repo_root))
            self._cilium = CiliumCli(self._runner, path, context=self.context,
                                     kubeconfig=self.options.target.kubeconfig, progress=self._progress)
        return self._cilium

    # -----------------------------------------------------------------------------------------
    # Teardown

    def __enter__(self) -> LiveCluster:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        # While an exception (or Ctrl-C) propagates, a teardown problem is reported, not raised
        # over it; on a clean exit it is raised.
        self.teardown(failed=exc is not None, quiet=exc is not None)

    def teardown(self, *, failed: bool = False, quiet: bool = False) -> None:
        """Remove what this run created (see the module docstring). Idempotent.

        Raises ``ClusterError`` listing what could not be removed, unless ``quiet`` (then it is
        reported through ``progress``).
        """
        if self._torn_down or not self.owner:
            return
        self._torn_down = True
        problems: list[str] = []
        name = self.options.target.name
        try:
            if failed and self._kind is not None and self.options.target.manages_cluster:
                self._kind.export_logs(name, _logs_dir(self.options, self.run_id))
            if self.created_cluster and not self.options.keep_cluster and self._kind is not None:
                self._progress(f"deleting kind cluster {name}")
                self._step(problems, f"deleting kind cluster {name}", self._require_kind().delete, name)
            else:
                self._remove_created(problems)
        except KeyboardInterrupt:
            self._progress(f"teardown interrupted; remove the leftovers with `flowcheck cleanup --run {self.run_id}`")
            raise
        if problems:
            how = f"flowcheck cleanup --context {self.context} --run {self.run_id}"
            message = ("teardown incomplete:\n" + "\n".join(f"  {p}" for p in problems)
                       + f"\nremove the leftovers with `{how}`")
            if quiet:
                self._progress(message)
            else:
                raise ClusterError(message)

    def _remove_created(self, problems: list[str]) -> None:
        ledger = self._ledger
        if not any((ledger.pods, ledger.policies, ledger.config_maps, ledger.service_accounts, ledger.namespaces)):
            return
        self._progress(f"removing what run {self.run_id} created")
        step = self._step
        for namespace, pod in reversed(ledger.pods):
            step(problems, kube.POD.deleting(namespace, pod), self._delete, kube.POD, namespace, pod)
        if ledger.policies:
            self._remove_policies(problems, ledger.policies)
        for namespace, cm in reversed(ledger.config_maps):
            step(problems, kube.CONFIG_MAP.deleting(namespace, cm), self._delete, kube.CONFIG_MAP, namespace, cm)
        for namespace, account in reversed(ledger.service_accounts):
            step(problems, kube.SERVICE_ACCOUNT.deleting(namespace, account), self._delete, kube.SERVICE_ACCOUNT,
                 namespace, account)
        for outcome in reversed(ledger.namespaces):
            if outcome.added_labels:
                step(problems, f"removing flowcheck's labels from namespace {outcome.name}", self._remove_labels,
                     outcome)
        created = [o.name for o in ledger.namespaces if o.created]
        for namespace in reversed(created):
            step(problems, f"deleting namespace {namespace}", self._delete_namespace, namespace)
        if created:
            self._progress(f"waiting for namespace(s) {', '.join(created)} to be gone")
            step(problems, "waiting for namespaces to be deleted", self._wait_namespaces_gone, created)
        self._ledger = _Ledger()

    def _remove_policies(self, problems: list[str], policies: Sequence[AppliedPolicy]) -> None:
        """Remove (or restore) the run's policies, then wait until every agent's repository has taken the
        removals in (as cilium-cli does after deleting), so a next run's "before" revision counts them."""
        before: dict[str, int] = {}
        reader = RevisionReader(self._clients.get)

        def read_before() -> None:
            before.update(reader.read_all(agent_pods(self._clients.get())))

        self._step(problems, "reading the agents' policy revisions before removing the policies", read_before)
        outcomes: list[str] = []
        for applied in reversed(policies):
            self._step(problems, f"removing {applied.ref}", lambda a=applied: outcomes.append(self._remove_policy(a)))
        removed = sum(1 for outcome in outcomes if outcome != "already gone")  # a missing object bumps nothing
        if before and removed:
            targets = {agent: revision + removed for agent, revision in before.items()}
            self._step(problems, f"waiting for the cilium agents to take in the removal of {removed} polic"
                                 f"{'y' if removed == 1 else 'ies'}", wait_for_revisions, reader, targets,
                       timeout_s=self.options.timeouts.policy_wait_timeout_s, clock=self._clock, sleep=self._sleep)

    def _delete(self, kind: kube.CoreKind, namespace: str, name: str) -> None:
        kind.delete(self._clients.get(), namespace, name)

    def _remove_labels(self, outcome: NamespaceOutcome) -> None:
        kube.remove_added_labels(self._clients.get(), outcome.name, outcome.added_labels, self.run_id)

    def _delete_namespace(self, name: str) -> None:
        kube.delete_namespace(self._clients.get(), name)

    def _remove_policy(self, applied: AppliedPolicy) -> str:
        outcome = kube.remove_policy(self._clients.get(), applied)
        self._progress(f"{outcome} {applied.ref}")
        return outcome

    def _wait_namespaces_gone(self, names: list[str]) -> None:
        kube.wait_namespaces_gone(self._clients.get(), names, timeout_s=self.options.timeouts.namespace_gone_timeout_s,
                                  clock=self._clock, sleep=self._sleep)

    def _step(self, problems: list[str], what: str, action: Callable[..., object], *args: Any, **kwargs: Any) -> None:
        try:
            action(*args, **kwargs)
        except KeyboardInterrupt:
            raise
        except Exception as exc:
            problems.append(f"{what}: {exc}")

    def _require_kind(self) -> Kind:
        if self._kind is None:
            raise ClusterError("no kind CLI in this session")
        return self._kind

    def _require_owner(self, what: str) -> None:
        if not self.owner:
            raise ClusterError(f"this session is attached to another process's deployment and cannot {what}")


def _logs_dir(options: ClusterOptions, run_id: str) -> Path:
    return options.logs_dir or options.setup.repo_root / "flowcheck-report" / f"kind-logs-{run_id}"


def _safe_clusters(kind: Kind) -> list[str]:
    try:
        return kind.clusters()
    except ClusterError:
        return []


def _quietly(say: Progress, what: str, action: Callable[[], object]) -> None:
    say(what)
    try:
        action()
    except ClusterError as exc:
        say(f"{what} failed: {exc}")
