"""The vendored JavaScript: committed files match the manifest, and the re-vendor script checks what it fetches.

The script is tested with tarballs built here and a fake ``npm pack`` (no network); it ran for real
against the npm registry when the files were vendored.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import io
import json
import re
import sys
import tarfile
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from flowcheck.report.vendored import (
    VendoredFileError,
    inline_script_text,
    vendor_root,
    vendored_packages,
    vendored_scripts,
)

ROOT = Path(__file__).resolve().parents[2]


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("vendor_js", ROOT / "scripts" / "vendor_js.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["vendor_js"] = module
    spec.loader.exec_module(module)
    return module


vendor_js = load_script()


def test_every_committed_file_has_the_sha256_and_size_the_manifest_pins() -> None:
    packages = vendored_packages()
    assert [p.spec for p in packages] == ["cytoscape@3.35.0", "layout-base@2.0.1", "cose-base@2.2.0",
                                          "cytoscape-fcose@2.2.0"]  # load order: the extension last
    for package in packages:
        for entry in (package.script, package.license_file):
            data = vendor_root().joinpath(entry.target).read_bytes()
            assert (hashlib.sha256(data).hexdigest(), len(data)) == (entry.sha256, entry.size), entry.target


def test_each_inlined_script_starts_with_its_package_and_licence_text() -> None:
    scripts = vendored_scripts()
    for package, text in scripts:
        banner, _, body = text.partition("\n*/\n")
        assert banner.startswith(f"/*! {package.spec} (MIT)")
        assert "Permission is hereby granted, free of charge" in banner
        assert body == vendor_root().joinpath(package.script.target).read_text(encoding="utf-8")  # unchanged


def test_inlining_refuses_a_closing_script_tag_and_drops_source_maps() -> None:
    with pytest.raises(VendoredFileError, match=re.escape("x.js: contains '</script'")):
        inline_script_text("x.js", "var a = '</SCRIPT>';")
    assert inline_script_text("x.js", "var a = 1;\n//# sourceMappingURL=a.map\nvar b;\n") == "var a = 1;\nvar b;\n"


def sri(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def tarball(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


SCRIPT = b"(function(){ window.demo = 1; })();\n"
LICENSE = b"MIT License\n"


def write_manifest(tmp_path: Path, tgz: bytes, *, script_sha: str | None = None) -> Path:
    entry = {
        "name": "demo", "version": "1.0.0", "license": "MIT", "integrity": sri(tgz),
        "script": {"from": "package/demo.js", "to": "demo/demo.js",
                   "sha256": script_sha or hashlib.sha256(SCRIPT).hexdigest(), "size": len(SCRIPT)},
        "license_file": {"from": "package/LICENSE", "to": "demo/LICENSE",
                         "sha256": hashlib.sha256(LICENSE).hexdigest(), "size": len(LICENSE)},
    }
    path = tmp_path / "vendor" / "manifest.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"packages": [entry]}), encoding="utf-8")
    return path


def fake_npm(tgz: bytes) -> Any:
    calls: list[str] = []

    def fetch(spec: str, directory: Path) -> bytes:
        calls.append(spec)
        return tgz

    fetch.calls = calls  # type: ignore[attr-defined]
    return fetch


def test_revendoring_writes_the_files_of_a_tarball_matching_its_pins(tmp_path: Path) -> None:
    tgz = tarball({"package/demo.js": SCRIPT, "package/LICENSE": LICENSE, "package/other.js": b"x"})
    manifest = write_manifest(tmp_path, tgz)
    fetch = fake_npm(tgz)
    assert vendor_js.main(["--manifest", str(manifest)], fetch=fetch) == 0
    assert fetch.calls == ["demo@1.0.0"]
    assert (manifest.parent / "demo" / "demo.js").read_bytes() == SCRIPT
    assert (manifest.parent / "demo" / "LICENSE").read_bytes() == LICENSE
    assert sorted(p.name for p in (manifest.parent / "demo").iterdir()) == ["LICENSE", "demo.js"]
    assert vendor_js.main(["--manifest", str(manifest), "--check"], fetch=fetch) == 0


def test_a_tarball_that_is_not_the_pinned_one_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pinned = tarball({"package/demo.js": SCRIPT, "package/LICENSE": LICENSE})
    manifest = write_manifest(tmp_path, pinned)
    served = tarball({"package/demo.js": b"evil();\n", "package/LICENSE": LICENSE})
    assert vendor_js.main(["--manifest", str(manifest)], fetch=fake_npm(served)) == 1
    assert "demo@1.0.0: tarball sha512 is" in capsys.readouterr().err
    assert not (manifest.parent / "demo").exists()


def test_a_file_whose_sha256_moved_is_refused_unless_recorded(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    tgz = tarball({"package/demo.js": SCRIPT, "package/LICENSE": LICENSE})
    manifest = write_manifest(tmp_path, tgz, script_sha="0" * 64)
    assert vendor_js.main(["--manifest", str(manifest)], fetch=fake_npm(tgz)) == 1
    assert "use --record only for a deliberate bump" in capsys.readouterr().err
    assert vendor_js.main(["--manifest", str(manifest), "--record"], fetch=fake_npm(tgz)) == 0
    recorded = json.loads(manifest.read_text(encoding="utf-8"))["packages"][0]["script"]
    assert recorded["sha256"] == hashlib.sha256(SCRIPT).hexdigest()


def test_check_mode_reports_a_committed_file_that_differs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tgz = tarball({"package/demo.js": SCRIPT, "package/LICENSE": LICENSE})
    manifest = write_manifest(tmp_path, tgz)
    assert vendor_js.main(["--manifest", str(manifest)], fetch=fake_npm(tgz)) == 0
    (manifest.parent / "demo" / "demo.js").write_bytes(b"edited by hand\n")
    assert vendor_js.main(["--manifest", str(manifest), "--check"], fetch=fake_npm(tgz)) == 1
    assert "demo/demo.js: differs from package/demo.js in demo@1.0.0" in capsys.readouterr().err


def test_a_missing_file_in_the_tarball_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tgz = tarball({"package/demo.js": SCRIPT})
    manifest = write_manifest(tmp_path, tgz)
    assert vendor_js.main(["--manifest", str(manifest)], fetch=fake_npm(tgz)) == 1
    assert "demo@1.0.0: the tarball has no package/LICENSE" in capsys.readouterr().err
