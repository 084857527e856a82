"""Fixtures of the report tests: one headless Chromium for every browser test of the session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.report.cdp import CHROMIUM, SKIP_REASON, Browser


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Headless Chromium with the network off; started once (a start costs seconds), skipped when absent."""
    if not CHROMIUM.exists():
        pytest.skip(SKIP_REASON)
    started = Browser()
    yield started
    started.close()
