"""The JSON form of a plan for ``flowcheck plan --format json``: docs/contracts.md, "The flowcheck command"
exactly (scripts depend on it).

The human forms (a per-flow table, Markdown, the truth tables, HTML) live in ``flowcheck.report``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flowcheck.model.matrix import PlannedFlow


def plan_json(planned: Sequence[PlannedFlow]) -> dict[str, Any]:
    """``{"results": [{"from", "to", "port", "protocol", "verdict", "reasons"}, ...]}``.

    The form docs/contracts.md ("The flowcheck command") gives.
    """
    return {**plan_head(), "results": [plan_record(p) for p in planned]}


def plan_head() -> dict[str, Any]:
    """The fields of a plan's JSON document before its ``results`` (none in version 1)."""
    return {}


def plan_record(p: PlannedFlow) -> dict[str, Any]:
    """One flow of a plan's ``results``; ``flowcheck plan`` streams these (``flowcheck.cli.json_stream``)."""
    return {"from": p.flow.source.describe(), "to": p.flow.destination.describe(), "port": p.flow.port,
            "protocol": p.flow.protocol, "verdict": p.decision.verdict.value, "reasons": list(p.decision.reasons)}

