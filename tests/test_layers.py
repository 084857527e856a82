"""What import-linter cannot see: only the command line (``flowcheck/cli/``) reads ``sys.argv``.

(``pyproject.toml``'s contracts keep ``argparse`` there; the probe agent and server, standalone
scripts run in pods, parse their own command lines.)
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO_ROOT

PACKAGE = REPO_ROOT / "flowcheck"
OWN_COMMAND_LINES = {PACKAGE / "probe" / "agent.py", PACKAGE / "probe" / "server.py"}


def _argv_reads(path: Path) -> list[str]:
    return [f"{path}:{node.lineno}: sys.argv" for node in ast.walk(ast.parse(path.read_text(), str(path)))
            if isinstance(node, ast.Attribute) and node.attr == "argv" and isinstance(node.value, ast.Name)
            and node.value.id == "sys"]


def test_only_the_cli_reads_argv() -> None:
    lower = [p for p in PACKAGE.rglob("*.py") if PACKAGE / "cli" not in p.parents and p not in OWN_COMMAND_LINES]
    assert len(lower) > 50
    offenders = [line for path in lower for line in _argv_reads(path)]
    assert not offenders, "\n".join(offenders)
    assert _argv_reads(PACKAGE / "cli" / "preupgrade.py"), "the scan finds sys.argv where it is read"
