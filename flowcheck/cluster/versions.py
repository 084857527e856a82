"""Cilium release versions: parsing them, reading the pinned one, and reading them from image tags.

One place for what the cluster layer (installing the pinned Cilium, noting when a cluster runs
another) and the pre-upgrade check (which version runs, which one the agents roll to) both need.
Versions are compared parsed, so ``v1.20.0`` and ``1.20.0`` -- and an image tag with a digest
suffix -- all agree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from flowcheck.errors import InputError

PINNED_VERSION_FILE = Path("manifests") / "cilium" / "VERSION"

_VERSION_RE = re.compile(r"^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?$")


@dataclass(frozen=True, slots=True)
class CiliumVersion:
    """A Cilium release version: ``1.20.0``, ``v1.19.3``, ``1.20.0-pre.2``."""

    major: int
    minor: int
    patch: int
    prerelease: str = ""

    @classmethod
    def parse(cls, text: str) -> CiliumVersion | None:
        match = _VERSION_RE.match(text.strip())
        if match is None:
            return None
        return cls(int(match[1]), int(match[2]), int(match[3]), (match[4] or "").lstrip("-"))

    @property
    def release(self) -> tuple[int, int, int]:
        return (self.major, self.minor, self.patch)

    @property
    def minor_line(self) -> str:
        """``1.19``: what ``upgradeCompatibility`` takes."""
        return f"{self.major}.{self.minor}"

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}" + (f"-{self.prerelease}" if self.prerelease else "")


def read_pinned_version(repo_root: Path) -> CiliumVersion:
    """The Cilium version the repository pins (``manifests/cilium/VERSION``); a bad file is an ``InputError``."""
    path = repo_root / PINNED_VERSION_FILE
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise InputError(f"cannot read the pinned Cilium version from {path}: {exc.strerror or exc}") from None
    version = CiliumVersion.parse(text)
    if version is None:
        found = repr(text) if text else "nothing"
        raise InputError(f"{path} holds {found}, not a Cilium release version like 1.19.0")
    return version


def image_tag(image: str) -> str:
    """The tag of an image reference (``quay.io/cilium/cilium:v1.19.0@sha256:...`` -> ``v1.19.0``), or ``""``."""
    ref = image.split("@", 1)[0]
    last = ref.rsplit("/", 1)[-1]  # a registry port (localhost:5000/...) is not a tag
    return last.rsplit(":", 1)[1] if ":" in last else ""
