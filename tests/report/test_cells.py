"""Truth-table cells that hide nothing: an L7-filtered path names what passes, a self-flow shows as self and is
not counted, legends say what a table of predictions means, and the counts add up -- in every format."""

from __future__ import annotations

import re

from flowcheck.report.html_page import render_plan_html
from flowcheck.report.markdown import render_plan_markdown
from flowcheck.report.marks import Shown, shown
from flowcheck.report.records import CheckedFlow, MatrixReport
from flowcheck.report.terminal import render_plan_table, render_table
from flowcheck.report.truth_table import build_truth_table, summarize
from flowcheck.verdict import Verdict
from tests.report.htmltree import parse_html

A, D = Verdict.ALLOWED, Verdict.DROPPED


def plan() -> list[CheckedFlow]:
    return [
        CheckedFlow("default/web", "default/web", "TCP", 8080, A, model_reasons=("default/web reaches its own IP",)),
        CheckedFlow("tenant/client", "default/my-api", "TCP", 8080, A, l7_passes="GET"),
        CheckedFlow("tenant/client", "default/web", "TCP", 8080, D),
        CheckedFlow("tenant/client", "kube-system/coredns", "UDP", 53, A, l7_passes="dns *"),
        CheckedFlow("tenant/client", "tenant/client", "TCP", 8080, A),
        CheckedFlow("default/web", "kube-system/coredns", "UDP", 53, A),
    ]


def test_what_a_cell_shows_for_a_flow() -> None:
    assert shown(CheckedFlow("a/x", "a/x", "TCP", 80, A)) is Shown.SELF
    assert shown(CheckedFlow("a/x", "b/y", "TCP", 80, A, l7_passes="GET")) is Shown.L7_FILTERED
    # A request the proxy judged is allowed or denied by that judgement, not "filtered".
    assert shown(CheckedFlow("a/x", "b/y", "TCP", 80, A, request="GET /", l7_passes="GET")) is Shown.ALLOWED
    assert shown(CheckedFlow("a/x", "b/y", "TCP", 80, D, l7_passes="GET")) is Shown.DROPPED
    # A self-flow that disagrees with its intent shows what it did, so the mismatch is seen.
    assert shown(CheckedFlow("a/x", "a/x", "TCP", 80, A, expected=D)) is Shown.ALLOWED
    # Two entities of the same name are not a workload reaching itself.
    assert shown(CheckedFlow("world", "world", "TCP", 80, A)) is Shown.ALLOWED


def test_counts_add_up_and_leave_self_flows_out() -> None:
    summary = summarize(build_truth_table(plan()))
    assert sum(summary.by_shown.values()) == summary.flows == 6
    assert summary.text() == ("6 flows (none probed): 1 allowed, 2 allowed through the L7 proxy, 1 dropped; "
                              "2 self-flows (a workload to its own IP) not counted")
    assert summary.by_outcome[A] == 3  # the L7-filtered paths are allowed too; the self-flows are not counted


def test_terminal_cells_name_what_the_l7_proxy_passes_and_show_self() -> None:
    text = render_plan_table(plan(), max_width=200)
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
            for line in text.splitlines() if line.startswith("| ") and "source" not in line}
    columns = ["default/my-api:8080/TCP", "default/web:8080/TCP", "kube-system/coredns:53/UDP",
               "tenant/client:8080/TCP"]
    assert text.splitlines()[3].split("|")[2:-1] == [f" {c} " for c in columns]
    assert rows == {"default/web": ["-", "self", "allowed", "-"],
                    "tenant/client": ["L7: GET", "dropped", "L7: dns *", "self"]}
    legend = text.split("legend", 1)[1]
    assert "reached the server" not in legend  # nothing was probed
    assert "  L7: …      allowed into Cilium's L7 proxy, which passes only the requests named" in legend
    assert "  self       a workload to its own IP: no policy applies; not counted" in legend


def test_a_probed_run_says_what_was_observed() -> None:
    run = [CheckedFlow("tenant/client", "default/my-api", "TCP", 8080, A, expected=A, observed=A, l7_passes="GET")]
    text = render_table(MatrixReport(tuple(run)))
    assert "| L7: GET " in text
    assert "L7: …      reached the server through Cilium's L7 proxy" in text
    assert "  self" not in text  # no self-flow in the table: no legend entry for it


def test_markdown_cells_and_legend() -> None:
    markdown = render_plan_markdown(plan())
    assert "| tenant/client | 🔵 L7: GET | 🔴 dropped | 🔵 L7: dns \\* | ⚪ self |" in markdown
    assert "🔵 L7: …: allowed into Cilium's L7 proxy" in markdown
    assert "⚪ self: a workload to its own IP: no policy applies; not counted" in markdown
    assert "2 allowed through the L7 proxy" in markdown


def test_html_cells_have_their_own_classes_and_say_what_passes() -> None:
    tree = parse_html(render_plan_html(plan()))
    matrix = next(t for t in tree.root.iter("table") if "matrix" in t.classes)
    rows = {row.iter("th")[0].text(): row.iter("td") for row in matrix.iter("tbody")[0].iter("tr")}
    client = rows["tenant/client"]
    assert [(c.text(), c.classes) for c in client] == [
        ("L7: GET", {"v", "v-l7-filtered"}), ("dropped", {"v", "v-dropped"}),
        ("L7: dns *", {"v", "v-l7-filtered"}), ("self", {"v", "v-self"})]
    assert "the L7 proxy passes only: GET" in client[0].attrs["title"]
    legend = tree.root.find_id("legend")
    badges = {li.iter("span")[0].text(): li.iter("span")[0].classes for li in legend.iter("li")}
    assert badges["L7: …"] == {"badge", "v-l7-filtered"}
    assert badges["self"] == {"badge", "v-self"}
    assert re.search(r"\.v-l7-filtered \{ background: #c5f6fa", render_plan_html(plan()))
