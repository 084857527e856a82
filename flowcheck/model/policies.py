"""Load policies from files and directories into a typed ``PolicySet``.

Builds on ``read_documents`` (files, directories, multi-document YAML, ``List`` objects,
kustomizations) so there is one reader for validation and for the model. Each NetworkPolicy,
CiliumNetworkPolicy and CiliumClusterwideNetworkPolicy is first checked against its schema (the
same strict check ``flowcheck validate`` runs: an unknown or misspelt field would otherwise be
silently ignored and change a verdict), then parsed. Other kinds are ignored with a note; a
namespaced policy without a namespace is placed in ``default`` (what ``kubectl apply`` does with
the default context) with a note.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from flowcheck.errors import PolicyError
from flowcheck.manifests.documents import SourceDocument, read_documents, rendering_notes
from flowcheck.manifests.kinds import POLICY_API_VERSIONS as _POLICY_KINDS
from flowcheck.manifests.validation import validate_document
from flowcheck.model import parse_cilium, parse_knp
from flowcheck.model.policy import Policy, PolicySet

DEFAULT_NAMESPACE = "default"


def load_policies(paths: Sequence[str | Path], *, validate: bool = True,
                  keep: list[SourceDocument] | None = None) -> PolicySet:
    """Every policy under ``paths``; ``PolicyError`` (file, document, field) for a malformed one.

    A path under which there is no policy at all is an error too: an empty or mistyped policies path
    would otherwise check nothing and plan every path allowed. ``keep`` receives every document read
    (a caller that also applies them to a cluster). Notes say which renderer read each kustomization.
    """
    read: list[SourceDocument] = [] if keep is None else keep

    def reading() -> Iterator[SourceDocument]:
        # Documents are read as they are parsed, so a malformed document is reported before a later
        # file that cannot be read.
        for path in paths:
            found = 0
            for doc in read_documents([path]):
                read.append(doc)
                found += doc.kind in _POLICY_KINDS
                yield doc
            if not found:
                raise PolicyError(str(path), None, "", f"no {', '.join(_POLICY_KINDS)} here: an empty or "
                                                       "mistyped policies path would check nothing and plan every "
                                                       "path allowed")

    return parse_policies(reading(), validate=validate)


def parse_policies(documents: Iterable[SourceDocument], *, validate: bool = True) -> PolicySet:
    """The policies among already-read ``documents`` (for a caller that also applies them to a cluster);
    the notes say what was ignored, and which renderer read each kustomization."""
    policies: list[Policy] = []
    notes: list[str] = []
    seen: dict[tuple[str, str | None, str], str] = {}
    read: list[SourceDocument] = []
    for doc in documents:
        read.append(doc)
        policy = parse_document(doc, notes, validate=validate)
        if policy is None:
            continue
        key = (policy.ref.kind.value, policy.ref.namespace, policy.ref.name)
        where = f"{doc.path} (document {doc.index})"
        if key in seen:
            raise doc.error("metadata.name", f"{policy.ref.describe()} is defined twice (also in {seen[key]}); "
                                             "the cluster would keep only the last one applied")
        seen[key] = where
        policies.append(policy)
    return PolicySet(tuple(policies), (*rendering_notes(read), *notes))


def parse_document(doc: SourceDocument, notes: list[str], *, validate: bool = True) -> Policy | None:
    """One document -> a typed policy, or None (with a note) for a kind the model does not read."""
    body = doc.body
    kind = body.get("kind")
    where = f"{doc.path} (document {doc.index}{'' if doc.item is None else f', item {doc.item}'})"
    if not isinstance(kind, str) or not kind:
        raise doc.error("kind", "missing: every Kubernetes object needs a kind")
    if kind not in _POLICY_KINDS:
        notes.append(f"{where}: {kind} {doc.name} ignored (not a network policy)")
        return None
    api_version = body.get("apiVersion")
    if api_version != _POLICY_KINDS[kind]:
        raise doc.error("apiVersion", f"expected {_POLICY_KINDS[kind]} for a {kind}, got {api_version!r}")
    meta = body.get("metadata")
    if not isinstance(meta, dict):
        raise doc.error("metadata", "missing: a policy needs metadata.name")
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        raise doc.error("metadata.name", "missing: a policy needs a name")
    if validate:
        errors, _ = validate_document(doc)
        if errors:
            raise errors[0]
    namespace: str | None = None
    if kind != "CiliumClusterwideNetworkPolicy":
        raw_ns = meta.get("namespace")
        if raw_ns is None:
            namespace = DEFAULT_NAMESPACE
            notes.append(f"{where}: {kind} {name} has no metadata.namespace; assumed {DEFAULT_NAMESPACE!r} "
                         "(what kubectl apply does with the default context)")
        elif isinstance(raw_ns, str) and raw_ns:
            namespace = raw_ns
        else:
            raise doc.error("metadata.namespace", "expected a namespace name")
    try:
        if kind == "NetworkPolicy":
            assert namespace is not None
            return parse_knp.parse_network_policy(doc, namespace)
        return parse_cilium.parse_cilium_policy(doc, namespace)
    except RecursionError:
        raise doc.error("", "document nested too deeply") from None


__all__ = ["PolicySet", "load_policies", "parse_document", "parse_policies"]
