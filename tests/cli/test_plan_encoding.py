"""A plan's JSON records encoded once per decision class (``flowcheck.cli.plan_encoding``) are each flow's own.

The text must be what encoding each flow's record gives, for every flow, whatever the record
function: one that only contains the names is templated, one that derives something else from a
name is caught on the first flow and encoded flow by flow.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any

import pytest

from flowcheck.cli.json_stream import COMPACT_SEPARATORS
from flowcheck.cli.plan_encoding import encoded_plan_records
from flowcheck.model.engine import SEMANTICS, Model
from flowcheck.model.matrix import PlannedFlow, decide_matrix, iter_matrix_classes
from flowcheck.model.policies import load_policies
from flowcheck.model.render import plan_record
from flowcheck.model.topology import load_topology
from tests.conftest import POLICIES_DIR, REPO_ROOT
from tests.model.decision_corpus import _random_policies, _random_topology


def _models() -> Iterator[Model]:
    topology = load_topology(REPO_ROOT / "fixtures" / "topology.yaml")
    policy_set = load_policies([POLICIES_DIR])
    rng = random.Random(13)
    pairs = [(topology, policy_set)]
    for _ in range(12):
        random_topology = _random_topology(rng)
        pairs.append((random_topology, _random_policies(rng, random_topology)))
    for semantics in SEMANTICS:
        for topo, policies in pairs:
            yield Model(topo, policies, semantics)


def _one_by_one(model: Model, record: Any) -> list[str]:
    return [json.dumps(record(p), separators=COMPACT_SEPARATORS) for p in decide_matrix(model)]


def test_templated_records_are_each_flows_own_record() -> None:
    for model in _models():
        assert list(encoded_plan_records(iter_matrix_classes(model), plan_record)) == _one_by_one(model, plan_record)


def _split_names(p: PlannedFlow) -> dict[str, Any]:
    """A record function that derives more than the name from it: the stand-ins cannot carry that."""
    return {**plan_record(p), "namespaces": [p.flow.source.describe().split("/")[0],
                                             p.flow.destination.describe().partition("/")[0].upper()]}


@pytest.mark.parametrize("record", [_split_names, lambda p: {"self": p.flow.source == p.flow.destination}])
def test_a_record_that_reads_more_than_the_names_is_encoded_flow_by_flow(record: Any) -> None:
    for model in _models():
        assert list(encoded_plan_records(iter_matrix_classes(model), record)) == _one_by_one(model, record)
