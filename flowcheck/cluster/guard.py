"""The context guard: flowcheck touches only a kind cluster it created or reused, unless told otherwise.

The live suites deploy pods, apply policies and delete namespaces; pointed at the wrong cluster
that would be damage. So a context is accepted only when

* it is ``kind-<name>`` for the cluster name flowcheck was given AND ``kind get clusters`` lists
  that name (kind created it; flowcheck created or reused it), or
* the user passed ``--allow-context`` naming exactly this context (e.g. a staging cluster before
  a Cilium upgrade).

There is no implicit default: flowcheck never picks up the kubeconfig's current context.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from flowcheck.cluster.kind import Kind, context_for
from flowcheck.errors import ContextRefused, ToolMissing


def check_context(context: str | None, *, cluster_name: str, kind_clusters: Sequence[str] | None,
                  allow_context: str | None = None) -> str:
    """Return ``context`` when flowcheck may use it; raise ``ContextRefused`` saying why not.

    ``kind_clusters`` is what ``kind get clusters`` listed (None when kind was not consulted).
    """
    if not context:
        raise ContextRefused("", "no kube context was named, and flowcheck never uses the kubeconfig's current "
                                 "context implicitly")
    if allow_context is not None:
        if allow_context == context:
            return context
        raise ContextRefused(context, f"--allow-context names {allow_context!r}, not this context")
    expected = context_for(cluster_name)
    if context != expected:
        raise ContextRefused(context, f"it is not {expected!r}, the context of the kind cluster {cluster_name!r} "
                                      "flowcheck manages")
    if kind_clusters is None:
        raise ContextRefused(context, "kind was not available to confirm that this is a kind cluster flowcheck "
                                      "created or reused")
    if cluster_name not in kind_clusters:
        listed = ", ".join(kind_clusters) if kind_clusters else "none"
        raise ContextRefused(context, f"`kind get clusters` does not list {cluster_name!r} (it lists: {listed}), so "
                                      "this is not a kind cluster flowcheck created or reused")
    return context


def check_context_asking_kind(context: str, *, cluster_name: str, allow_context: str | None,
                              kind: Callable[[], Kind], need_kind: bool = False) -> tuple[str, Kind | None]:
    """``check_context``, consulting ``kind get clusters`` only when the answer depends on it.

    An ``allow_context`` naming exactly ``context`` is the whole answer: kind is not asked (the
    context need not be a kind cluster, nor kind be installed) unless ``need_kind`` (the caller
    will delete the kind cluster later). Otherwise the context must be a kind cluster flowcheck
    manages, and a missing kind CLI leaves that unconfirmed: refused, saying how to get kind.
    ``kind`` builds the ``Kind`` (finding the tool may raise ``ToolMissing``). Returns the context
    and the ``Kind`` it asked (None when it did not, or kind is missing).
    """
    found: Kind | None = None
    clusters: list[str] | None = None
    missing: ToolMissing | None = None
    if allow_context != context or need_kind:
        try:
            found = kind()
            clusters = found.clusters()
        except ToolMissing as exc:
            found, missing = None, exc
    try:
        return check_context(context, cluster_name=cluster_name, kind_clusters=clusters,
                             allow_context=allow_context), found
    except ContextRefused as refused:
        if missing is None or clusters is not None:
            raise
        raise ContextRefused(context, f"{refused.reason} ({missing})") from None
