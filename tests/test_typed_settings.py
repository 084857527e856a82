"""Settings are typed, grouped and frozen: mypy refuses a mode that does not exist, and nothing changes them."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from flowcheck.cluster.options import ClusterOptions, ClusterTarget
from flowcheck.harness.preupgrade import PreUpgradeOptions
from flowcheck.harness.settings import CheckInputs, RunSettings
from flowcheck.plugin.settings import ClusterChoice, FlowcheckSettings
from tests.conftest import REPO_ROOT

WRONG_MODES = '''
from pathlib import Path

from flowcheck.harness.settings import CheckInputs
from flowcheck.plugin.settings import ClusterChoice

ClusterChoice(mode="kind-cluster")
CheckInputs(policies=(), topology=Path("t.yaml"), semantics="calico")
ClusterChoice(mode="existing")
'''


def test_mypy_refuses_a_cluster_mode_or_semantics_that_does_not_exist(tmp_path: Path) -> None:
    from mypy import api

    snippet = tmp_path / "wrong_modes.py"
    snippet.write_text(WRONG_MODES)
    out, err, status = api.run(["--config-file", str(REPO_ROOT / "pyproject.toml"), "--no-error-summary",
                                "--cache-dir", str(REPO_ROOT / ".mypy_cache"), str(snippet)])
    errors = [line for line in out.splitlines() if ": error:" in line]
    assert status == 1, out + err
    assert len(errors) == 2, out
    assert "wrong_modes.py:7: error:" in out and "'kind-cluster'" in out
    assert "wrong_modes.py:8: error:" in out and "'calico'" in out


def test_settings_are_frozen() -> None:
    settings = FlowcheckSettings(check=CheckInputs(policies=(), topology=Path("t.yaml")), repo_root=Path())
    for frozen in (settings, settings.cluster, settings.check, settings.probe, settings.output,
                   RunSettings(check=settings.check, repo_root=Path()), ClusterOptions(), ClusterTarget()):
        field = dataclasses.fields(frozen)[0].name
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(frozen, field, None)
    assert ClusterChoice().mode == "auto"
    assert dataclasses.is_dataclass(PreUpgradeOptions)
