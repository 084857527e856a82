"""Read Kubernetes manifests the way a platform repository lays them out.

Policies arrive as files or directories (walked recursively), multi-document YAML, ``List``
objects, and kustomization directories -- rendered by the real tool when it is there
(``kustomize build``, else ``kubectl kustomize``: ``flowcheck.manifests.kustomize``), as Flux
applies them, else read by the built-in reader below.
Everything downstream -- schema validation and the policy parser -- consumes the same stream of
``SourceDocument`` records, each remembering the file, the document index and (for ``List``
items) the item index, so every error can name exactly where it came from.

The built-in reader understands only what a plain policy directory needs: ``resources`` and
``namespace``. Transformers that would change what the policies select (patches, labels,
generators, components, ...) are refused with a message naming the tool to install, never silently
ignored: a model that ignored a patch would give a confident, wrong verdict. It keeps kustomize's
load restriction too: a file resource outside the kustomization's directory is refused, as
kustomize refuses it. Each document read from a kustomization says how it was read
(``SourceDocument.rendering``), so commands can say which renderer read what.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from flowcheck.errors import PolicyError
from flowcheck.manifests.kustomize import BUILTIN, INSTALL_HINT, Rendering, find_renderer, render, why_builtin
from flowcheck.manifests.yaml_loader import SafeLoader

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")

# Kustomization keys that only describe or bookkeep; they cannot change a policy's meaning.
_KUSTOMIZE_HARMLESS_KEYS = frozenset({"apiVersion", "kind", "metadata", "resources", "namespace",
                                      "buildMetadata", "sortOptions", "openapi"})

# Kinds that are cluster scoped: kustomize's `namespace:` does not apply to them.
_CLUSTER_SCOPED_KINDS = frozenset({"CiliumClusterwideNetworkPolicy", "Namespace",
                                   "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding"})


@dataclass(frozen=True, slots=True)
class SourceDocument:
    """One Kubernetes object as found on disk, with where it came from."""

    path: str
    index: int
    item: int | None
    body: dict[str, Any]
    rendering: Rendering | None = None
    """How the kustomization it came from was read (None: not from a kustomization)."""

    @property
    def field_prefix(self) -> str:
        """Prefix for field paths inside this object (``items[2].`` for ``List`` items)."""
        return "" if self.item is None else f"items[{self.item}]."

    def error(self, field: str, message: str) -> PolicyError:
        """A ``PolicyError`` pointing at ``field`` inside this object."""
        if self.rendering is not None and self.rendering.exact:
            message = f"{message} (as rendered by {self.rendering.describe()})"
        return PolicyError(self.path, self.index, self.field_prefix + field, message)

    @property
    def kind(self) -> str:
        kind = self.body.get("kind")
        return kind if isinstance(kind, str) else ""

    @property
    def name(self) -> str:
        meta = self.body.get("metadata")
        name = meta.get("name") if isinstance(meta, dict) else None
        return name if isinstance(name, str) else "<unnamed>"


def read_documents(paths: Sequence[str | Path]) -> Iterator[SourceDocument]:
    """Yield every object found under ``paths`` (files or directories), in a stable order."""
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise PolicyError(str(raw), None, "", "no such file or directory")
        if path.is_file() and path.name in KUSTOMIZATION_FILES:
            yield from _read_kustomization(path, ())
        elif path.is_dir():
            yield from _read_directory(path, ())
        else:
            yield from read_file(path)


def read_file(path: Path, namespace: str | None = None, rendering: Rendering | None = None) -> Iterator[SourceDocument]:
    """Yield the objects of one YAML/JSON file; ``namespace`` is a kustomization's override."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(str(path), None, "", f"cannot read file: {exc}") from exc
    try:
        loaded = list(yaml.load_all(text, Loader=SafeLoader))
    except yaml.YAMLError as exc:
        raise PolicyError(str(path), _yaml_error_document(text, exc), "", yaml_error_text(exc)) from exc
    except RecursionError:
        raise PolicyError(str(path), None, "", "the YAML is nested too deeply to be a Kubernetes object") from None
    for index, body in enumerate(loaded):
        if body is None:
            continue
        if not isinstance(body, dict):
            raise PolicyError(str(path), index, "",
                              f"expected a Kubernetes object (a mapping), got {type_name(body)}")
        kind = body.get("kind")
        if isinstance(kind, str) and kind.endswith("List") and "items" in body:
            items = body["items"]
            if not isinstance(items, list):
                raise PolicyError(str(path), index, "items", f"expected a list, got {type_name(items)}")
            for item_index, item in enumerate(items):
                if not isinstance(item, dict):
                    raise PolicyError(str(path), index, f"items[{item_index}]",
                                      f"expected a Kubernetes object (a mapping), got {type_name(item)}")
                yield SourceDocument(str(path), index, item_index, _with_namespace(item, namespace), rendering)
        else:
            yield SourceDocument(str(path), index, None, _with_namespace(body, namespace), rendering)


def _read_directory(path: Path, seen: tuple[Path, ...]) -> Iterator[SourceDocument]:
    for name in KUSTOMIZATION_FILES:
        if (path / name).is_file():
            yield from _read_kustomization(path / name, seen)
            return
    for child in sorted(path.iterdir()):
        if child.name.startswith("."):
            continue
        if child.is_dir():
            yield from _read_directory(child, seen)
        elif child.suffix in MANIFEST_SUFFIXES:
            yield from read_file(child)


def _read_kustomization(path: Path, seen: tuple[Path, ...]) -> Iterator[SourceDocument]:
    if not seen:  # the outermost kustomization: the real tool renders it whole, when there is one
        renderer = find_renderer()
        if renderer is not None:
            yield from _rendered(path, renderer.tool, render(renderer, path))
            return
    yield from _read_kustomization_builtin(path, seen)


def _rendered(path: Path, tool: str, objects: Iterator[Any]) -> Iterator[SourceDocument]:
    """Rendered objects as documents of the files they came from (found by kind and name), else of the
    kustomization (``document`` = position in the rendered output)."""
    rendering = Rendering(tool, _shown_path(path.parent))
    by_origin: dict[Path, list[Any]] = {}
    for obj in objects:
        if obj.origin is None or not obj.origin.is_file():
            yield SourceDocument(str(path), obj.index, None, obj.body, rendering)
            continue
        if obj.origin not in by_origin:
            try:
                by_origin[obj.origin] = list(yaml.load_all(obj.origin.read_text(encoding="utf-8"), Loader=SafeLoader))
            except (OSError, UnicodeDecodeError, yaml.YAMLError):
                by_origin[obj.origin] = []
        index = _index_in_file(by_origin[obj.origin], obj.body)
        yield SourceDocument(_shown_path(obj.origin), obj.index if index is None else index, None, obj.body,
                             rendering)


def _index_in_file(documents: list[Any], body: dict[str, Any]) -> int | None:
    """The index of the document ``body`` was rendered from (same kind and name), if one is."""
    meta = body.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    for index, doc in enumerate(documents):
        doc_meta = doc.get("metadata") if isinstance(doc, dict) else None
        if isinstance(doc_meta, dict) and doc.get("kind") == body.get("kind") and doc_meta.get("name") == name:
            return index
    return None


def _shown_path(path: Path) -> str:
    """``path`` relative to the working directory when it is below it (as users name files), else absolute."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _read_kustomization_builtin(path: Path, seen: tuple[Path, ...]) -> Iterator[SourceDocument]:
    resolved = path.resolve()
    if resolved in seen:
        raise PolicyError(str(path), 0, "resources", "kustomization includes itself (a cycle)")
    docs = [d for d in read_file(path) if d.item is None]
    if len(docs) != 1:
        raise PolicyError(str(path), None, "", "a kustomization file must hold exactly one document")
    kustomization = docs[0]
    body = kustomization.body
    unsupported = sorted(set(body) - _KUSTOMIZE_HARMLESS_KEYS)
    if unsupported:
        raise kustomization.error(
            unsupported[0],
            f"kustomize field {unsupported[0]!r} is not applied by flowcheck's built-in reader (it reads only "
            f"`resources` and `namespace`): {INSTALL_HINT.replace('DIR', str(path.parent))}",
        )
    namespace = body.get("namespace")
    if namespace is not None and not isinstance(namespace, str):
        raise kustomization.error("namespace", f"expected a string, got {type_name(namespace)}")
    resources = body.get("resources", [])
    if not isinstance(resources, list):
        raise kustomization.error("resources", f"expected a list of paths, got {type_name(resources)}")
    rendering = Rendering(BUILTIN, str(path.parent))
    root = path.parent.resolve()
    for i, entry in enumerate(resources):
        field = f"resources[{i}]"
        if not isinstance(entry, str):
            raise kustomization.error(field, f"expected a path, got {type_name(entry)}")
        if "://" in entry or entry.startswith(("github.com/", "git@")):
            raise kustomization.error(field, f"remote resource {entry!r} is not supported; vendor it or "
                                             "render the kustomization first")
        target = path.parent / entry
        if not target.exists():
            raise kustomization.error(field, f"{entry!r} does not exist (looked for {target})")
        if target.is_dir():
            for doc in _read_directory(target, (*seen, resolved)):
                yield _override_namespace(doc, namespace, rendering)
        else:
            if not target.resolve().is_relative_to(root):
                # kustomize's load restriction (LoadRestrictionsRootOnly, its default): a file resource must lie
                # in or below the kustomization's directory; other directories are bases with their own root.
                raise kustomization.error(field, f"security; file '{target.resolve()}' is not in or below '{root}': "
                                                 "kustomize refuses a file outside the kustomization's directory "
                                                 "(make that directory a kustomization and list it instead)")
            for doc in read_file(target, namespace, rendering):
                yield doc


def _with_namespace(body: dict[str, Any], namespace: str | None) -> dict[str, Any]:
    if namespace is None or body.get("kind") in _CLUSTER_SCOPED_KINDS:
        return body
    meta = body.get("metadata")
    new_meta = dict(meta) if isinstance(meta, dict) else {}
    new_meta["namespace"] = namespace
    return {**body, "metadata": new_meta}


def _override_namespace(doc: SourceDocument, namespace: str | None, rendering: Rendering) -> SourceDocument:
    return SourceDocument(doc.path, doc.index, doc.item, _with_namespace(doc.body, namespace),
                          doc.rendering or rendering)


def yaml_error_text(exc: yaml.YAMLError) -> str:
    """A YAML syntax error in one line (PyYAML's own text spans several, quoting the line)."""
    mark = getattr(exc, "problem_mark", None)
    problem = " ".join(str(getattr(exc, "problem", None) or exc).split())
    if mark is not None:
        return f"invalid YAML at line {mark.line + 1}, column {mark.column + 1}: {problem}"
    return f"invalid YAML: {problem}"


def _yaml_error_document(text: str, exc: yaml.YAMLError) -> int | None:
    """The index of the document holding the syntax error, counted by ``---`` separators."""
    mark = getattr(exc, "problem_mark", None)
    if mark is None:
        return None
    lines = text.splitlines()[: mark.line + 1]
    separators = sum(1 for line in lines if line.startswith("---"))
    starts_with_separator = bool(lines) and lines[0].startswith("---")
    return separators - 1 if starts_with_separator else separators


def type_name(value: Any) -> str:
    """How a YAML value is described in error messages ("a mapping", "a list", ...)."""
    return {dict: "a mapping", list: "a list", str: "a string", int: "a number", float: "a number",
            bool: "a boolean", type(None): "null"}.get(type(value), type(value).__name__)


def list_manifest_files(paths: Sequence[str | Path]) -> list[Path]:
    """Every YAML/JSON file under ``paths`` (directories walked recursively), in a stable order.

    Unlike ``read_documents`` this ignores kustomizations: it lists what is on disk, so callers can
    check each file on its own or find files a kustomization forgot to list.
    """
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*")
                                if p.is_file() and (p.suffix in MANIFEST_SUFFIXES or p.name in KUSTOMIZATION_FILES)))
        else:
            files.append(path)
    return files


def unapplied_files(paths: Sequence[str | Path], documents: Sequence[SourceDocument]) -> list[Path]:
    """Manifest files under ``paths`` that no document read from them came from: with kustomizations, the
    files none of them lists -- in git, and never applied by ``kubectl apply -k`` or Flux."""
    applied = {Path(doc.path).resolve() for doc in documents}
    return [f for f in list_manifest_files(paths)
            if f.name not in KUSTOMIZATION_FILES and f.resolve() not in applied]


def rendering_notes(documents: Sequence[SourceDocument]) -> list[str]:
    """One note per kustomization read, saying which renderer read it (``Rendering``), in reading order."""
    seen: dict[Rendering, int] = {}
    for doc in documents:
        if doc.rendering is not None:
            seen[doc.rendering] = seen.get(doc.rendering, 0) + 1
    notes = []
    for rendering, count in seen.items():
        if rendering.exact:
            notes.append(f"kustomization {rendering.kustomization}: rendered by `{rendering.tool}` ({count} objects)")
        else:
            notes.append(f"kustomization {rendering.kustomization}: read by {rendering.describe()}, {count} objects "
                         f"({why_builtin()})")
    return notes
