"""Kustomizations rendered by the real tool when it is there; the built-in reader refuses what it cannot render.

The tests that run the real tool need ``kustomize`` or ``kubectl`` on PATH and skip, saying so,
without them. The parsing of the tool's failures is checked on recorded stderr of the real tool
(``kubectl`` 1.32.4 with kustomize v5.5.0, on this project's development machine).
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from flowcheck.cli import main
from flowcheck.errors import PolicyError
from flowcheck.manifests.documents import read_documents, rendering_notes
from flowcheck.manifests.kustomize import KUSTOMIZE_ENV, Renderer, find_renderer, tool_error
from tests.conftest import POLICIES_DIR

REAL_TOOL = shutil.which("kustomize") or shutil.which("kubectl")
needs_tool = pytest.mark.skipif(REAL_TOOL is None, reason="neither kustomize nor kubectl is on PATH (kubectl comes "
                                                          "with the machine image here; Debian's kubernetes-client "
                                                          "is too old to carry today's kustomize)")

POLICY = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: {name}}}
spec: {{podSelector: {{}}, policyTypes: [Ingress]}}
"""


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


@pytest.fixture
def real_tool(monkeypatch: pytest.MonkeyPatch) -> Renderer:
    monkeypatch.setenv(KUSTOMIZE_ENV, "auto")
    renderer = find_renderer()
    assert renderer is not None
    return renderer


@pytest.fixture
def builtin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KUSTOMIZE_ENV, "builtin")


@pytest.fixture
def overlay(tmp_path: Path) -> Path:
    """A kustomization with a component and a patch: what the built-in reader cannot render."""
    write(tmp_path, {
        "base/kustomization.yaml": "resources: [deny.yaml, allow.yaml]\n",
        "base/deny.yaml": POLICY.format(name="deny"),
        "base/allow.yaml": POLICY.format(name="allow"),
        "labels/kustomization.yaml": """\
            apiVersion: kustomize.config.k8s.io/v1alpha1
            kind: Component
            patches:
              - target: {kind: NetworkPolicy, name: allow}
                patch: |-
                  - {op: replace, path: /spec/podSelector, value: {matchLabels: {app: web}}}
            """,
        "app/kustomization.yaml": "namespace: shop\nresources: [../base]\ncomponents: [../labels]\n",
    })
    return tmp_path / "app"


@needs_tool
@pytest.mark.usefixtures("real_tool")
def test_the_real_tool_renders_components_and_patches_naming_the_files_they_came_from(overlay: Path) -> None:
    documents = list(read_documents([overlay]))
    by_name = {d.body["metadata"]["name"]: d for d in documents}
    assert by_name["allow"].body["spec"]["podSelector"] == {"matchLabels": {"app": "web"}}
    assert by_name["allow"].body["metadata"]["namespace"] == "shop"
    assert "annotations" not in by_name["allow"].body["metadata"]  # the origin flowcheck asked for is removed
    assert Path(by_name["allow"].path).resolve() == (overlay.parent / "base" / "allow.yaml").resolve()
    assert Path(by_name["deny"].path).resolve() == (overlay.parent / "base" / "deny.yaml").resolve()
    tool = by_name["allow"].rendering.tool if by_name["allow"].rendering else ""
    assert tool in ("kustomize build", "kubectl kustomize")
    assert rendering_notes(documents) == [f"kustomization {overlay}: rendered by `{tool}` (2 objects)"]


@pytest.mark.usefixtures("builtin")
def test_the_builtin_reader_refuses_a_component_naming_the_tool_to_install(overlay: Path) -> None:
    with pytest.raises(PolicyError) as caught:
        list(read_documents([overlay]))
    assert caught.value.field == "components"
    assert "install kustomize or kubectl" in caught.value.message


def outside_root(tmp_path: Path) -> Path:
    write(tmp_path, {"elsewhere.yaml": POLICY.format(name="stray"),
                     "np/kustomization.yaml": "resources: [../elsewhere.yaml]\n"})
    return tmp_path / "np"


@pytest.mark.usefixtures("builtin")
def test_the_builtin_reader_refuses_a_file_outside_the_kustomization_root_as_kustomize_does(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as caught:
        list(read_documents([outside_root(tmp_path)]))
    assert caught.value.field == "resources[0]"
    assert caught.value.message.startswith(f"security; file '{tmp_path.resolve() / 'elsewhere.yaml'}' is not in or "
                                           f"below '{(tmp_path / 'np').resolve()}'")


@needs_tool
@pytest.mark.usefixtures("real_tool")
def test_the_real_tools_refusal_is_one_bad_input_line_naming_the_kustomization(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kustomization = outside_root(tmp_path)
    assert main(["validate", str(kustomization)]) == 2
    [line] = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    assert line.startswith(f"error: {kustomization / 'kustomization.yaml'}: `")
    assert f"failed: resource '../elsewhere.yaml': security; file '{tmp_path.resolve() / 'elsewhere.yaml'}' is " \
           f"not in or below '{kustomization.resolve()}'" in line


@needs_tool
def test_both_renderers_read_this_repositorys_policies_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    def objects(choice: str) -> list[tuple[str, str, str]]:
        monkeypatch.setenv(KUSTOMIZE_ENV, choice)
        documents = read_documents([POLICIES_DIR])
        return sorted((d.kind, d.body["metadata"].get("namespace", ""), d.name) for d in documents)

    assert objects("auto") == objects("builtin")
    assert len(objects("auto")) == 4


# Recorded stderr of `kubectl kustomize` (v1.32.4, kustomize v5.5.0) on flowcheck's wrapper kustomization.
RECORDED = {
    "outside the root": (
        'E1203 13:29:48.208170   29867 run.go:72] "command failed" err="accumulating resources: accumulation '
        "err='accumulating resources from '../app': '/tmp/kz/app' must resolve to a file': recursed accumulation of "
        "path '/tmp/kz/app': accumulating resources: accumulation err='accumulating resources from '../other.yaml': "
        "security; file '/tmp/kz/other.yaml' is not in or below '/tmp/kz/app'': must build at directory: "
        "'/tmp/kz/other.yaml': file is not directory\"\n",
        "resource '../other.yaml': security; file '/tmp/kz/other.yaml' is not in or below '/tmp/kz/app'"),
    "invalid kustomization": (
        'E1203 13:29:48.372949   29882 run.go:72] "command failed" err="accumulating resources: accumulation '
        "err='accumulating resources from '../app': '/tmp/kz/app' must resolve to a file': couldn't make target for "
        "path '/tmp/kz/app': invalid Kustomization: yaml: line 1: did not find expected node content\"\n",
        "invalid Kustomization: yaml: line 1: did not find expected node content"),
    "a missing patch file (klog's multi-line form)": (
        'E1203 13:29:57.019581   30144 run.go:72] "command failed" err=<\n\taccumulating resources: accumulation '
        "err='accumulating resources from '../app': '/tmp/kz/app' must resolve to a file': recursed accumulation of "
        "path '/tmp/kz/app': trouble configuring builtin PatchTransformer with config: `\n\tpath: nope.yaml\n\t`: "
        "failed to get the patch file from path(nope.yaml): evalsymlink failure on '/tmp/kz/app/nope.yaml' : lstat "
        "/tmp/kz/app/nope.yaml: no such file or directory\n >\n",
        "trouble configuring builtin PatchTransformer with config: ` path: nope.yaml `: failed to get the patch file "
        "from path(nope.yaml): evalsymlink failure on '/tmp/kz/app/nope.yaml' : lstat /tmp/kz/app/nope.yaml: no such "
        "file or directory"),
    "kustomize's own form": ("Error: accumulating resources: accumulation err='accumulating resources from "
                             "'x.yaml': missing Resource metadata'\n", "accumulating resources: accumulation "
                             "err='accumulating resources from 'x.yaml': missing Resource metadata'"),
}


@pytest.mark.parametrize("case", sorted(RECORDED))
def test_the_tools_failure_becomes_one_line(case: str) -> None:
    stderr, expected = RECORDED[case]
    assert tool_error(stderr, "/tmp/flowcheck-kustomize-x", Path("app")) == expected


def test_the_renderer_is_chosen_by_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert find_renderer({KUSTOMIZE_ENV: "builtin"}) is None
    with pytest.raises(PolicyError, match="expected one of auto, kustomize, kubectl, builtin"):
        find_renderer({KUSTOMIZE_ENV: "helm"})
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing there
    assert find_renderer({}) is None
    with pytest.raises(PolicyError, match="kubectl was asked for and is not on PATH"):
        find_renderer({KUSTOMIZE_ENV: "kubectl"})
