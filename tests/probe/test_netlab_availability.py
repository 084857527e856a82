"""The lab says why it cannot run (for the skip message) instead of failing obscurely: not root, no
``ip``, no ``nft``. Runs anywhere (no root needed): the checks are exercised with the facts faked."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from tests.netlab import lab as netlab


@pytest.fixture
def fresh_check() -> Iterator[None]:
    netlab.netlab_unavailable_reason.cache_clear()
    yield
    netlab.netlab_unavailable_reason.cache_clear()


@pytest.mark.usefixtures("fresh_check")
def test_not_root_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    reason = netlab.netlab_unavailable_reason()
    assert reason is not None and "needs root" in reason


@pytest.mark.usefixtures("fresh_check")
@pytest.mark.parametrize(("tool", "package"), [("ip", "iproute2"), ("nft", "nftables")])
def test_missing_tool_is_named_with_how_to_get_it(monkeypatch: pytest.MonkeyPatch, tool: str, package: str) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    real_which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name: None if name == tool else real_which(name) or f"/bin/{name}")
    reason = netlab.netlab_unavailable_reason()
    assert reason is not None
    assert f"`{tool}`" in reason and f"apt-get install -y {package}" in reason


def test_the_lab_refuses_to_start_where_it_cannot_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(netlab, "netlab_unavailable_reason", lambda: "the netns lab needs root")
    with pytest.raises(netlab.LabError, match="needs root"), netlab.NetLab():
        pass
