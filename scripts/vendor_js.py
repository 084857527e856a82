#!/usr/bin/env python3
"""Re-vendor the JavaScript the HTML report inlines (Cytoscape.js + fcose), from npm, checked.

Usage: scripts/vendor_js.py [--check | --record] [--manifest PATH]

For each package in flowcheck/report/vendor/manifest.json (in order):
  1. `npm pack NAME@VERSION` into a temporary directory (npm itself checks the registry's integrity);
  2. the tarball's digest must equal the manifest's `integrity` (an SRI string, e.g. `sha512-...`),
     so a version re-published with other content, or another registry, is refused;
  3. the listed files (`script`, `license_file`) are read from the tarball (`from`) and written
     under flowcheck/report/vendor/ (`to`), unchanged.

  (default)  write the files; refuse any file whose sha256 or size differs from the manifest
  --check    write nothing; exit 1 if a committed file differs from what its tarball holds
  --record   for a deliberate bump (edit `version` and `integrity` -- `npm view NAME@VERSION
             dist.integrity` -- in the manifest first): write the files and record their new sha256
             and size in the manifest. Review the diff and the licence before committing.

Needs npm (the registry is reachable wherever flowcheck is developed); the runtime and CI do not.
Standard library only, so it runs with any python3 >= 3.9, outside the project's virtualenv.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "flowcheck" / "report" / "vendor" / "manifest.json"
NPM_TIMEOUT_S = 300.0  # a cold npm cache on a slow link; a warm pack takes about a second


class VendorError(Exception):
    """Something a maintainer must look at; printed as one line, exit 1."""


def check_integrity(name: str, data: bytes, integrity: str) -> None:
    """``data`` must match the SRI string ``integrity`` (``sha512-<base64>``; sha384 and sha256 also read)."""
    algorithm, _, expected = integrity.partition("-")
    if algorithm not in ("sha512", "sha384", "sha256") or not expected:
        raise VendorError(f"{name}: integrity {integrity!r} is not an SRI string such as sha512-<base64>")
    actual = base64.b64encode(hashlib.new(algorithm, data).digest()).decode("ascii")
    if actual != expected:
        raise VendorError(f"{name}: tarball {algorithm} is {actual}, the manifest pins {expected}; refusing it")


def read_member(name: str, tarball: bytes, member: str) -> bytes:
    """The bytes of one regular file inside a gzipped tarball (nothing is extracted to disk)."""
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
        try:
            info = archive.getmember(member)
        except KeyError:
            raise VendorError(f"{name}: the tarball has no {member}") from None
        handle = archive.extractfile(info) if info.isfile() else None
        if handle is None:
            raise VendorError(f"{name}: {member} in the tarball is not a regular file")
        return handle.read()


def npm_pack(spec: str, directory: Path) -> bytes:
    """Download ``spec``'s tarball with ``npm pack`` and return its bytes."""
    try:
        result = subprocess.run(["npm", "pack", spec, "--json", "--pack-destination", str(directory)],
                                capture_output=True, text=True, timeout=NPM_TIMEOUT_S, check=False)
    except FileNotFoundError:
        raise VendorError("npm is not installed (Debian: apt-get install npm)") from None
    if result.returncode != 0:
        raise VendorError(f"npm pack {spec} failed: {result.stderr.strip()[-500:]}")
    filename = json.loads(result.stdout)[0]["filename"]
    return (directory / filename).read_bytes()


def vendor_package(package: dict[str, Any], tarball: bytes, vendor_dir: Path, mode: str) -> list[str]:
    """Check one package's tarball and files; write (or, with ``mode == "check"``, compare) them.

    Returns the problems found in ``check`` mode; raises ``VendorError`` in the other modes.
    """
    spec = f"{package['name']}@{package['version']}"
    check_integrity(spec, tarball, package["integrity"])
    problems = []
    for key in ("script", "license_file"):
        entry = package[key]
        data = read_member(spec, tarball, entry["from"])
        digest, size = hashlib.sha256(data).hexdigest(), len(data)
        target = vendor_dir / entry["to"]
        if mode == "check":
            committed = target.read_bytes() if target.exists() else None
            if committed != data:
                problems.append(f"{target}: differs from {entry['from']} in {spec}")
            continue
        if mode == "record":
            entry["sha256"], entry["size"] = digest, size
        elif (digest, size) != (entry["sha256"], entry["size"]):
            raise VendorError(f"{spec}: {entry['from']} has sha256 {digest} ({size} bytes), the manifest says "
                              f"{entry['sha256']} ({entry['size']} bytes); use --record only for a deliberate bump")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return problems


def main(argv: list[str] | None = None, fetch: Any = npm_pack) -> int:
    parser = argparse.ArgumentParser(description="Re-vendor the report's JavaScript from npm, checked.")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--check", action="store_true", help="compare the committed files; write nothing")
    group.add_argument("--record", action="store_true", help="record new sha256/size after a deliberate bump")
    parser.add_argument("--manifest", type=Path, default=MANIFEST, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    mode = "check" if args.check else "record" if args.record else "write"
    manifest = json.loads(args.manifest.read_text(encoding="utf-8"))
    problems: list[str] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for package in manifest["packages"]:
                spec = f"{package['name']}@{package['version']}"
                print(f"vendor_js: {spec}", file=sys.stderr)
                problems += vendor_package(package, fetch(spec, Path(tmp)), args.manifest.parent, mode)
    except VendorError as exc:
        print(f"vendor_js: error: {exc}", file=sys.stderr)
        return 1
    if mode == "record":
        args.manifest.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    for problem in problems:
        print(f"vendor_js: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
