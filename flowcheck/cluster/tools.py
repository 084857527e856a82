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
from pathlib import Path

from flowcheck.errors import ToolMissing

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
