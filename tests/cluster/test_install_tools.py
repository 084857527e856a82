"""scripts/install-tools, offline: fake release assets served from a file:// URL.

The real release assets and their hashes cannot be fetched here, so these tests build stand-in
archives laid out like GitHub release downloads and check the script's verification logic: pinned
hashes are enforced, a missing pin is refused unless --trust-published-checksums is given (then
the release's `.sha256sum` is checked and the line to pin printed), and nothing unverified lands
in the bin directory.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "install-tools"

pytestmark = pytest.mark.skipif(shutil.which("curl") is None or shutil.which("bash") is None,
                                reason="install-tools needs bash and curl")

TOOLS = [
    ("kind", "v0.31.0", "kubernetes-sigs/kind", "kind-${os}-${arch}"),
    ("cilium", "v0.19.7", "cilium/cilium-cli", "cilium-${os}-${arch}.tar.gz"),
    ("hubble", "v1.19.0", "cilium/hubble", "hubble-${os}-${arch}.tar.gz"),
]


def _script(name: str) -> bytes:
    return f"#!/bin/sh\necho 'fake {name}'\n".encode()


def _tarball(name: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        body = _script(name)
        info = tarfile.TarInfo(name)
        info.size = len(body)
        info.mode = 0o755
        tar.addfile(info, io.BytesIO(body))
    return buf.getvalue()


class Releases:
    """A fake release server on disk, and a versions file pointing at it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.base = root / "releases"
        self.bin = root / "bin"
        self.versions = root / "tool-versions"
        self.assets: dict[str, Path] = {}
        for name, version, repo, template in TOOLS:
            asset = template.replace("${os}", "linux").replace("${arch}", "amd64")
            path = self.base / repo / "releases" / "download" / version / asset
            path.parent.mkdir(parents=True)
            path.write_bytes(_tarball(name) if asset.endswith(".tar.gz") else _script(name))
            self.assets[name] = path

    def sha(self, name: str) -> str:
        return hashlib.sha256(self.assets[name].read_bytes()).hexdigest()

    def publish_checksums(self, wrong: str | None = None) -> None:
        for name, path in self.assets.items():
            digest = "0" * 64 if name == wrong else self.sha(name)
            Path(str(path) + ".sha256sum").write_text(f"{digest}  {path.name}\n")

    def write_versions(self, pins: dict[str, str]) -> None:
        lines = [f"tool {n} {v} {r} {t}" for n, v, r, t in TOOLS]
        lines += [f"sha256 {self.assets[n].name} {digest}" for n, digest in pins.items()]
        self.versions.write_text("# test versions\n" + "\n".join(lines) + "\n")

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "FLOWCHECK_TOOL_VERSIONS": str(self.versions), "FLOWCHECK_BIN_DIR": str(self.bin),
               "FLOWCHECK_TOOLS_BASE_URL": f"file://{self.base}", "FLOWCHECK_TOOLS_OS": "linux",
               "FLOWCHECK_TOOLS_ARCH": "amd64"}
        return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=60,
                              check=False)

    def installed(self) -> set[str]:
        return {p.name for p in self.bin.iterdir() if not p.name.startswith(".")} if self.bin.exists() else set()


@pytest.fixture
def releases(tmp_path: Path) -> Releases:
    return Releases(tmp_path)


def test_pinned_assets_are_verified_and_installed(releases: Releases) -> None:
    releases.write_versions({n: releases.sha(n) for n, *_ in TOOLS})
    result = releases.run()
    assert result.returncode == 0, result.stderr
    assert releases.installed() == {"kind", "cilium", "hubble"}
    for name in ("kind", "cilium", "hubble"):
        out = subprocess.run([str(releases.bin / name)], capture_output=True, text=True, check=True).stdout
        assert out == f"fake {name}\n"
    assert "installed kind v0.31.0" in result.stdout


def test_a_hash_mismatch_installs_nothing_from_that_asset(releases: Releases) -> None:
    pins = {n: releases.sha(n) for n, *_ in TOOLS}
    pins["cilium"] = "a" * 64
    releases.write_versions(pins)
    result = releases.run("cilium")
    assert result.returncode == 1
    assert f"sha256 mismatch for cilium-linux-amd64.tar.gz: pinned {'a' * 64}, downloaded {releases.sha('cilium')}" in (
        result.stderr)
    assert "cilium" not in releases.installed()


def test_a_missing_pin_is_refused_before_downloading(releases: Releases) -> None:
    releases.write_versions({})
    result = releases.run()
    assert result.returncode == 1
    assert "no sha256 pinned for kind-linux-amd64 (kind v0.31.0)" in result.stderr
    assert "--trust-published-checksums" in result.stderr
    assert releases.installed() == set()


def test_trusting_published_checksums_verifies_them_and_prints_the_pins(releases: Releases) -> None:
    releases.write_versions({})
    releases.publish_checksums()
    result = releases.run("--trust-published-checksums")
    assert result.returncode == 0, result.stderr
    assert releases.installed() == {"kind", "cilium", "hubble"}
    for name, *_ in TOOLS:
        assert f"sha256  {releases.assets[name].name}  {releases.sha(name)}" in result.stdout


def test_trusting_a_wrong_published_checksum_still_fails(releases: Releases) -> None:
    releases.write_versions({})
    releases.publish_checksums(wrong="kind")
    result = releases.run("--trust-published-checksums", "kind")
    assert result.returncode == 1
    assert "the release publishes " + "0" * 64 in result.stderr
    assert releases.installed() == set()


def test_an_installed_pinned_tool_is_not_downloaded_again(releases: Releases) -> None:
    releases.write_versions({"kind": releases.sha("kind")})
    assert releases.run("kind").returncode == 0
    releases.assets["kind"].unlink()  # a second download would now fail
    again = releases.run("kind")
    assert again.returncode == 0, again.stderr
    assert "already installed" in again.stdout


def test_unknown_tool_is_refused(releases: Releases) -> None:
    releases.write_versions({})
    result = releases.run("kubectl")
    assert result.returncode == 1
    assert "unknown tool kubectl (known: kind cilium hubble" in result.stderr
