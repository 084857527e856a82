"""The service map's data: nodes, one edge per path, categories, mismatches and diffs, from report records."""

from __future__ import annotations

import random

import pytest

from flowcheck.report.endpoints import EndpointKind
from flowcheck.report.records import CheckedFlow
from flowcheck.report.service_map import (
    OUTSIDE_GROUP,
    DiffStatus,
    EdgeCategory,
    EdgeChange,
    EdgeRequest,
    build_service_map,
    diff_service_maps,
    edge_category,
)
from flowcheck.verdict import Verdict
from tests.report.map_samples import default_view_count, synthetic_plan
from tests.report.sample import sample_flows

A, D, L7, U, R, E = (Verdict.ALLOWED, Verdict.DROPPED, Verdict.L7_DENIED, Verdict.UNKNOWN, Verdict.REFUSED,
                     Verdict.ERROR)


def flow(source: str, target: str, model: Verdict, *, port: int | None = 8080, protocol: str = "TCP",
         **extra: object) -> CheckedFlow:
    return CheckedFlow(source, target, protocol, port, model, **extra)  # type: ignore[arg-type]


def test_a_plan_becomes_one_edge_per_path_without_self_flows() -> None:
    plan = [flow("default/web", "default/web", A, model_reasons=("its own IP",)),
            flow("tenant/client", "default/my-api", D, model_reasons=("default deny",)),
            flow("default/web", "default/my-api", A, model_reasons=("rule 0",)),
            flow("default/web", "default/my-api", A, port=9090),
            flow("default/web", "world (1.1.1.1)", U, port=443)]
    service_map = build_service_map(plan)
    assert [(e.source, e.target, e.transport, e.category) for e in service_map.edges] == [
        ("default/web", "default/my-api", "8080/TCP", EdgeCategory.ALLOWED),
        ("default/web", "default/my-api", "9090/TCP", EdgeCategory.ALLOWED),
        ("default/web", "world (1.1.1.1)", "443/TCP", EdgeCategory.UNKNOWN),
        ("tenant/client", "default/my-api", "8080/TCP", EdgeCategory.DROPPED),
    ]
    assert [(n.id, n.kind, n.group, n.label) for n in service_map.nodes] == [
        ("default/my-api", EndpointKind.WORKLOAD, "default", "my-api"),
        ("default/web", EndpointKind.WORKLOAD, "default", "web"),
        ("tenant/client", EndpointKind.WORKLOAD, "tenant", "client"),
        ("world (1.1.1.1)", EndpointKind.ENTITY, OUTSIDE_GROUP, "world (1.1.1.1)"),
    ]
    assert service_map.groups == ("default", "tenant", OUTSIDE_GROUP)
    assert service_map.edges[0].reasons == ("rule 0",)


def test_l7_requests_fold_into_their_paths_edge_and_keep_their_own_verdicts() -> None:
    records = [flow("default/web", "default/my-api", L7, request="POST /orders", expected=L7, observed=L7,
                    model_reasons=("no http rule matches POST",), evidence=("... http-request DROPPED ...",)),
               flow("default/web", "default/my-api", A, request="GET /orders", expected=A, observed=A,
                    model_reasons=("http GET /.* matched",))]
    (edge,) = build_service_map(records).edges
    assert edge.category is EdgeCategory.L7_FILTERED
    assert edge.l7 == "passes: GET /orders"
    assert [(r.request, r.outcome, r.reasons) for r in edge.requests] == [
        ("GET /orders", A, ("http GET /.* matched",)),
        ("POST /orders", L7, ("no http rule matches POST",)),
    ]
    assert edge.requests[1].evidence == ("... http-request DROPPED ...",)
    assert edge.reasons == ("http GET /.* matched", "no http rule matches POST")


def test_what_passes_the_l7_proxy_labels_the_edge_when_a_record_says_it() -> None:
    (edge,) = build_service_map([flow("tenant/client", "default/my-api", A, l7_passes="GET /.* only")]).edges
    assert (edge.category, edge.l7) == (EdgeCategory.L7_FILTERED, "GET /.* only")


def request(outcome: Verdict, l7_passes: str | None = None) -> EdgeRequest:
    return EdgeRequest(None, outcome, outcome, None, None, "not probed", (), l7_passes=l7_passes)


@pytest.mark.parametrize(("outcomes", "category"), [
    ([A], EdgeCategory.ALLOWED),
    ([A, A], EdgeCategory.ALLOWED),
    ([D], EdgeCategory.DROPPED),
    ([L7, L7], EdgeCategory.L7_DENIED),
    ([A, L7], EdgeCategory.L7_FILTERED),
    ([A, D], EdgeCategory.MIXED),
    ([A, L7, D], EdgeCategory.MIXED),
    ([L7, D], EdgeCategory.L7_DENIED),
    ([A, U], EdgeCategory.UNKNOWN),          # an undecided request: the edge must not read as a pass
    ([A, R, U], EdgeCategory.REFUSED),
    ([E, R, A], EdgeCategory.ERROR),
])
def test_an_edges_category_follows_its_requests_outcomes(outcomes: list[Verdict], category: EdgeCategory) -> None:
    assert edge_category(request(v) for v in outcomes) is category
    assert edge_category(request(v) for v in reversed(outcomes)) is category


def test_an_edge_shows_the_observed_outcome_where_probed() -> None:
    (edge,) = build_service_map([flow("default/web", "kube-system/coredns", A, port=53, protocol="UDP",
                                      expected=A, observed=D, attempts=3)]).edges
    assert edge.category is EdgeCategory.DROPPED
    assert edge.probed
    assert edge.requests[0].observed_text == "dropped (3 attempts)"
    assert edge.mismatch_texts == ("live vs expected: expected allowed, observed dropped",)


def test_mismatches_are_named_per_request_with_the_tables_sentences() -> None:
    records = [flow("default/web", "default/my-api", A, request="GET /", expected=A),
               flow("default/web", "default/my-api", A, request="DELETE /", expected=L7)]
    service_map = build_service_map(records)
    (edge,) = service_map.edges
    assert edge.mismatch_texts == ("DELETE /: intent vs model: expected l7-denied, the model predicts allowed",)
    assert service_map.mismatches == (edge,)


def test_the_sample_run_draws_world_outside_the_cluster_and_counts_four_mismatches() -> None:
    service_map = build_service_map(sample_flows())
    world = next(n for n in service_map.nodes if n.id == "world")
    assert (world.kind, world.group) == (EndpointKind.ENTITY, OUTSIDE_GROUP)
    assert len(service_map.mismatches) == 4
    assert service_map.probed


def test_the_same_records_in_any_order_give_the_same_map() -> None:
    records = list(synthetic_plan())
    shuffled = records[:]
    random.Random(3).shuffle(shuffled)
    assert build_service_map(shuffled) == build_service_map(records)


def test_the_default_view_count_helper_agrees_with_the_map_on_the_synthetic_plan() -> None:
    service_map = build_service_map(synthetic_plan())
    drawn = [e for e in service_map.edges if e.category is not EdgeCategory.DROPPED or e.mismatch]
    assert len(drawn) == default_view_count(synthetic_plan()) == 178


def test_a_diff_marks_opened_closed_l7_moves_and_changed_edges_with_the_older_side() -> None:
    before = [flow("a/x", "b/y", D, model_reasons=("deny",)),
              flow("a/x", "b/z", A, model_reasons=("allow z",)),
              flow("a/x", "b/w", A),
              flow("a/x", "b/v", A),
              flow("a/x", "b/u", D),
              flow("a/x", "b/gone", A, model_reasons=("allow gone",)),
              flow("a/x", "b/gone-dropped", D),
              flow("a/x", "b/t", A, l7_passes="GET"),
              flow("a/x", "b/s", A, l7_passes="GET")]
    after = [flow("a/x", "b/y", A),
             flow("a/x", "b/z", D),
             flow("a/x", "b/w", A, l7_passes="GET only"),
             flow("a/x", "b/v", A),
             flow("a/x", "b/u", L7),
             flow("a/x", "b/new", A),
             flow("a/x", "b/new-dropped", D),
             flow("a/x", "b/t", A),
             flow("a/x", "b/s", A, l7_passes="GET, POST /x")]
    diff = diff_service_maps(build_service_map(before), build_service_map(after))
    changes = {e.target: e.change for e in diff.edges}
    assert changes == {
        "b/y": EdgeChange(DiffStatus.OPENED, EdgeCategory.DROPPED, EdgeCategory.ALLOWED, "", ("deny",)),
        "b/z": EdgeChange(DiffStatus.CLOSED, EdgeCategory.ALLOWED, EdgeCategory.DROPPED, "", ("allow z",)),
        "b/w": EdgeChange(DiffStatus.L7_FILTERED, EdgeCategory.ALLOWED, EdgeCategory.L7_FILTERED),
        "b/t": EdgeChange(DiffStatus.L7_UNFILTERED, EdgeCategory.L7_FILTERED, EdgeCategory.ALLOWED, "GET"),
        "b/s": EdgeChange(DiffStatus.CHANGED, EdgeCategory.L7_FILTERED, EdgeCategory.L7_FILTERED, "GET"),
        "b/v": None,
        "b/u": EdgeChange(DiffStatus.CHANGED, EdgeCategory.DROPPED, EdgeCategory.L7_DENIED),
        "b/new": EdgeChange(DiffStatus.OPENED, None, EdgeCategory.ALLOWED),
        "b/new-dropped": None,
        "b/gone": EdgeChange(DiffStatus.CLOSED, EdgeCategory.ALLOWED, None, "", ("allow gone",)),
    }
    assert "b/gone-dropped" not in {n.id for n in diff.nodes}
    assert [e.target for e in diff.changes] == ["b/gone", "b/new", "b/s", "b/t", "b/u", "b/w", "b/y",
                                                "b/z"]  # sorted by path
