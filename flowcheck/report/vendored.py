"""The JavaScript libraries the HTML report inlines, read from the package's ``vendor/`` directory.

The service map draws with Cytoscape.js and lays out with cytoscape-fcose (and the two iVis
libraries it is built on). A report must work offline from a CI artifact, so nothing is fetched
when a page is viewed: the files are committed unchanged from their npm tarballs under
``flowcheck/report/vendor/`` with ``manifest.json`` (package, version, tarball integrity, the path
inside the tarball, sha256 and size of each file, in load order). ``scripts/vendor_js.py`` fetches
and checks them; neither the runtime nor CI needs npm.

Each script is inlined behind a comment with its package name, version and LICENSE text: MIT asks
for the notice in every copy, and the three iVis files carry none of their own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

VENDOR_DIR = "vendor"
MANIFEST_FILE = "manifest.json"


class VendoredFileError(RuntimeError):
    """A vendored file cannot be inlined (a broken install, not bad user input)."""


@dataclass(frozen=True, slots=True)
class VendoredFile:
    """One file taken from an npm tarball: where it was (``source``), where it is (``target``)."""

    source: str
    target: str
    sha256: str
    size: int


@dataclass(frozen=True, slots=True)
class VendoredPackage:
    """One pinned npm package: its script (inlined) and its licence text (inlined as a comment)."""

    name: str
    version: str
    license: str
    integrity: str
    script: VendoredFile
    license_file: VendoredFile

    @property
    def spec(self) -> str:
        """``cytoscape@3.35.0``."""
        return f"{self.name}@{self.version}"


def vendor_root() -> Traversable:
    return resources.files("flowcheck.report").joinpath(VENDOR_DIR)


def _file(entry: Any) -> VendoredFile:
    return VendoredFile(str(entry["from"]), str(entry["to"]), str(entry["sha256"]), int(entry["size"]))


@cache
def vendored_packages() -> tuple[VendoredPackage, ...]:
    """The packages of ``manifest.json``, in the order the page must load them."""
    data = json.loads(vendor_root().joinpath(MANIFEST_FILE).read_text(encoding="utf-8"))
    return tuple(
        VendoredPackage(str(p["name"]), str(p["version"]), str(p["license"]), str(p["integrity"]),
                        _file(p["script"]), _file(p["license_file"]))
        for p in data["packages"]
    )


def read_vendored(entry: VendoredFile) -> str:
    return vendor_root().joinpath(entry.target).read_text(encoding="utf-8")


def inline_script_text(name: str, text: str) -> str:
    """``text`` made safe to sit inside ``<script>``: no closing tag, no source-map fetch.

    A ``//# sourceMappingURL=`` comment would make a browser with developer tools open fetch the map,
    so such lines are dropped (none of the pinned files has one; a re-vendored version might).
    """
    if "</script" in text.lower():
        raise VendoredFileError(f"{name}: contains '</script', cannot be inlined in a <script> element")
    lines = text.splitlines(keepends=True)
    return "".join(line for line in lines if not line.lstrip().startswith(("//# sourceMappingURL=",
                                                                           "//@ sourceMappingURL=")))


def licence_banner(package: VendoredPackage) -> str:
    """A ``/*! ... */`` comment with the package, its licence and the LICENSE text (kept by minifiers)."""
    text = read_vendored(package.license_file).strip().replace("*/", "* /")
    return f"/*! {package.spec} ({package.license}), {package.script.source} in its npm tarball\n{text}\n*/"


@cache
def vendored_scripts() -> tuple[tuple[VendoredPackage, str], ...]:
    """Each package with the text to put in its ``<script>``: licence banner, then the file unchanged."""
    out = []
    for package in vendored_packages():
        body = inline_script_text(package.script.target, read_vendored(package.script))
        out.append((package, f"{licence_banner(package)}\n{body}"))
    return tuple(out)
