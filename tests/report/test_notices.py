"""The notices every rendering shows for a live run: interrupted, not checked, evidence, placement, changes."""

from __future__ import annotations

import json

from flowcheck.report.html_page import render_html
from flowcheck.report.markdown import render_markdown
from flowcheck.report.notices import run_notices
from flowcheck.report.records import CheckedFlow, MatrixReport
from flowcheck.report.terminal import render_table
from flowcheck.verdict import Verdict


def flow(observed: Verdict | None, *, placement: str = "", via: str = "", evidence: str = "", test: str = "t::a",
         detail: str = "", destination: str = "default/web") -> CheckedFlow:
    nodes = {"same-node": ("w1", "w1"), "cross-node": ("w1", "w2")}.get(placement, ("", ""))
    return CheckedFlow(source="tenant/client", destination=destination, protocol="TCP", port=8080,
                       model=Verdict.DROPPED, expected=Verdict.DROPPED, observed=observed, observed_detail=detail,
                       test=test, source_node=nodes[0], destination_node=nodes[1], placement=placement,
                       probed_via=via, evidence_state=evidence)


def test_a_clean_complete_run_has_no_notices_but_where_it_probed() -> None:
    assert run_notices(MatrixReport((flow(Verdict.DROPPED), flow(None, detail="not probed: offline")))) == []
    report = MatrixReport((flow(Verdict.DROPPED, placement="same-node", via="a -> b"),
                           flow(Verdict.DROPPED, placement="cross-node", via="a -> c")))
    assert run_notices(report) == ["placement: 1 path(s) probed both same-node and cross-node, 0 same-node only, "
                                   "0 cross-node only"]


def test_every_rendering_of_a_record_says_where_it_was_probed() -> None:
    report = MatrixReport((flow(Verdict.ALLOWED, placement="cross-node", via="tenant/client-n0 -> default/web-n1"),))
    where = "cross-node: tenant/client-n0 -> default/web-n1 (nodes w1 -> w2)"
    assert where in render_table(report)  # the mismatch list (observed allowed, expected dropped)
    assert where.replace(">", "\\>") in render_markdown(report)  # Markdown escapes ">"
    assert where.replace(">", "&gt;") in render_html(report)


def test_an_interrupted_run_says_so_in_every_rendering() -> None:
    report = MatrixReport((flow(None, detail="not checked: the check stopped (KeyboardInterrupt: )"),),
                          {"interrupted": "yes: the run was interrupted (Ctrl-C or a signal)",
                           "not_run": "2 of 3 tests (their paths were not checked): t::b, t::c"})
    [interrupted, unchecked] = run_notices(report)
    assert interrupted == ("INTERRUPTED -- yes: the run was interrupted (Ctrl-C or a signal); tests not run: 2 of 3 "
                           "tests (their paths were not checked): t::b, t::c")
    assert unchecked == "1 declared path(s) not checked: tenant/client -> default/web:8080/TCP"
    assert f"note: {interrupted}" in render_table(report).splitlines()
    assert f"> **Note**: {interrupted}" in render_markdown(report)
    assert '<p class="notice"><strong>Note:</strong> INTERRUPTED -- yes: the run was interrupted' in render_html(report)


def test_hubble_evidence_is_counted() -> None:
    report = MatrixReport((flow(Verdict.DROPPED, evidence="confirmed"), flow(Verdict.DROPPED, evidence="none"),
                           flow(Verdict.ERROR, evidence="contradicted"), flow(Verdict.DROPPED)))
    assert run_notices(report) == ["Hubble evidence for 3 probe record(s): 1 confirmed, 1 no evidence (no flow "
                                   "decided), 1 contradicted (reported as errors)"]


def test_a_verdict_that_differs_by_placement_is_shown_with_both() -> None:
    report = MatrixReport((flow(Verdict.DROPPED, placement="same-node", via="c-n0 -> web-n0"),
                           flow(Verdict.ALLOWED, placement="cross-node", via="c-n0 -> web-n1")))
    assert run_notices(report)[1:] == ["verdict differs by placement: tenant/client -> default/web:8080/TCP: "
                                       "cross-node allowed, same-node dropped"]
    assert "note: verdict differs by placement" in render_table(report)


def test_a_path_observed_differently_within_the_run_is_shown_across_tests() -> None:
    report = MatrixReport((flow(Verdict.ALLOWED, via="c -> web", test="t::first"),
                           flow(Verdict.DROPPED, via="c -> web", test="t::second"),
                           flow(Verdict.DROPPED, via="c -> web", test="t::third")))
    assert run_notices(report) == ["observed differently within this run: tenant/client -> default/web:8080/TCP "
                                   "[c -> web]: allowed (t::first), dropped (t::second)"]


def test_the_probe_fields_round_trip_through_matrix_json_and_stay_optional() -> None:
    record = flow(Verdict.DROPPED, placement="cross-node", via="tenant/client-n0 -> default/web-n1",
                  evidence="confirmed")
    data = json.loads(json.dumps(record.to_json()))
    assert {k: data[k] for k in ("source_node", "destination_node", "placement", "probed_via", "evidence_state")} == {
        "source_node": "w1", "destination_node": "w2", "placement": "cross-node",
        "probed_via": "tenant/client-n0 -> default/web-n1", "evidence_state": "confirmed"}
    assert CheckedFlow.from_json(data) == record
    offline = flow(None).to_json()
    assert "placement" not in offline and "evidence_state" not in offline  # files without them read as before


def test_the_summary_counts_paths_not_records_and_says_when_a_paths_records_disagree() -> None:
    from flowcheck.report.truth_table import build_truth_table, summarize

    both = (flow(Verdict.DROPPED, placement="same-node", via="a -> b"),
            flow(Verdict.DROPPED, placement="cross-node", via="a -> c"))
    assert summarize(build_truth_table(both)).text() == "1 flow in 2 records (1 probed): 1 dropped; no mismatches"
    split = (flow(Verdict.DROPPED, placement="same-node", via="a -> b"),
             flow(Verdict.ALLOWED, placement="cross-node", via="a -> c"))
    assert summarize(build_truth_table(split)).text() == ("1 flow in 2 records (1 probed): 1 whose records disagree; "
                                                          "1 mismatch (0 intent vs model, 1 live)")


def test_a_reason_not_probed_is_said_once() -> None:
    from flowcheck.report.marks import observed_text

    offline = flow(None, detail="not probed: no Docker engine is running")
    assert observed_text(offline) == "not probed: no Docker engine is running"
    assert observed_text(flow(None, detail="the cluster has one node")) == "not probed (the cluster has one node)"


def test_a_live_only_path_the_model_cannot_decide_awaits_a_cluster_and_is_no_mismatch() -> None:
    from flowcheck.report.truth_table import build_truth_table, summarize

    awaiting = CheckedFlow("default/web", "10.0.0.0/8", "TCP", 443, Verdict.UNKNOWN, expected=Verdict.ALLOWED,
                           live_only=True)
    assert not awaiting.mismatch
    assert summarize(build_truth_table((awaiting,))).text() == "1 flow (none probed): 1 unknown; no mismatches"
    data = json.loads(json.dumps(awaiting.to_json()))
    assert data["live_only"] is True and CheckedFlow.from_json(data) == awaiting
    decided = CheckedFlow("default/web", "10.0.0.0/8", "TCP", 443, Verdict.DROPPED, expected=Verdict.ALLOWED,
                          live_only=True)
    assert decided.intent_mismatch  # live-only excuses an `unknown`, never a verdict against the intent
    assert "live_only" not in CheckedFlow("a/b", "c/d", "TCP", 1, Verdict.ALLOWED).to_json()


def test_a_path_whose_agent_never_ran_could_not_be_probed() -> None:
    from flowcheck.report.truth_table import build_truth_table, summarize

    ran = CheckedFlow("a/b", "c/d", "TCP", 1, Verdict.ALLOWED, observed=Verdict.ALLOWED, attempts=1)
    never = CheckedFlow("a/b", "c/e", "TCP", 1, Verdict.ALLOWED, observed=Verdict.ERROR, attempts=0,
                        observed_detail="could not run the probe agent in a/b: KeyError: 'x'")
    assert summarize(build_truth_table((ran, never))).text() == (
        "2 flows (1 probed, 1 could not be probed): 1 allowed, 1 error; 1 mismatch (0 intent vs model, 1 live)")
