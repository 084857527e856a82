"""Finding the command-line tools flowcheck drives: kind, the cilium CLI, the hubble CLI, helm, docker.

``scripts/install-tools`` installs pinned, sha256-verified releases into ``.bin/`` (versions and
pins in ``scripts/tool-versions``, the one place they are written). flowcheck looks in ``.bin/``
first -- the pinned build wins over whatever else is installed -- then on ``PATH``. A missing tool
is one ``ToolMissing`` line saying which tool and how to get it, never a ``FileNotFoundError``
traceback from deep inside ``subprocess``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from flowcheck.errors import ClusterError, ToolMissing

VERSIONS_FILE = Path("scripts") / "tool-versions"
BIN_DIR_NAME = ".bin"

_HOW_TO_GET = {
    "kind": "run scripts/install-tools (pinned kind into .bin/) or see https://kind.sigs.k8s.io/docs/user/quick-start/",
    "cilium": "run scripts/install-tools (pinned cilium CLI into .bin/) or see "
              "https://github.com/cilium/cilium-cli#installation",
    "hubble": "run scripts/install-tools (pinned hubble CLI into .bin/) or see "
              "https://github.com/cilium/hubble#installation",
    "helm": "run scripts/install-tools (pinned helm into .bin/) or see https://helm.sh/docs/intro/install/",
    "docker": "install Docker Engine (https://docs.docker.com/engine/install/) and start it; kind runs its "
              "nodes as Docker containers",
}


def how_to_get(tool: str) -> str:
    """The one-line hint a ``ToolMissing`` for ``tool`` carries."""
    return _HOW_TO_GET.get(tool, f"install {tool} and put it on PATH")


@dataclass(frozen=True, slots=True)
class ToolPin:
    """One ``tool`` line of the versions file."""

    name: str
    version: str
    repository: str
    asset_template: str

    def asset(self, os_name: str, arch: str) -> str:
        return (self.asset_template.replace("${os}", os_name).replace("${arch}", arch)
                .replace("${version}", self.version))

    def url(self, os_name: str, arch: str, base_url: str = "https://github.com") -> str:
        """A GitHub release download, or ``<repository>/<asset>`` when the repository column is a URL.

        helm is not released on GitHub: its archives are served from ``https://get.helm.sh``.
        """
        asset = self.asset(os_name, arch)
        if self.repository.startswith(("https://", "http://", "file://")):
            return f"{self.repository.rstrip('/')}/{asset}"
        return f"{base_url.rstrip('/')}/{self.repository}/releases/download/{self.version}/{asset}"


@dataclass(frozen=True, slots=True)
class ToolVersions:
    """The parsed versions file: tool pins and the sha256 pins of release assets."""

    tools: tuple[ToolPin, ...]
    sha256: tuple[tuple[str, str], ...]

    def tool(self, name: str) -> ToolPin:
        for pin in self.tools:
            if pin.name == name:
                return pin
        raise KeyError(name)

    def sha256_of(self, asset: str) -> str | None:
        return dict(self.sha256).get(asset)


def read_tool_versions(path: Path) -> ToolVersions:
    """Parse the versions file (the same columns ``scripts/install-tools`` reads with awk)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ClusterError(f"cannot read tool versions file {path}: {exc}") from exc
    tools: list[ToolPin] = []
    sums: list[tuple[str, str]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        if fields[0] == "tool" and len(fields) == 5:
            tools.append(ToolPin(*fields[1:]))
        elif fields[0] == "sha256" and len(fields) == 3:
            digest = fields[2].lower()
            if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                raise ClusterError(f"{path}:{number}: {fields[2]!r} is not a sha256 hex digest")
            sums.append((fields[1], digest))
        else:
            raise ClusterError(f"{path}:{number}: expected `tool NAME VERSION REPO ASSET` or "
                               f"`sha256 ASSET DIGEST`, got {raw.strip()!r}")
    return ToolVersions(tuple(tools), tuple(sums))


def find_tool(name: str, *, bin_dirs: Sequence[Path] = (), path: str | None = None) -> str:
    """The executable to run for ``name``: ``bin_dirs`` (``.bin/``) first, then ``PATH``.

    Raises ``ToolMissing`` naming the tool and how to get it.
    """
    for directory in bin_dirs:
        candidate = directory / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name, path=path)
    if found is None:
        raise ToolMissing(name, how_to_get(name))
    return found


def default_bin_dirs(repo_root: Path) -> tuple[Path, ...]:
    """Where pinned tools live: ``$FLOWCHECK_BIN_DIR`` if set, else ``<repo>/.bin``."""
    override = os.environ.get("FLOWCHECK_BIN_DIR")
    return (Path(override),) if override else (repo_root / BIN_DIR_NAME,)
