"""The service map section: its markup, the data it embeds, the labels Python writes, and what it inlines.

What the page script does with this data is checked in a real browser (test_service_map_chromium).
"""

from __future__ import annotations

import json
import re

from flowcheck.report.html_page import render_html, render_plan_html
from flowcheck.report.records import CheckedFlow, MatrixReport
from flowcheck.report.service_map import (
    DiffStatus,
    EdgeCategory,
    EdgeChange,
    build_service_map,
    diff_service_maps,
)
from flowcheck.report.service_map_html import (
    change_text,
    edge_full_label,
    edge_label,
    edge_short_label,
    json_for_script,
    map_data,
    render_service_map,
)
from flowcheck.report.vendored import vendor_root, vendored_packages, vendored_scripts
from flowcheck.verdict import Verdict
from tests.report.htmltree import parse_html
from tests.report.map_samples import synthetic_diff, synthetic_plan
from tests.report.sample import sample_flows, sample_report

A, D, L7, U, R = Verdict.ALLOWED, Verdict.DROPPED, Verdict.L7_DENIED, Verdict.UNKNOWN, Verdict.REFUSED


def asset(name: str) -> str:
    return vendor_root().joinpath("..", "assets", name).read_text(encoding="utf-8")


def test_the_section_inlines_the_pinned_libraries_in_order_then_the_page_logic() -> None:
    section = render_service_map(build_service_map(sample_flows()))
    tree = parse_html(section.body)
    scripts = tree.root.iter("script")
    kinds = [s.attrs.get("data-vendor") or s.attrs.get("data-asset") or s.attrs.get("type") or "inline"
             for s in scripts]
    assert kinds == ["application/json", "inline", *(p.spec for p in vendored_packages()), "service_map.js"]
    for script, (_, text) in zip(scripts[2:6], vendored_scripts(), strict=True):
        assert script.text() == text + "\n"  # exactly the vendored file behind its licence banner
    assert scripts[-1].text() == asset("service_map.js")
    assert parse_html(section.head).root.iter("style")[0].text() == asset("service_map.css")


def test_without_javascript_the_section_says_it_needs_it_and_shows_no_empty_frame() -> None:
    tree = parse_html(render_service_map(build_service_map(sample_flows())).body)
    (noscript,) = tree.root.iter("noscript")
    assert "needs JavaScript" in noscript.text()
    assert "the truth table below shows the same verdicts" in noscript.text()
    frame = next(e for e in tree.root.iter("div") if "fm" in e.classes)
    assert "hidden" in frame.attrs  # the page script unhides it


def test_the_map_comes_before_the_truth_table_in_the_run_and_plan_pages() -> None:
    for html in (render_html(sample_report()), render_plan_html(sample_flows())):
        assert html.index('<section id="service-map"') < html.index('<h2 id="matrix">')


def embedded(html: str) -> dict[str, object]:
    data = parse_html(html).root.find_id("fm-data").text()
    decoded: dict[str, object] = json.loads(data)
    return decoded


def test_embedded_data_cannot_close_its_script_element() -> None:
    hostile = "</script><script>alert(1)</script>\u2028<!--"
    flows = [CheckedFlow("default/web", "default/my-api", "TCP", 80, A, model_reasons=(hostile,))]
    text = json_for_script(map_data(build_service_map(flows)))
    assert "<" not in text and ">" not in text and "\u2028" not in text
    assert json.loads(text)["edges"][0]["requests"][0]["reasons"] == [hostile]
    html = render_plan_html(flows)
    assert "</script><script>alert" not in html
    assert embedded(html)["edges"][0]["requests"][0]["reasons"] == [hostile]  # type: ignore[index]


def test_the_legend_lists_the_five_verdicts_and_rarer_categories_only_when_present() -> None:
    plan = map_data(build_service_map(synthetic_plan()))
    assert [(c["key"], c["count"], c["on"]) for c in plan["categories"]] == [
        ("allowed", 160, True), ("l7-filtered", 17, True), ("l7-denied", 0, True), ("dropped", 2329, False),
        ("unknown", 1, True)]
    run = map_data(build_service_map(sample_flows()))
    assert [c["key"] for c in run["categories"]] == ["allowed", "l7-filtered", "l7-denied", "dropped", "unknown",
                                                    "refused", "error"]
    assert run["changes"] == [] and plan["changes"] == []
    assert run["probed"] is True and plan["probed"] is False
    assert run["mismatchCount"] == 4


def test_groups_are_namespaces_then_outside_the_cluster_and_ports_sort_by_number() -> None:
    data = map_data(build_service_map(synthetic_plan()))
    assert [(g["label"], g["size"], g["outside"]) for g in data["groups"]] == [
        ("backend", 12, False), ("data", 8, False), ("frontend", 9, False), ("kube-system", 6, False),
        ("monitoring", 7, False), ("payments", 8, False), ("(outside the cluster)", 5, True)]
    assert data["ports"] == ["53/TCP", "53/UDP", "443/TCP", "587/TCP", "2181/TCP", "3000/TCP", "3100/TCP",
                             "4317/TCP", "5432/TCP", "6379/TCP", "6443/TCP", "8080/TCP", "9000/TCP", "9090/TCP",
                             "9092/TCP", "9200/TCP", "27017/TCP"]


def test_labels_put_mismatches_first_then_changes_then_what_passes_l7() -> None:
    run = build_service_map(sample_flows())
    by_path = {(e.source, e.target, e.transport): e for e in run.edges}
    scrape = by_path[("monitoring/prometheus", "default/my-api", "9090/TCP")]
    assert edge_label(scrape) == "MISMATCH: intent allowed, model dropped"
    dns = by_path[("tenant/client", "kube-system/coredns", "53/UDP")]
    assert edge_label(dns) == "MISMATCH: expected allowed, observed dropped"
    api = by_path[("default/web", "default/my-api", "8080/TCP")]
    assert (edge_label(api), edge_short_label(api)) == ("passes: GET /orders", "8080/TCP \u00b7 passes: GET /orders")
    assert edge_full_label(api) == "8080/TCP l7-filtered \u00b7 passes: GET /orders"
    plain = by_path[("tenant/client", "default/my-api", "8080/TCP")]
    assert (edge_label(plain), edge_short_label(plain)) == ("", "8080/TCP")
    icmp = by_path[("tenant/client", "default/my-api", "ICMP")]
    assert edge_full_label(icmp) == "ICMP dropped"


def test_a_diff_map_lists_its_changes_with_their_colours_and_labels() -> None:
    before, after = synthetic_diff()
    diff = diff_service_maps(build_service_map(before), build_service_map(after))
    data = map_data(diff)
    assert [(c["key"], c["count"]) for c in data["changes"]] == [
        ("opened", 8), ("closed", 2), ("l7-filtered", 0), ("l7-unfiltered", 6), ("changed", 0)]
    unfiltered = next(e for e in diff.changes if e.change is not None and e.change.status is DiffStatus.L7_UNFILTERED)
    assert edge_label(unfiltered).endswith(" no longer L7-filtered")
    assert change_text(unfiltered.change).startswith(  # type: ignore[arg-type]
        "no longer L7-filtered: l7-filtered (")
    closed = next(e for e in diff.changes if e.change is not None and e.change.status is DiffStatus.CLOSED)
    assert edge_label(closed) == "\u22128080/TCP closed"
    assert edge_full_label(closed) == "8080/TCP dropped \u00b7 closed: allowed \u2192 dropped"
    edge = next(e for e in data["edges"] if e["source"] == closed.source and e["target"] == closed.target)
    assert edge["change"] == {"status": "closed", "text": "closed: allowed \u2192 dropped", "before": "allowed",
                              "before_reasons": list(closed.change.before_reasons)}  # type: ignore[union-attr]
    html = render_html(MatrixReport(after), title="flowcheck diff", service_map=diff)
    tree = parse_html(html)
    assert tree.root.find_id("fm-changes").tag == "ul"
    assert "<strong>16</strong> changed by the diff" in html


def test_an_absent_side_of_a_change_reads_no_such_path() -> None:
    before = build_service_map([CheckedFlow("a/x", "b/gone", "TCP", 80, A)])
    diff = diff_service_maps(before, build_service_map([CheckedFlow("a/x", "b/y", "TCP", 80, D)]))
    (gone,) = diff.changes
    assert gone.change == EdgeChange(DiffStatus.CLOSED, EdgeCategory.ALLOWED, None)
    assert edge_full_label(gone) == "80/TCP allowed \u00b7 closed: allowed \u2192 (no such path)"


def test_the_summary_bar_counts_workloads_namespaces_outside_nodes_paths_and_mismatches() -> None:
    bar = parse_html(render_service_map(build_service_map(sample_flows())).body).root.iter("div")[1]
    assert "fm-bar" in bar.classes
    assert re.sub(r"\s+", " ", bar.text()) == (
        "5 workloads in 4 namespaces · 1 outside the cluster · 8 paths (0 drawn) · 4 mismatches · Edges show the "
        "observed outcome where probed, else the model's verdict; a workload's traffic to itself is not drawn.")


def test_a_changed_l7_filter_names_what_passes_before_and_after() -> None:
    from flowcheck.report.service_map import EdgeCategory, EdgeChange

    change = EdgeChange(DiffStatus.CHANGED, EdgeCategory.L7_FILTERED, EdgeCategory.L7_FILTERED, before_l7="GET /cart")
    assert change_text(change, "GET|POST /cart") == ("changed: l7-filtered (GET /cart) \u2192 "
                                                     "l7-filtered (GET|POST /cart)")
