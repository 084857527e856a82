"""The `flowcheck` command: version, help, exit codes (design §4: 0 done, 2 bad input, 1 internal)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from flowcheck import __version__
from flowcheck.cli import main
from tests.conftest import POLICIES_DIR


def test_version_is_printed(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"flowcheck {__version__}"


def test_console_script_is_installed() -> None:
    result = subprocess.run([Path(sys.executable).parent / "flowcheck", "--help"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0
    assert "validate" in result.stdout


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: flowcheck" in capsys.readouterr().out


def test_validate_accepts_the_repository_policies(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(POLICIES_DIR)]) == 0
    assert "4 objects checked, 0 errors" in capsys.readouterr().out


def test_validate_exits_2_naming_file_and_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: x}\n"
                   "spec: {podSelector: {}, policyTypes: [Ingress], ingres: []}\n")
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad} (document 0), field spec.ingres: unknown field 'ingres'" in err


def test_missing_path_is_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "/nonexistent/policies"]) == 2
    assert "/nonexistent/policies: no such file or directory" in capsys.readouterr().err


def test_pre_upgrade_refuses_a_context_that_was_not_opted_in(capsys: pytest.CaptureFixture[str]) -> None:
    """Wiring of `flowcheck pre-upgrade` (the steps are tested in tests/harness/test_preupgrade.py):
    the context guard answers before anything runs."""
    assert main(["pre-upgrade", "1.20.0", "--context", "staging"]) == 2
    err = capsys.readouterr().err
    assert "step 'context guard' failed: refusing kube context 'staging'" in err
    assert "--allow-context staging" in err
