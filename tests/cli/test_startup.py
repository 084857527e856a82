"""What every `flowcheck` start imports: not the report layer nor the harness (commands import them when they run).

Every command pays its start-up before doing anything; ``flowcheck plan --format json`` on a large
topology is measured as a process (``benchmarks/plan_command.py``), and importing the HTML report,
the baselines and the pre-upgrade harness cost it a tenth of a second or more for nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys


def _loaded_after(code: str) -> list[str]:
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    return [m for m in json.loads(out) if m.startswith(("flowcheck.report", "flowcheck.harness"))]


def test_starting_the_command_imports_neither_the_report_layer_nor_the_harness() -> None:
    assert _loaded_after("import flowcheck.cli; flowcheck.cli.build_parser()") == []


def test_the_modules_are_still_loaded_where_they_are_used() -> None:
    """The check above can fail: the same probe sees them once a command that needs them is imported."""
    assert "flowcheck.report.baseline" in _loaded_after("import flowcheck.cli; import flowcheck.report.baseline")
