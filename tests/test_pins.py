"""Every version flowcheck pins is one that was actually released.

A pin that names a release which does not exist breaks the first real run far from here (the
download 404s in ``scripts/install-tools``, the workflow cannot resolve an action, ``cilium
install --version`` finds no chart). The releases are recorded, each with where it was seen, in
``tests/data/cluster/released-versions.txt``; this test checks every pin against that record:
``scripts/tool-versions``, ``manifests/cilium/VERSION`` and ``CANDIDATE``, and every action the
workflows use.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.cluster.tool_versions import read_tool_versions
from tests.conftest import REPO_ROOT

RECORD = REPO_ROOT / "tests" / "data" / "cluster" / "released-versions.txt"


def _record() -> tuple[dict[tuple[str, str], str], set[tuple[str, str]]]:
    released: dict[tuple[str, str], str] = {}
    never: set[tuple[str, str]] = set()
    for number, line in enumerate(RECORD.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith("not-released "):
            _, name, version, *_why = line.split()
            never.add((name, version))
            continue
        name, version, *source = line.split()
        assert source, f"{RECORD.name}:{number}: {name} {version} says nowhere where it was seen"
        released[(name, version)] = " ".join(source)
    return released, never


RELEASED, NEVER_RELEASED = _record()


def _pins() -> Iterator[tuple[str, str, str]]:
    """(where, name, version) for every pin."""
    tools = read_tool_versions(REPO_ROOT / "scripts" / "tool-versions")
    for tool in tools.tools:
        yield "scripts/tool-versions", tool.name, tool.version
    for name in ("VERSION", "CANDIDATE"):
        path = Path("manifests/cilium") / name
        yield str(path), "cilium-chart", (REPO_ROOT / path).read_text().strip()
    for workflow in sorted((REPO_ROOT / ".github" / "workflows").glob("*.yml")):
        for job in yaml.safe_load(workflow.read_text())["jobs"].values():
            for step in job["steps"]:
                uses = step.get("uses")
                if uses and not uses.startswith("./"):
                    action, _, ref = uses.partition("@")
                    yield f".github/workflows/{workflow.name}", action, ref
                    if action == "helm/kind-action":
                        yield f".github/workflows/{workflow.name} (kind-action version)", "kind", \
                            step["with"]["version"]


PINS = sorted(set(_pins()))


@pytest.mark.parametrize(("where", "name", "version"), PINS, ids=[f"{n}@{v}" for _w, n, v in PINS])
def test_every_pinned_version_was_released(where: str, name: str, version: str) -> None:
    assert (name, version) not in NEVER_RELEASED, f"{where}: {name} {version} was never released"
    assert (name, version) in RELEASED, (f"{where} pins {name} {version}, which {RECORD.name} does not record as "
                                         "released: check the release exists and add it there with its source")


def test_the_pins_cover_every_tool_and_action() -> None:
    names = {name for _where, name, _version in PINS}
    assert {"kind", "cilium", "hubble", "helm", "cilium-chart", "actions/checkout", "actions/setup-python",
            "actions/upload-artifact", "helm/kind-action", "cilium/cilium-cli"} <= names


def test_hubble_is_not_pinned_to_the_release_that_never_was() -> None:
    tools = read_tool_versions(REPO_ROOT / "scripts" / "tool-versions")
    assert ("hubble", "v1.19.0") in NEVER_RELEASED
    assert tools.tool("hubble").version == "v1.19.4"


def test_the_pinned_cilium_is_the_latest_patch_of_its_minor_in_the_record() -> None:
    """Cilium's upgrade guide: upgrade from (and to) the latest patch release of a minor."""
    pinned = (REPO_ROOT / "manifests" / "cilium" / "VERSION").read_text().strip()
    minor = pinned.rsplit(".", 1)[0]
    patches = [int(v.rsplit(".", 1)[1]) for (n, v) in RELEASED if n == "cilium-chart" and v.startswith(minor + ".")]
    assert re.fullmatch(r"\d+\.\d+\.\d+", pinned) and int(pinned.rsplit(".", 1)[1]) == max(patches)
