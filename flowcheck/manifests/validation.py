"""Offline schema validation of policy manifests, before any cluster sees them.

Core objects (NetworkPolicy, Namespace, ...) are checked against Kubernetes' own OpenAPI schemas
through ``kubernetes-validate`` in strict mode; Cilium objects against the ``openAPIV3Schema`` of
Cilium's CRDs, bundled in ``schemas/`` (see ``schemas/SOURCE.txt``). The API server prunes or
rejects unknown fields of a structural CRD schema (kubectl's strict field validation), so the CRD
schema is made strict here the same way: every object node with declared ``properties`` refuses
other keys. It also prunes null values of fields the schema does not declare nullable before
validating, so a Cilium object is checked with its nulls dropped (``fromEndpoints:`` with no value
is a missing field, not a type error). Every finding names the file, the document index and the field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate.utils as kubernetes_validate_utils
import referencing

from flowcheck.errors import PolicyError
from flowcheck.manifests.documents import KUSTOMIZATION_FILES, SourceDocument, read_documents, rendering_notes
from flowcheck.manifests.field_path import format_field_path, join
from flowcheck.manifests.kinds import (
    CILIUM_API_VERSION,
    CILIUM_POLICY_KINDS,
    CILIUM_REMOVED_FIELDS,
    NETWORK_POLICY_API_VERSION,
    NETWORK_POLICY_KIND,
    missing_cilium_spec,
    without_nulls,
)

# The Kubernetes minor of the pinned kind's default node image (kind v0.32: kindest/node v1.36.1);
# NetworkPolicy's schema has been stable since 1.8, so any recent minor gives the same answers for
# the kinds we care about. kubernetes-validate bundles a minor's schemas from its own 1.<minor>
# release on (hence its floor in pyproject.toml).
KUBERNETES_SCHEMA_VERSION = "1.36"

_MAX_VALUE_CHARS = 80

# What the API server accepts as a kind and an apiVersion (a CRD's lower-cased kind and its version
# names are DNS-1035 labels, its group a DNS-1123 subdomain). Checked before kubernetes-validate sees
# them: it builds a schema file name from both, so anything else would reach the file system (a '/',
# a NUL byte, a name longer than a file name may be) instead of being refused as bad input.
_DNS1035_LABEL = r"[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?"
_DNS1123_LABEL = r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?"
_KIND = re.compile(_DNS1035_LABEL)
_API_VERSION = re.compile(rf"(?:(?=[^/]{{1,253}}/){_DNS1123_LABEL}(?:\.{_DNS1123_LABEL})*/)?{_DNS1035_LABEL}")


@dataclass(frozen=True, slots=True)
class ValidationReport:
    """What validating some paths found: errors (the manifest is wrong) and notes (not checked)."""

    checked: tuple[str, ...]
    errors: tuple[PolicyError, ...]
    notes: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.errors


def validate_paths(paths: Sequence[str | Path], *, keep: list[SourceDocument] | None = None) -> ValidationReport:
    """Validate every object under ``paths``; a file that cannot be read is one error, not a crash.

    A path that holds no object is an error (a mistyped or empty path would otherwise "pass" having
    checked nothing), and so is an object defined twice (the same kind, namespace and name): the
    cluster keeps only the last one applied. ``keep`` receives the documents read.
    """
    checked: list[str] = []
    errors: list[PolicyError] = []
    notes: list[str] = []
    seen: dict[tuple[str, str, str], str] = {}
    for path in paths:
        try:
            documents = list(read_documents([path]))
        except PolicyError as exc:
            errors.append(exc)
            continue
        if not documents and not (Path(path).is_file() and Path(path).name in KUSTOMIZATION_FILES):
            errors.append(PolicyError(str(path), None, "", "holds no Kubernetes object: an empty or mistyped path "
                                                           "checks nothing"))
        if keep is not None:
            keep.extend(documents)
        notes.extend(rendering_notes(documents))
        for doc in documents:
            checked.append(f"{doc.path}#{doc.index}")
            found, note = validate_document(doc)
            errors.extend(found)
            if note:
                notes.append(note)
            duplicate = _duplicate(doc, seen)
            if duplicate is not None:
                errors.append(duplicate)
    return ValidationReport(tuple(checked), tuple(errors), tuple(notes))


def _duplicate(doc: SourceDocument, seen: dict[tuple[str, str, str], str]) -> PolicyError | None:
    """The error for a second object with the same kind, namespace and name (None for the first)."""
    meta = doc.body.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    if not isinstance(name, str) or not name or not doc.kind:
        return None  # reported by the schema check
    namespace = meta.get("namespace") if isinstance(meta, dict) else None
    key = (doc.kind, namespace if isinstance(namespace, str) else "", name)
    where = f"{doc.path} (document {doc.index}{'' if doc.item is None else f', item {doc.item}'})"
    if key in seen:
        shown = f"{key[1]}/{name}" if key[1] else name
        return doc.error("metadata.name", f"{doc.kind} {shown} is defined twice (also in {seen[key]}); the cluster "
                                          "would keep only the last one applied")
    seen[key] = where
    return None


def validate_document(doc: SourceDocument) -> tuple[list[PolicyError], str | None]:
    """Validate one object; returns its errors and, when it could not be checked, a note saying why."""
    body = doc.body
    kind, api_version = body.get("kind"), body.get("apiVersion")
    if not isinstance(kind, str) or not kind:
        return [doc.error("kind", "missing: every Kubernetes object needs a kind")], None
    if not isinstance(api_version, str) or not api_version:
        return [doc.error("apiVersion", "missing: every Kubernetes object needs an apiVersion")], None
    if not _KIND.fullmatch(kind.lower()):
        return [doc.error("kind", f"{_show(kind)} is not a Kubernetes kind (a letter, then letters, digits or '-'; "
                                  "at most 63 characters)")], None
    if not _API_VERSION.fullmatch(api_version):
        return [doc.error("apiVersion", f"{_show(api_version)} is not a Kubernetes apiVersion (VERSION or "
                                        "GROUP/VERSION, e.g. networking.k8s.io/v1)")], None
    if kind in CILIUM_POLICY_KINDS:
        return _validate_cilium(doc, api_version), None
    if kind == NETWORK_POLICY_KIND and api_version != NETWORK_POLICY_API_VERSION:
        # as for Cilium's kinds, and as the policy loader says: the one version the API server serves
        served = f"{_show(api_version)} is not served; NetworkPolicy is {NETWORK_POLICY_API_VERSION}"
        return [doc.error("apiVersion", served)], None
    validator = _kubernetes_validator(kind, api_version)
    if validator is None:
        return [], f"{doc.path} (document {doc.index}): {kind} {api_version} has no bundled schema; not validated"
    try:
        validator.validate(body)
    except jsonschema.ValidationError as exc:
        return [_to_policy_error(doc, exc)], None
    return [], None


@lru_cache(maxsize=64)  # the kinds of one repository; bounded, as kind and apiVersion come from its files
def _kubernetes_validator(kind: str, api_version: str) -> jsonschema.protocols.Validator | None:
    """kubernetes-validate's strict validator for ``kind`` in ``api_version``, built once; None without a schema.

    ``kubernetes_validate.validate(body, version, strict=True)`` does exactly this per call --
    including reading and parsing its 1.6 MB ``_definitions.json`` again for every document. Here
    the same files (chosen as it chooses them: kubernetes_validate/utils.py, ``validate``) are read
    once per kind and the definitions once per run, and the same validator class checks each
    document, so the findings are the same.
    """
    schema_dir = _kubernetes_schema_dir()
    # as kubernetes-validate names its files: rbac.authorization.k8s.io/v1 -> rbac-v1
    schema_api_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    try:
        schema = kubernetes_validate_utils.schema_contents(
            f"kubernetes-json-schema/{schema_dir}/{kind.lower()}-{schema_api_version}.json", KUBERNETES_SCHEMA_VERSION)
    except FileNotFoundError:
        return None
    registry: referencing.Registry[Any] = referencing.Resource.from_contents(schema) @ _kubernetes_definitions()
    return jsonschema.Draft202012Validator(schema, registry=registry)


@cache
def _kubernetes_schema_dir() -> str:
    """The strict schema directory kubernetes-validate picks for ``KUBERNETES_SCHEMA_VERSION``: the newest
    bundled version not newer than it (kubernetes_validate/utils.py, ``validate``)."""
    wanted = kubernetes_validate_utils.major_minor(KUBERNETES_SCHEMA_VERSION)
    version = [v for v in kubernetes_validate_utils.all_versions()
               if kubernetes_validate_utils.major_minor(v) <= wanted][-1]
    return f"v{version}-local-strict"


@cache
def _kubernetes_definitions() -> referencing.Registry[Any]:
    """The shared ``_definitions.json`` every kind's schema refers to, parsed once."""
    definitions = kubernetes_validate_utils.schema_contents(
        f"kubernetes-json-schema/{_kubernetes_schema_dir()}/_definitions.json", KUBERNETES_SCHEMA_VERSION)
    return referencing.Resource.from_contents(definitions) @ referencing.Registry()


def _validate_cilium(doc: SourceDocument, api_version: str) -> list[PolicyError]:
    if api_version != CILIUM_API_VERSION:
        return [doc.error("apiVersion", f"{api_version!r} is not served; {doc.kind} is {CILIUM_API_VERSION}")]
    body = without_nulls(doc.body)  # what the API server stores: nulls of non-nullable fields pruned
    errors = [_to_policy_error(doc, e) for e in _cilium_validator().iter_errors(body)]
    missing = missing_cilium_spec(doc, body)
    if missing is not None:
        errors.append(missing)
    return sorted(errors, key=lambda e: e.field)


@cache
def _cilium_validator() -> jsonschema.protocols.Validator:
    text = resources.files("flowcheck.manifests").joinpath("schemas/cilium-policy-v2.openapi.json").read_text()
    schema = _strict_structural(json.loads(text))
    return jsonschema.Draft7Validator(schema)


def _strict_structural(node: dict[str, Any]) -> dict[str, Any]:
    """Copy of a structural schema where object nodes with ``properties`` refuse unknown keys.

    Only nodes reached through ``properties``/``items``/``additionalProperties`` are structural;
    the small schemas inside ``oneOf``/``anyOf`` only state which keys are required and are left alone.
    """
    out = dict(node)
    props = node.get("properties")
    if isinstance(props, dict):
        out["properties"] = {k: _strict_structural(v) for k, v in props.items()}
        if "additionalProperties" not in node and not node.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
    for key in ("items", "additionalProperties"):
        child = node.get(key)
        if isinstance(child, dict):
            out[key] = _strict_structural(child)
    return out


def _to_policy_error(doc: SourceDocument, exc: jsonschema.ValidationError) -> PolicyError:
    field = format_field_path(exc.absolute_path)
    if exc.validator == "additionalProperties" and isinstance(exc.instance, dict) and isinstance(exc.schema, dict):
        allowed = set(exc.schema.get("properties", {}))
        unknown = sorted((k for k in exc.instance if k not in allowed), key=str)  # YAML keys may be ints
        removed = [k for k in unknown if k in CILIUM_REMOVED_FIELDS] if doc.kind in CILIUM_POLICY_KINDS else []
        if removed:  # a field Cilium removed: say so, and what to write instead
            return doc.error(join(field, removed[0]), CILIUM_REMOVED_FIELDS[removed[0]])
        if unknown:
            # Not ``join``: an int key (YAML ``1: x``) must keep rendering as ``spec.1``, not ``spec[1]``.
            where = f"{field}.{unknown[0]}" if field else str(unknown[0])
            known = ", ".join(sorted(allowed))
            return doc.error(where, f"unknown field {unknown[0]!r} (known fields here: {known})")
    if exc.validator in ("oneOf", "anyOf") and isinstance(exc.validator_value, list):
        names = [name for sub in exc.validator_value for name in sub.get("required", [])]
        if names:
            how = "exactly one" if exc.validator == "oneOf" else "at least one"
            return doc.error(field, f"needs {how} of: {', '.join(names)}")
    if exc.validator == "required" and isinstance(exc.validator_value, list):
        missing = [k for k in exc.validator_value if isinstance(exc.instance, dict) and k not in exc.instance]
        if missing:
            return doc.error(join(field, missing[0]), "missing required field")
    return doc.error(field, _shorten(exc.message))


def _show(value: str) -> str:
    """A user's string in a one-line message: quoted (control characters escaped) and cut short."""
    text = repr(value)
    return text if len(text) <= _MAX_VALUE_CHARS else text[: _MAX_VALUE_CHARS - 3] + "..."


def _shorten(message: str) -> str:
    first = message.splitlines()[0] if message else message
    return first if len(first) <= 2 * _MAX_VALUE_CHARS else first[: 2 * _MAX_VALUE_CHARS] + "..."
