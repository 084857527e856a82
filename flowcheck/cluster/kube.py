"""The Kubernetes API through the official ``kubernetes`` client: clients, namespaces, policies.

Why it is shaped like this:

* ``KubeClients`` bundles the API objects built on ONE ``ApiClient``. ``kubernetes.stream.stream``
  temporarily swaps a method of the ``ApiClient`` it is given, so two threads exec'ing through a
  shared client corrupt each other's requests (kubernetes-client/python#928). ``PerThreadClients``
  therefore builds one bundle per thread from a factory; tests pass a factory returning fakes.
* The kube context is always named explicitly: flowcheck never falls back to the kubeconfig's
  current context (see ``guard``).
* Policies are created, or replaced on 409 with the live object's ``resourceVersion``. Every object
  flowcheck applies carries the ``flowcheck.io/run`` label, so leftovers can be found later. When
  the object flowcheck replaces was not flowcheck's (for example the real policy on a staging
  cluster run with ``--allow-context``), its original is kept -- in memory and in the
  ``flowcheck.io/replaced-original`` annotation -- and restored instead of deleted afterwards.
* Namespaces flowcheck creates carry the run label and are deleted afterwards. Namespaces that
  already exist (``default``, ``kube-system``, ...) are never deleted: labels the topology needs and
  they lack are added and recorded in a ``flowcheck.io/added-labels.<run>`` annotation, and removed
  again afterwards; a label the namespace carries with a *different* value is an error (flowcheck
  does not rewrite labels other policies may select on).
* API errors become typed ``ClusterError``s (``flowcheck.cluster.api_errors``: ``NotFound``,
  ``Conflict``, ``Invalid``, ... by status, with the ``Status`` body) naming what was being done
  and quoting the API server's own message, never an ``ApiException`` dump. An API server that
  cannot be reached raises no ``ApiException`` at all: the REST calls and watches raise urllib3's
  ``HTTPError`` subclasses (``MaxRetryError`` when nothing answers the connection, ``ProtocolError``
  when it breaks, ``ReadTimeoutError``), and exec wraps its websocket's connection error in an
  ``ApiException`` without a status. Both become ``ApiUnreachable`` naming what was being done, the
  kube context and the server. Every API call goes through ``call`` (or ``create_or_conflict``,
  ``delete_ignoring_missing``, ``read_or_none`` built on it), and code that must call the client
  itself (exec, watches) translates with ``api_error``, so a caller -- and a retry loop waiting on
  ``ClusterError`` -- never sees a raw client exception and never tests a status number.
"""

from __future__ import annotations

import contextlib
import copy
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from flowcheck.cluster.api_errors import ApiError, ApiUnreachable, Conflict, NotFound
from flowcheck.errors import ClusterError
from flowcheck.manifests.documents import SourceDocument
from flowcheck.manifests.kinds import (
    CILIUM_API_VERSION,
    CILIUM_CLUSTERWIDE_POLICY_KIND,
    CILIUM_NETWORK_POLICY_KIND,
    NETWORK_POLICY_KIND,
    POLICY_API_VERSIONS,
)

RUN_LABEL = "flowcheck.io/run"
ADDED_LABELS_ANNOTATION_PREFIX = "flowcheck.io/added-labels."
REPLACED_ORIGINAL_ANNOTATION = "flowcheck.io/replaced-original"
IMPLIED_NAMESPACE_LABEL = "kubernetes.io/metadata.name"  # set by the API server on every namespace
MERGE_PATCH = "application/merge-patch+json"
CILIUM_GROUP, CILIUM_VERSION = CILIUM_API_VERSION.split("/")  # the custom objects API takes them apart
NAMESPACE_GONE_TIMEOUT_S = 180.0
REPLACE_ATTEMPTS = 3  # a replace can race another writer (409 on a stale resourceVersion)


# ---------------------------------------------------------------------------------------------
# Clients


@dataclass(frozen=True, slots=True)
class KubeClients:
    """The API objects of one ``ApiClient`` (use them from one thread only)."""

    core: Any  # kubernetes.client.CoreV1Api
    apps: Any  # kubernetes.client.AppsV1Api
    networking: Any  # kubernetes.client.NetworkingV1Api
    custom: Any  # kubernetes.client.CustomObjectsApi
    watch: Callable[[], Any]  # kubernetes.watch.Watch
    stream: Callable[..., Any]  # kubernetes.stream.stream
    context: str = ""  # the kube context they talk to, for error messages
    server: str = ""  # its API server's URL (from the kubeconfig), for error messages


ApiFactory = Callable[[], KubeClients]


def client_factory(context: str, kubeconfig: str | None = None) -> ApiFactory:
    """A factory building a fresh ``ApiClient`` for ``context`` on every call (one per thread)."""
    if not context:
        raise ClusterError("no kube context given: flowcheck never uses the kubeconfig's current context implicitly")

    def make() -> KubeClients:
        from kubernetes import client, config, stream, watch

        loader: Any = config  # the kubeconfig loader is untyped
        try:
            api_client = loader.new_client_from_config(config_file=kubeconfig, context=context)
        except (loader.ConfigException, OSError, KeyError, ValueError) as exc:
            where = kubeconfig or "the default kubeconfig ($KUBECONFIG or ~/.kube/config)"
            raise ClusterError(f"cannot load kube context {context!r} from {where}: {exc}") from exc
        return KubeClients(core=client.CoreV1Api(api_client), apps=client.AppsV1Api(api_client),
                           networking=client.NetworkingV1Api(api_client),
                           custom=client.CustomObjectsApi(api_client), watch=watch.Watch, stream=stream.stream,
                           context=context, server=str(getattr(api_client.configuration, "host", "") or ""))

    return make


class PerThreadClients:
    """One ``KubeClients`` per thread, built lazily from ``factory``."""

    def __init__(self, factory: ApiFactory) -> None:
        self._factory = factory
        self._local = threading.local()

    def get(self) -> KubeClients:
        clients: KubeClients | None = getattr(self._local, "clients", None)
        if clients is None:
            clients = self._factory()
            self._local.clients = clients
        return clients


# ---------------------------------------------------------------------------------------------
# API errors


def _api_exception_type() -> type[BaseException]:
    from kubernetes.client.exceptions import ApiException

    exc_type: type[BaseException] = ApiException
    return exc_type


def _client_errors() -> tuple[type[BaseException], ...]:
    """What a failed API call raises: the API server's answer, or urllib3's connection errors."""
    from urllib3.exceptions import HTTPError

    return (_api_exception_type(), HTTPError)


def _is_unreachable(exc: BaseException) -> bool:
    """True when ``exc`` means no answer came from the API server (see the module docstring)."""
    from urllib3.exceptions import HTTPError

    if isinstance(exc, HTTPError):
        return True
    if isinstance(exc, _api_exception_type()) and not getattr(exc, "status", None):
        # The client wraps exec's websocket failures (and TLS failures) in ApiException(status=0);
        # what it wrapped tells a server that was never reached from one that refused the request.
        from websocket import (
            WebSocketAddressException,
            WebSocketConnectionClosedException,
            WebSocketProxyException,
            WebSocketTimeoutException,
        )

        inner = exc.__cause__ or exc.__context__
        return isinstance(inner, (OSError, HTTPError, WebSocketAddressException, WebSocketConnectionClosedException,
                                  WebSocketProxyException, WebSocketTimeoutException))
    return False


def api_error(clients: KubeClients, action: str, exc: BaseException) -> ApiError | ApiUnreachable | None:
    """The typed error for a failed API call (``action``: what was being done), or None when ``exc``
    is not one (a bug, a ``ValueError`` from the client's own checks, ...): the one place client
    exceptions are read."""
    if _is_unreachable(exc):
        pool = getattr(exc, "pool", None)  # MaxRetryError and the timeouts name the server they tried
        server = f"{pool.scheme}://{pool.host}:{pool.port}" if pool is not None else clients.server
        return ApiUnreachable(action, context=clients.context, server=server, problem=_connection_problem(exc))
    if not isinstance(exc, _api_exception_type()):
        return None
    status = int(getattr(exc, "status", None) or 0)
    reason = str(getattr(exc, "reason", None) or "")
    body = getattr(exc, "body", None)
    message = ""
    payload: dict[str, Any] | None = None
    if body:
        try:
            parsed = json.loads(body)
        except (TypeError, ValueError):
            message = str(body).strip()
        else:
            if isinstance(parsed, dict):
                payload = parsed
                message = str(parsed.get("message") or "")
                reason = str(parsed.get("reason") or reason)
    return ApiError.for_status(status)(action, status, reason, message, payload=payload, context=clients.context)


def _connection_problem(exc: BaseException) -> str:
    """What went wrong with the connection, without urllib3's connection-pool preamble."""
    inner = getattr(exc, "reason", None)  # MaxRetryError: the last attempt's error
    if isinstance(inner, BaseException):
        exc = inner
    elif isinstance(inner, str) and inner:  # ApiException(status=0): the wrapped error's text
        return " ".join(inner.split())
    args = [a for a in exc.args if a]
    text = " ".join(str(a) for a in args) if len(args) > 1 else str(exc)
    head, sep, rest = text.partition("): ")
    return rest if sep and "(host=" in head else (text or type(exc).__name__)


def call(clients: KubeClients, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call an API method; a failure becomes an ``ApiError`` subclass or ``ApiUnreachable`` (``api_error``)."""
    try:
        return fn(*args, **kwargs)
    except _client_errors() as exc:
        error = api_error(clients, what, exc)
        if error is None:
            raise
        raise error from exc


def delete_ignoring_missing(clients: KubeClients, what: str, fn: Callable[..., Any], *args: Any,
                            **kwargs: Any) -> bool:
    """Delete something; False when it was already gone (404)."""
    try:
        call(clients, what, fn, *args, **kwargs)
    except NotFound:
        return False
    return True


def create_or_conflict(clients: KubeClients, what: str, fn: Callable[..., Any], *args: Any,
                       **kwargs: Any) -> Conflict | None:
    """Create something; None when it was created, the API server's 409 when it already exists.

    The conflict is returned, not raised, so that each caller decides what "already there" means
    (as good, a clash to explain, a concurrent create) and can still quote or chain it.
    """
    try:
        call(clients, what, fn, *args, **kwargs)
    except Conflict as conflict:
        return conflict
    return None


def read_or_none(clients: KubeClients, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Read something; None when it does not exist (404)."""
    try:
        return call(clients, what, fn, *args, **kwargs)
    except NotFound:
        return None


@dataclass(frozen=True, slots=True)
class CoreKind:
    """A namespaced core/v1 kind a run creates (beside namespaces and policies), as teardown and
    ``flowcheck cleanup`` name, list and delete it."""

    noun: str  # in messages: "deleting pod ns/name"
    plural: str  # in messages: "listing pods"
    api_name: str  # CoreV1Api's name for it: delete_namespaced_<api_name>, list_<api_name>_for_all_namespaces

    def deleting(self, namespace: str, name: str) -> str:
        return f"deleting {self.noun} {namespace}/{name}"

    def delete(self, clients: KubeClients, namespace: str, name: str) -> bool:
        """Delete ``namespace/name``; False when it was already gone."""
        return delete_ignoring_missing(clients, self.deleting(namespace, name),
                                       getattr(clients.core, f"delete_namespaced_{self.api_name}"), name, namespace)

    def list_for_all_namespaces(self, clients: KubeClients) -> Callable[..., Any]:
        method: Callable[..., Any] = getattr(clients.core, f"list_{self.api_name}_for_all_namespaces")
        return method


POD = CoreKind("pod", "pods", "pod")
CONFIG_MAP = CoreKind("ConfigMap", "ConfigMaps", "config_map")
SERVICE_ACCOUNT = CoreKind("service account", "service accounts", "service_account")


def labels_of(obj: Any) -> dict[str, str]:
    """``metadata.labels`` of a typed object or a plain dict."""
    if isinstance(obj, dict):
        labels = (obj.get("metadata") or {}).get("labels")
    else:
        labels = getattr(getattr(obj, "metadata", None), "labels", None)
    return dict(labels or {})


def annotations_of(obj: Any) -> dict[str, str]:
    if isinstance(obj, dict):
        annotations = (obj.get("metadata") or {}).get("annotations")
    else:
        annotations = getattr(getattr(obj, "metadata", None), "annotations", None)
    return dict(annotations or {})


def resource_version_of(obj: Any) -> str | None:
    if isinstance(obj, dict):
        rv = (obj.get("metadata") or {}).get("resourceVersion")
    else:
        rv = getattr(getattr(obj, "metadata", None), "resource_version", None)
    return str(rv) if rv else None


def generation_of(obj: Any) -> int | None:
    """``metadata.generation``: the API server bumps it when the spec changes, not for labels or status."""
    if isinstance(obj, dict):
        generation = (obj.get("metadata") or {}).get("generation")
    else:
        generation = getattr(getattr(obj, "metadata", None), "generation", None)
    return generation if isinstance(generation, int) and not isinstance(generation, bool) else None


_serializer: Any = None


def to_plain(obj: Any) -> dict[str, Any]:
    """A typed API object as the JSON dict the API server sends (camelCase keys)."""
    if isinstance(obj, dict):
        return copy.deepcopy(obj)
    global _serializer
    if _serializer is None:
        from kubernetes.client import ApiClient

        _serializer = ApiClient()
    plain = _serializer.sanitize_for_serialization(obj)
    return plain if isinstance(plain, dict) else {}


# ---------------------------------------------------------------------------------------------
# Namespaces


@dataclass(frozen=True, slots=True)
class NamespaceOutcome:
    """What ensuring a namespace did: created it, or labelled a pre-existing one (``added_labels``)."""

    name: str
    created: bool
    added_labels: tuple[str, ...] = ()


def added_labels_annotation(run_id: str) -> str:
    return ADDED_LABELS_ANNOTATION_PREFIX + run_id


def ensure_namespace(clients: KubeClients, name: str, labels: Mapping[str, str], run_id: str, *,
                     clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                     gone_timeout_s: float = NAMESPACE_GONE_TIMEOUT_S) -> NamespaceOutcome:
    """Create ``name`` with ``labels`` + the run label, or label the existing namespace (see module doc)."""
    from kubernetes import client

    wanted = {k: v for k, v in labels.items() if k != IMPLIED_NAMESPACE_LABEL}
    existing = _read_namespace(clients, name)
    if existing is not None and getattr(existing.status, "phase", None) == "Terminating":
        wait_namespaces_gone(clients, [name], timeout_s=gone_timeout_s, clock=clock, sleep=sleep)
        existing = None
    if existing is None:
        body = client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={**wanted, RUN_LABEL: run_id}))
        conflict = create_or_conflict(clients, f"creating namespace {name}", clients.core.create_namespace, body)
        if conflict is None:
            return NamespaceOutcome(name, created=True)
        existing = _read_namespace(clients, name)  # created concurrently: treat as pre-existing
        if existing is None:
            raise conflict
    current = labels_of(existing)
    conflicts = sorted(k for k, v in wanted.items() if k in current and current[k] != v)
    if conflicts:
        shown = ", ".join(f"{k}={current[k]!r} (topology: {wanted[k]!r})" for k in conflicts)
        raise ClusterError(f"namespace {name} already exists with different labels: {shown}; flowcheck does not "
                           "rewrite labels of a namespace it did not create -- fix the topology or the namespace")
    missing = {k: v for k, v in wanted.items() if k not in current}
    if not missing:
        return NamespaceOutcome(name, created=False)
    note = {added_labels_annotation(run_id): ",".join(sorted(missing))}
    patch = {"metadata": {"labels": missing, "annotations": note}}
    call(clients, f"labelling namespace {name}", clients.core.patch_namespace, name, patch, _content_type=MERGE_PATCH)
    return NamespaceOutcome(name, created=False, added_labels=tuple(sorted(missing)))


def remove_added_labels(clients: KubeClients, name: str, keys: tuple[str, ...], run_id: str) -> None:
    """Undo ``ensure_namespace``'s labelling of a pre-existing namespace (merge patch: null deletes)."""
    patch: dict[str, Any] = {"metadata": {"labels": dict.fromkeys(keys),
                                          "annotations": {added_labels_annotation(run_id): None}}}
    with contextlib.suppress(NotFound):  # a namespace that is gone has no labels left to remove
        call(clients, f"removing flowcheck's labels from namespace {name}", clients.core.patch_namespace, name,
             patch, _content_type=MERGE_PATCH)


def delete_namespace(clients: KubeClients, name: str) -> bool:
    return delete_ignoring_missing(clients, f"deleting namespace {name}", clients.core.delete_namespace, name)


def wait_namespaces_gone(clients: KubeClients, names: list[str], *, timeout_s: float = NAMESPACE_GONE_TIMEOUT_S,
                         clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                         interval_s: float = 1.0) -> None:
    """Poll until the namespaces are gone (a terminating namespace refuses new pods)."""
    deadline = clock() + timeout_s
    pending = list(names)
    while pending:
        pending = [n for n in pending if _read_namespace(clients, n) is not None]
        if not pending:
            return
        if clock() >= deadline:
            raise ClusterError(f"namespace(s) {', '.join(pending)} still terminating after {timeout_s:g} s")
        sleep(interval_s)


def _read_namespace(clients: KubeClients, name: str) -> Any:
    return read_or_none(clients, f"reading namespace {name}", clients.core.read_namespace, name)


# ---------------------------------------------------------------------------------------------
# Policies


@dataclass(frozen=True, slots=True)
class PolicyKind:
    kind: str
    api_version: str
    plural: str
    namespaced: bool


POLICY_KINDS: dict[str, PolicyKind] = {
    kind: PolicyKind(kind, POLICY_API_VERSIONS[kind], plural, namespaced)
    for kind, plural, namespaced in ((NETWORK_POLICY_KIND, "networkpolicies", True),
                                     (CILIUM_NETWORK_POLICY_KIND, "ciliumnetworkpolicies", True),
                                     (CILIUM_CLUSTERWIDE_POLICY_KIND, "ciliumclusterwidenetworkpolicies", False))
}


@dataclass(frozen=True, slots=True)
class PolicyObjectRef:
    """Which policy object in the cluster's API: kind, namespace (None when cluster-scoped) and name."""

    kind: str
    namespace: str | None
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"


@dataclass(frozen=True, slots=True)
class AppliedPolicy:
    """One policy flowcheck applied: created, or replaced (``original`` is set when it was not flowcheck's).

    ``changed``: the API server changed the policy's spec (always for a create; for a replace, when its
    ``metadata.generation`` moved, as cilium-cli's ``createOrUpdate`` decides it) -- a change the Cilium
    agents must take in before the policy is enforced (``realization``).
    """

    ref: PolicyObjectRef
    outcome: str  # "created" | "replaced"
    source: str
    original_json: str | None = None
    changed: bool = True

    @property
    def original(self) -> dict[str, Any] | None:
        return json.loads(self.original_json) if self.original_json else None


@dataclass(frozen=True, slots=True)
class PreparedPolicy:
    """A policy document checked to be one flowcheck can apply, labelled with the run, ready to apply."""

    ref: PolicyObjectRef
    policy_kind: PolicyKind
    body: dict[str, Any]
    source: str


def prepare_policy(doc: SourceDocument, run_id: str) -> PreparedPolicy:
    """Check that ``doc`` is a policy flowcheck can apply and add the run label (no API call)."""
    where = f"{doc.path} (document {doc.index}{'' if doc.item is None else f', item {doc.item}'})"
    kind = POLICY_KINDS.get(doc.kind)
    if kind is None:
        supported = ", ".join(POLICY_KINDS)
        raise ClusterError(f"{where}: {doc.kind or 'an object without kind'} {doc.name!r} is not a network "
                           f"policy; flowcheck applies only {supported}")
    api_version = doc.body.get("apiVersion")
    if api_version != kind.api_version:
        raise ClusterError(f"{where}: {kind.kind} {doc.name!r} has apiVersion {api_version!r}, "
                           f"expected {kind.api_version!r}")
    body = copy.deepcopy(doc.body)
    meta = body.setdefault("metadata", {})
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
        raise ClusterError(f"{where}: {kind.kind} without metadata.name")
    for key in ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields"):
        meta.pop(key, None)
    body.pop("status", None)
    namespace: str | None = None
    if kind.namespaced:
        namespace = meta.get("namespace") or "default"
        meta["namespace"] = namespace
    else:
        meta.pop("namespace", None)
    meta["labels"] = {**(meta.get("labels") or {}), RUN_LABEL: run_id}
    return PreparedPolicy(PolicyObjectRef(kind.kind, namespace, meta["name"]), kind, body, where)


def apply_policy(clients: KubeClients, prepared: PreparedPolicy) -> AppliedPolicy:
    """Create the policy, or replace it on 409 with the live ``resourceVersion`` (see module doc)."""
    try:
        _create(clients, prepared)
    except Conflict:
        pass
    except ApiError as exc:
        raise _rejected(prepared, exc) from exc
    else:
        return AppliedPolicy(prepared.ref, "created", prepared.source)
    last: Conflict | None = None
    for _attempt in range(REPLACE_ATTEMPTS):
        live = _get(clients, prepared)
        before = generation_of(live)
        original = _original_to_keep(clients, live)
        body = copy.deepcopy(prepared.body)
        meta = body["metadata"]
        meta["resourceVersion"] = resource_version_of(live)
        if original is not None:
            meta["annotations"] = {**(meta.get("annotations") or {}), REPLACED_ORIGINAL_ANNOTATION: original}
        try:
            replaced = _replace(clients, prepared, body)
        except Conflict as conflict:
            last = conflict
            continue
        except ApiError as exc:
            raise _rejected(prepared, exc) from exc
        after = generation_of(replaced)
        # Without a generation on either side (never from a real API server) assume a change: waiting for
        # a revision bump is safe, probing a change that is not enforced yet is not.
        changed = before is None or after is None or before != after
        return AppliedPolicy(prepared.ref, "replaced", prepared.source, original, changed)
    raise ClusterError(f"{prepared.ref} ({prepared.source}): still conflicting after {REPLACE_ATTEMPTS} replace "
                       f"attempts: {last.summary if last else ''}", action=_applying(prepared),
                       context=clients.context)


def remove_policy(clients: KubeClients, applied: AppliedPolicy) -> str:
    """Undo ``apply_policy``: restore a replaced foreign original, else delete. Returns what was done."""
    kind = POLICY_KINDS[applied.ref.kind]
    original = applied.original
    if original is not None:
        what = f"restoring {applied.ref}"
        live = read_or_none(clients, what, _get_ref, clients, kind, applied.ref)
        body = copy.deepcopy(original)
        if live is None:
            call(clients, what, _create_fn(clients, kind, applied.ref), body=body)
        else:
            body.setdefault("metadata", {})["resourceVersion"] = resource_version_of(live)
            call(clients, what, _replace_fn(clients, kind, applied.ref), body=body)
        return "restored"
    gone = not delete_ignoring_missing(clients, f"deleting {applied.ref}", _delete_fn(clients, kind, applied.ref))
    return "already gone" if gone else "deleted"


def original_from_annotation(obj: Any) -> dict[str, Any] | None:
    """The foreign original a flowcheck-applied object remembers (for ``flowcheck cleanup``)."""
    text = annotations_of(obj).get(REPLACED_ORIGINAL_ANNOTATION)
    if not text:
        return None
    try:
        parsed = json.loads(text)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _original_to_keep(clients: KubeClients, live: Any) -> str | None:
    """JSON of the object to restore later: the live one if foreign, else what it already remembers."""
    if RUN_LABEL in labels_of(live):
        return annotations_of(live).get(REPLACED_ORIGINAL_ANNOTATION)
    plain = to_plain(live)
    meta = plain.get("metadata") or {}
    keep_meta = {k: meta[k] for k in ("name", "namespace", "labels", "annotations") if meta.get(k)}
    snapshot = {k: v for k, v in plain.items() if k not in ("metadata", "status")}
    snapshot["metadata"] = keep_meta
    return json.dumps(snapshot, sort_keys=True)


def _applying(prepared: PreparedPolicy) -> str:
    return f"applying {prepared.ref} ({prepared.source})"


def _rejected(prepared: PreparedPolicy, exc: ApiError) -> ApiError:
    """The same typed error, worded for a policy the API server refused."""
    return type(exc)(exc.action, exc.status, exc.reason, exc.api_message, payload=exc.payload, context=exc.context,
                     text=f"{prepared.ref} ({prepared.source}) was rejected by the API server: {exc.summary}")


def _create(clients: KubeClients, prepared: PreparedPolicy) -> None:
    try:
        call(clients, _applying(prepared), _create_fn(clients, prepared.policy_kind, prepared.ref), body=prepared.body)
    except ValueError as exc:  # the typed client validates bodies itself (pydantic) before sending
        raise ClusterError(f"{prepared.ref} ({prepared.source}) is not a valid {prepared.ref.kind}: {exc}",
                           action=_applying(prepared), context=clients.context) from exc


def _replace(clients: KubeClients, prepared: PreparedPolicy, body: dict[str, Any]) -> Any:
    """The replace call; returns the object as the API server stored it."""
    try:
        return call(clients, _applying(prepared), _replace_fn(clients, prepared.policy_kind, prepared.ref), body=body)
    except ValueError as exc:
        raise ClusterError(f"{prepared.ref} ({prepared.source}) is not a valid {prepared.ref.kind}: {exc}",
                           action=_applying(prepared), context=clients.context) from exc


def _get(clients: KubeClients, prepared: PreparedPolicy) -> Any:
    return call(clients, f"reading {prepared.ref}", _get_ref, clients, prepared.policy_kind, prepared.ref)


def _get_ref(clients: KubeClients, kind: PolicyKind, ref: PolicyObjectRef) -> Any:
    if kind.kind == "NetworkPolicy":
        return clients.networking.read_namespaced_network_policy(ref.name, ref.namespace)
    if kind.namespaced:
        return clients.custom.get_namespaced_custom_object(CILIUM_GROUP, CILIUM_VERSION, ref.namespace,
                                                           kind.plural, ref.name)
    return clients.custom.get_cluster_custom_object(CILIUM_GROUP, CILIUM_VERSION, kind.plural, ref.name)


def _create_fn(clients: KubeClients, kind: PolicyKind, ref: PolicyObjectRef) -> Callable[..., Any]:
    if kind.kind == "NetworkPolicy":
        return lambda body: clients.networking.create_namespaced_network_policy(ref.namespace, body)
    if kind.namespaced:
        return lambda body: clients.custom.create_namespaced_custom_object(CILIUM_GROUP, CILIUM_VERSION,
                                                                           ref.namespace, kind.plural, body)
    return lambda body: clients.custom.create_cluster_custom_object(CILIUM_GROUP, CILIUM_VERSION, kind.plural, body)


def _replace_fn(clients: KubeClients, kind: PolicyKind, ref: PolicyObjectRef) -> Callable[..., Any]:
    if kind.kind == "NetworkPolicy":
        return lambda body: clients.networking.replace_namespaced_network_policy(ref.name, ref.namespace, body)
    if kind.namespaced:
        return lambda body: clients.custom.replace_namespaced_custom_object(CILIUM_GROUP, CILIUM_VERSION,
                                                                            ref.namespace, kind.plural, ref.name, body)
    return lambda body: clients.custom.replace_cluster_custom_object(CILIUM_GROUP, CILIUM_VERSION, kind.plural,
                                                                     ref.name, body)


def _delete_fn(clients: KubeClients, kind: PolicyKind, ref: PolicyObjectRef) -> Callable[[], Any]:
    if kind.kind == "NetworkPolicy":
        return lambda: clients.networking.delete_namespaced_network_policy(ref.name, ref.namespace)
    if kind.namespaced:
        return lambda: clients.custom.delete_namespaced_custom_object(CILIUM_GROUP, CILIUM_VERSION, ref.namespace,
                                                                      kind.plural, ref.name)
    return lambda: clients.custom.delete_cluster_custom_object(CILIUM_GROUP, CILIUM_VERSION, kind.plural, ref.name)
