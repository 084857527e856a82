"""``flowcheck cleanup``: find and remove what flowcheck runs left in a cluster.

A run normally removes its own objects; a crash, a killed CI job or an interrupted teardown can
leave some behind. Everything a run creates carries the ``flowcheck.io/run=<run id>`` label --
namespaces, pods, ConfigMaps, service accounts and the policies it applies -- so leftovers are
found by label (all runs, or one with ``--run``) and removed in teardown's order. Two cases are
undone rather than deleted: a policy that replaced a foreign one (its ``flowcheck.io/replaced-
original`` annotation holds the original, which is put back) and labels added to a pre-existing
namespace (listed in its ``flowcheck.io/added-labels.<run>`` annotation, which are removed). The
context guard applies as for the suites: a kind cluster flowcheck manages, or ``--allow-context``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flowcheck.cluster import kube
from flowcheck.cluster.api_errors import ApiError, NotFound
from flowcheck.cluster.guard import check_context_asking_kind
from flowcheck.cluster.kind import Kind, context_for
from flowcheck.cluster.kube import ApiFactory, AppliedPolicy, KubeClients, PolicyObjectRef
from flowcheck.cluster.options import ClusterTarget
from flowcheck.cluster.process import ProcessRunner, SubprocessRunner
from flowcheck.cluster.tools import default_bin_dirs
from flowcheck.errors import ClusterError


@dataclass
class CleanupReport:
    """What ``cleanup`` did (or, with ``dry_run``, would do), and what failed."""

    actions: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def cleanup(clients: KubeClients, *, run_id: str | None = None, dry_run: bool = False,
            progress: Callable[[str], None] = lambda _line: None) -> CleanupReport:
    """Remove the leftovers of run ``run_id`` (or of every flowcheck run) from the cluster."""
    selector = f"{kube.RUN_LABEL}={run_id}" if run_id else kube.RUN_LABEL
    report = CleanupReport()

    def act(description: str, action: Callable[..., object], *args: Any) -> None:
        report.actions.append(description)
        progress(("would " if dry_run else "") + description)
        if dry_run:
            return
        try:
            action(*args)
        except ClusterError as exc:
            report.problems.append(f"{description}: {exc}")

    core = clients.core

    def listing(what: str, fn: Callable[..., Any], **kwargs: Any) -> list[Any]:
        return _items(_list(clients, report, what, fn, **kwargs))

    def remove_leftovers(kind: kube.CoreKind) -> None:
        for obj in listing(kind.plural, kind.list_for_all_namespaces(clients), label_selector=selector):
            ns, name = obj.metadata.namespace, obj.metadata.name
            act(f"delete {kind.noun} {ns}/{name}", kind.delete, clients, ns, name)

    remove_leftovers(kube.POD)
    for applied in _leftover_policies(clients, report, selector):
        verb = "restore the original of" if applied.original_json else "delete"
        act(f"{verb} {applied.ref}", kube.remove_policy, clients, applied)
    remove_leftovers(kube.CONFIG_MAP)
    remove_leftovers(kube.SERVICE_ACCOUNT)
    for ns_obj in listing("namespaces", core.list_namespace):
        for key, value in kube.annotations_of(ns_obj).items():
            if not key.startswith(kube.ADDED_LABELS_ANNOTATION_PREFIX):
                continue
            labelled_by = key[len(kube.ADDED_LABELS_ANNOTATION_PREFIX):]
            if run_id and labelled_by != run_id:
                continue
            keys = tuple(k for k in value.split(",") if k)
            name = ns_obj.metadata.name
            act(f"remove labels {', '.join(keys)} that run {labelled_by} added to namespace {name}",
                kube.remove_added_labels, clients, name, keys, labelled_by)
    for ns_obj in listing("namespaces", core.list_namespace, label_selector=selector):
        name = ns_obj.metadata.name
        act(f"delete namespace {name}", kube.delete_namespace, clients, name)
    return report


def _list(clients: KubeClients, report: CleanupReport, what: str, fn: Callable[..., Any], *args: Any,
          missing_ok: bool = False, **kwargs: Any) -> Any:
    """A listing, or None with the API server's refusal recorded as a problem.

    An API server that cannot be reached stops the cleanup at once with one error naming the
    context, instead of one problem per kind of object. With ``missing_ok`` a 404 (the resource
    type does not exist, e.g. Cilium's CRDs are not installed) is None without a problem.
    """
    try:
        return kube.call(clients, f"listing {what}", fn, *args, **kwargs)
    except ApiError as exc:  # ApiUnreachable is not one: it ends the cleanup
        if not (missing_ok and isinstance(exc, NotFound)):
            report.problems.append(str(exc))
        return None


def _items(listing: Any) -> list[Any]:
    if listing is None:
        return []
    if isinstance(listing, dict):
        return list(listing.get("items") or [])
    return list(getattr(listing, "items", None) or [])


def _leftover_policies(clients: KubeClients, report: CleanupReport, selector: str) -> list[AppliedPolicy]:
    found: list[AppliedPolicy] = []
    listing = _list(clients, report, "NetworkPolicies", clients.networking.list_network_policy_for_all_namespaces,
                    label_selector=selector)
    for obj in _items(listing):
        found.append(_leftover("NetworkPolicy", obj.metadata.namespace, obj.metadata.name, obj))
    for kind in ("CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy"):
        spec = kube.POLICY_KINDS[kind]
        # missing_ok: without Cilium's CRDs nothing of this kind can be left over
        listing = _list(clients, report, f"{kind}s", clients.custom.list_cluster_custom_object, kube.CILIUM_GROUP,
                        kube.CILIUM_VERSION, spec.plural, missing_ok=True, label_selector=selector)
        for obj in _items(listing):
            meta = obj.get("metadata") or {}
            found.append(_leftover(kind, meta.get("namespace") if spec.namespaced else None, str(meta.get("name")),
                                   obj))
    return found


def _leftover(kind: str, namespace: str | None, name: str, obj: Any) -> AppliedPolicy:
    original = kube.original_from_annotation(obj)
    return AppliedPolicy(PolicyObjectRef(kind, namespace, name), "leftover", "cleanup",
                         json.dumps(original, sort_keys=True) if original is not None else None)


@dataclass(frozen=True, slots=True)
class CleanupOutcome:
    """The context that was cleaned and what was (or, with ``dry_run``, would be) done there."""

    context: str
    report: CleanupReport


def clean_up_cluster(target: ClusterTarget, *, run_id: str | None = None, dry_run: bool = False,
                     progress: Callable[[str], None] = lambda _line: None, runner: ProcessRunner | None = None,
                     api_factory: ApiFactory | None = None, repo_root: Path | None = None) -> CleanupOutcome:
    """Pass the context guard, then ``cleanup`` the target's context (flowcheck's kind cluster
    ``target.name`` unless ``target.context`` names another, which needs ``allow_context``).

    Raises ``ContextRefused`` for a context that is not flowcheck's and not allowed, ``ClusterError``
    when the cluster cannot be reached.
    """
    bin_dirs = default_bin_dirs(repo_root or Path.cwd())
    context, _kind = check_context_asking_kind(
        target.context or context_for(target.name), cluster_name=target.name,
        allow_context=target.allow_context,
        kind=lambda: Kind.find(runner or SubprocessRunner(), bin_dirs=bin_dirs, kubeconfig=target.kubeconfig))
    clients = (api_factory or kube.client_factory(context, target.kubeconfig))()
    return CleanupOutcome(context, cleanup(clients, run_id=run_id, dry_run=dry_run, progress=progress))
