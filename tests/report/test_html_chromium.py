"""The HTML report opened in a real browser: headless Chromium (Debian's ``chromium`` package) screenshots it.

Structural tests prove what the markup says; this proves a browser renders it from ``file://``
with no network: the screenshot must contain the green, red and amber of the cells. Marked
``slow`` (starting Chromium takes seconds). Install with ``apt-get install -y chromium``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from flowcheck.report.files import write_report_dir
from tests.report.pngread import read_png
from tests.report.sample import sample_report

CHROMIUM = Path("/usr/bin/chromium")
WINDOW = (1400, 900)
CHROMIUM_TIMEOUT_S = 120.0  # first start on a cold CI runner builds caches; a normal run takes 2-5 s

# Cell backgrounds from html_page's stylesheet (Hubble UI's green / red / amber).
GREEN = (0xDA, 0xFB, 0xE1)
RED = (0xFF, 0xEB, 0xE9)
AMBER = (0xFF, 0xF1, 0xC2)


def near(colour: tuple[int, int, int], target: tuple[int, int, int], tolerance: int = 3) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(colour, target, strict=True))


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} not installed (Debian: apt-get install -y chromium)")
def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    paths = write_report_dir(sample_report(), tmp_path / "report")
    screenshot = tmp_path / "report.png"
    command = [
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={screenshot}",
        f"--window-size={WINDOW[0]},{WINDOW[1]}", paths.html.resolve().as_uri(),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT_S, check=False)
    assert result.returncode == 0, f"chromium exited {result.returncode}:\n{result.stderr[-2000:]}"
    assert screenshot.exists(), f"no screenshot written; chromium said:\n{result.stderr[-2000:]}"
    assert screenshot.stat().st_size > 20_000  # a blank 1400x900 page compresses to ~5 KB

    width, height, colours = read_png(screenshot)
    assert (width, height) == WINDOW
    assert len(colours) > 50  # text, borders, anti-aliasing: a rendered page, not a flat fill
    for name, target in (("green", GREEN), ("red", RED), ("amber", AMBER)):
        pixels = sum(n for colour, n in colours.items() if near(colour, target))
        assert pixels > 500, f"no {name} cell visible in {screenshot}"
