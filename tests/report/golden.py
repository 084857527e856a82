"""Golden files: compare rendered output with ``tests/report/golden/<name>``.

Regenerate after an intended change with ``FLOWCHECK_UPDATE_GOLDEN=1 .venv/bin/pytest tests/report``
and review the diff (``git diff tests/report/golden``); without that variable any difference fails.

HTML pages inline the service map's libraries and page logic (about 800 KB of files that live in
the package); ``without_inlined_assets`` leaves them out of a golden file, and
``test_service_map_html`` checks separately that what is inlined is exactly those files.
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path

import pytest

GOLDEN_DIR = Path(__file__).resolve().parent / "golden"
UPDATE_ENV = "FLOWCHECK_UPDATE_GOLDEN"


def assert_matches_golden(name: str, actual: str) -> None:
    path = GOLDEN_DIR / name
    if os.environ.get(UPDATE_ENV) == "1":
        path.write_text(actual, encoding="utf-8")
        return
    if not path.exists():
        pytest.fail(f"golden file {path} is missing; create it with {UPDATE_ENV}=1 and review it")
    expected = path.read_text(encoding="utf-8")
    if actual != expected:
        diff = "".join(difflib.unified_diff(expected.splitlines(keepends=True), actual.splitlines(keepends=True),
                                            fromfile=f"golden/{name}", tofile="rendered", n=2))
        pytest.fail(f"rendering differs from golden/{name} (regenerate with {UPDATE_ENV}=1 if intended):\n{diff}",
                    pytrace=False)


_INLINED = re.compile(r'(<(script|style) data-(?:vendor|asset)="[^"]*">).*?(</\2>)', re.S)


def without_inlined_assets(html: str) -> str:
    """``html`` with the body of every inlined vendor/asset ``<script>``/``<style>`` replaced by ``...``."""
    return _INLINED.sub(r"\1...\3", html)
