"""Rendering kustomizations with the real tool: ``kustomize build``, else ``kubectl kustomize``.

A kustomization is what Flux (and ``kubectl apply -k``) applies, so the policies flowcheck checks must
be exactly what the tool renders -- with its patches, components, generators and its load
restrictions (a file outside the kustomization's root is refused: ``security; file ... is not in
or below ...``). When either tool is on PATH it renders every kustomization flowcheck reads; the
built-in reader in ``documents`` is the fallback for plain ``resources:`` lists, and refuses what it
cannot render exactly, naming the tool to install.

``FLOWCHECK_KUSTOMIZE`` chooses: ``auto`` (the default: kustomize, else kubectl, else the built-in
reader), ``kustomize``, ``kubectl`` (that tool or an error) or ``builtin``.

Where each rendered object came from is kept: the kustomization is built as the one resource of a
throw-away kustomization that only adds ``buildMetadata: [originAnnotations]`` (kustomize's own
record of each object's source file, ``config.kubernetes.io/origin``); that annotation is read and
removed, so errors name the file a policy was written in. A base used as a resource is built the
same way as on its own: the wrapper adds no transformer.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from flowcheck.errors import PolicyError
from flowcheck.manifests.yaml_loader import SafeLoader

KUSTOMIZE_ENV = "FLOWCHECK_KUSTOMIZE"
CHOICES = ("auto", "kustomize", "kubectl", "builtin")
RENDER_TIMEOUT_S = 120.0
ORIGIN_ANNOTATION = "config.kubernetes.io/origin"
INSTALL_HINT = ("install kustomize or kubectl (flowcheck then renders kustomizations with `kustomize build` or "
                "`kubectl kustomize`), or render it first (`kubectl kustomize DIR > rendered.yaml`) and pass that file")

# kubectl prints its failure as a klog line: `E1203 13:18:12.187179 23758 run.go:72] "command failed" err="..."`;
# kustomize as `Error: ...`.
_KLOG_ERR = re.compile(r'"command failed" err=(?:"(?P<text>.*)"|<(?P<block>.*)>)\s*$')
_WRAPPER_LAYER = re.compile(r"^accumulating resources: accumulation err='accumulating resources from '[^']*': "
                            r"'[^']*' must resolve to a file': (?:recursed accumulation of path|couldn't make target "
                            r"for path) '[^']*': ")
_FILE_THEN_DIRECTORY = re.compile(r"^accumulating resources: accumulation err='accumulating resources from "
                                  r"'(?P<resource>[^']*)': (?P<why>.*)': must build at directory: .*$")


@dataclass(frozen=True, slots=True)
class Rendering:
    """How a kustomization was read: by which tool (or the built-in reader), and which one."""

    tool: str  # "kustomize build", "kubectl kustomize", or BUILTIN
    kustomization: str  # the directory

    @property
    def exact(self) -> bool:
        return self.tool != BUILTIN

    def describe(self) -> str:
        if self.exact:
            return f"`{self.tool} {self.kustomization}`"
        return "flowcheck's built-in reader (resources and namespace only)"


BUILTIN = "built-in"


@dataclass(frozen=True, slots=True)
class Renderer:
    """A real kustomize: the command that builds a directory (``argv`` + the directory)."""

    argv: tuple[str, ...]

    @property
    def tool(self) -> str:
        return f"{Path(self.argv[0]).name} {self.argv[1]}"


@dataclass(frozen=True, slots=True)
class RenderedObject:
    """One object the tool rendered: its body (origin annotation removed) and the file it came from."""

    body: dict[str, Any]
    origin: Path | None  # None: generated, or from a remote base
    index: int  # its position in the rendered output


def find_renderer(environ: Mapping[str, str] | None = None) -> Renderer | None:
    """The real tool to render kustomizations with, or None for the built-in reader (see the module docstring)."""
    env = os.environ if environ is None else environ
    choice = env.get(KUSTOMIZE_ENV, "auto") or "auto"
    if choice not in CHOICES:
        raise PolicyError(f"${KUSTOMIZE_ENV}", None, "", f"{choice!r}: expected one of {', '.join(CHOICES)}")
    if choice == "builtin":
        return None
    kustomize = shutil.which("kustomize") if choice in ("auto", "kustomize") else None
    if kustomize:
        return Renderer((kustomize, "build"))
    kubectl = shutil.which("kubectl") if choice in ("auto", "kubectl") else None
    if kubectl:
        return Renderer((kubectl, "kustomize"))
    if choice != "auto":
        raise PolicyError(f"${KUSTOMIZE_ENV}", None, "", f"{choice} was asked for and is not on PATH")
    return None


def why_builtin(environ: Mapping[str, str] | None = None) -> str:
    """Why kustomizations are read by the built-in reader (for the note saying so)."""
    env = os.environ if environ is None else environ
    if env.get(KUSTOMIZE_ENV) == "builtin":
        return f"{KUSTOMIZE_ENV}=builtin"
    return "neither kustomize nor kubectl is on PATH: install one to render kustomizations exactly"


def render(renderer: Renderer, kustomization_file: Path) -> Iterator[RenderedObject]:
    """The objects ``renderer`` builds from the kustomization in ``kustomization_file``'s directory.

    A failure of the tool is one ``PolicyError`` naming the kustomization, with the tool's own message.
    """
    directory = kustomization_file.parent
    with tempfile.TemporaryDirectory(prefix="flowcheck-kustomize-") as tmp:
        wrapper = Path(tmp)
        (wrapper / "kustomization.yaml").write_text(yaml.safe_dump({
            "resources": [os.path.relpath(directory.resolve(), wrapper.resolve())],
            "buildMetadata": ["originAnnotations"]}))
        try:
            done = subprocess.run([*renderer.argv, str(wrapper)], capture_output=True, text=True, check=False,
                                  timeout=RENDER_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise PolicyError(str(kustomization_file), None, "",
                              f"`{renderer.tool}` did not finish in {RENDER_TIMEOUT_S:g} s") from None
        except OSError as exc:
            raise PolicyError(str(kustomization_file), None, "", f"cannot run `{renderer.tool}`: {exc}") from None
        if done.returncode != 0:
            why = tool_error(done.stderr, str(wrapper), directory)
            raise PolicyError(str(kustomization_file), None, "", f"`{renderer.tool} {directory}` failed: {why}")
        try:
            bodies = [b for b in yaml.load_all(done.stdout, Loader=SafeLoader) if b is not None]
        except yaml.YAMLError as exc:  # the tool's own output: not expected, but never a traceback
            raise PolicyError(str(kustomization_file), None, "",
                              f"`{renderer.tool}` printed something that is not YAML: {exc}") from None
        for index, body in enumerate(bodies):
            if not isinstance(body, dict):
                raise PolicyError(str(kustomization_file), index, "", "the rendered output holds a non-object")
            yield RenderedObject(*_take_origin(body, wrapper), index)


def tool_error(stderr: str, wrapper: str, directory: Path) -> str:
    """The tool's failure in one line, with the throw-away wrapper's layer left out."""
    text = " ".join(stderr.split()) or "no message"
    match = _KLOG_ERR.search(text)
    if match:
        text = (match["text"] or "").replace('\\"', '"') if match["block"] is None else match["block"].strip()
    elif "Error: " in text:
        text = text[text.rindex("Error: ") + len("Error: "):]
    text = _WRAPPER_LAYER.sub("", text, count=1)
    # A resource kustomize tried as a file and then as a directory: its complaint about the file is the one to read.
    both = _FILE_THEN_DIRECTORY.match(text)
    if both:
        text = f"resource {both['resource']!r}: {both['why']}"
    return text.replace(wrapper, str(directory))


def _take_origin(body: dict[str, Any], wrapper: Path) -> tuple[dict[str, Any], Path | None]:
    """``body`` without the origin annotation flowcheck asked for, and the file it names."""
    meta = body.get("metadata")
    annotations = meta.get("annotations") if isinstance(meta, dict) else None
    if not isinstance(annotations, dict) or ORIGIN_ANNOTATION not in annotations:
        return body, None
    origin_text = annotations[ORIGIN_ANNOTATION]
    rest = {k: v for k, v in annotations.items() if k != ORIGIN_ANNOTATION}
    new_meta = {k: v for k, v in meta.items() if k != "annotations"}  # type: ignore[union-attr]
    if rest:
        new_meta["annotations"] = rest
    cleaned = {**body, "metadata": new_meta}
    try:
        origin = yaml.safe_load(origin_text) if isinstance(origin_text, str) else None
    except yaml.YAMLError:
        origin = None
    path = origin.get("path") if isinstance(origin, dict) and "repo" not in origin else None
    if not isinstance(path, str):
        return cleaned, None
    return cleaned, Path(os.path.normpath(wrapper.resolve() / path))
