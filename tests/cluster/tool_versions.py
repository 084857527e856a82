"""``scripts/tool-versions`` parsed, for the tests that keep other files in step with its pins.

flowcheck itself never reads the file: ``scripts/install-tools`` does (with awk), and flowcheck
only finds the installed tools (``flowcheck.cluster.tools``). The tests read the same columns to
check the pins (versions, download URLs, sha256 digests) and that the nightly workflow installs
the pinned tools.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from flowcheck.errors import ClusterError


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
