"""The HTML pages in a real browser: headless Chromium (Debian's ``chromium`` package), network off.

Structural tests prove what the markup says; these prove what a browser makes of it from
``file://``, with every request failing (a proxy on a dead port) and recorded (only the page itself
may be requested):

- without JavaScript the truth table is complete and coloured, and the map says it needs scripts;
- the service map renders for this repository's plan (``flowcheck plan --format html``), a
  50-workload synthetic plan, a run with two mismatches and a diff: the number of edges it draws for
  the default filters equals the number computed from the records in Python, without the map code;
- the layout is deterministic (the same positions at another window size), namespace boxes do not
  overlap, filters narrow what is drawn, and a real mouse click on a mismatch shows its observed
  verdict and Hubble lines;
- no edge label covers a node's name or another edge label (Cilium's Star Wars demo, planned and run
  with two wrong intent entries, and every map above), and the L7 and mismatch labels are drawn at
  the default zoom, at 50 workloads too.

One Chromium serves every test (``conftest.browser``). Each screenshot is kept in the test's
temporary directory; set ``FLOWCHECK_SCREENSHOT_DIR`` to also copy them there and look at them.
Marked ``slow``; skipped, with the reason, where Chromium is not installed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from flowcheck.report.files import write_report_dir
from flowcheck.report.html_page import render_html, render_plan_html
from flowcheck.report.records import CheckedFlow, MatrixReport
from flowcheck.report.service_map import build_service_map, diff_service_maps
from flowcheck.verdict import Verdict
from tests.report.cdp import WINDOW, Browser
from tests.report.map_samples import default_view_count, synthetic_diff, synthetic_plan, synthetic_run
from tests.report.pngread import Box, read_png
from tests.report.sample import sample_report

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]
CLI_TIMEOUT_S = 120.0

# Cell backgrounds from html_page's stylesheet (Hubble UI's green / red / amber).
GREEN = (0xDA, 0xFB, 0xE1)
RED = (0xFF, 0xEB, 0xE9)
AMBER = (0xFF, 0xF1, 0xC2)
# Edge colours from service_map_html, as drawn: allowed edges at opacity 0.6 over white; changes opaque.
ALLOWED_EDGE = tuple(round(0.6 * c + 0.4 * 255) for c in (0x2F, 0x9E, 0x44))
OPENED_EDGE = (0x19, 0x71, 0xC2)
MISMATCH_HALO = tuple(round(0.9 * c + 0.1 * 255) for c in (0xFF, 0xD4, 0x3B))  # underlay-opacity 0.9


def near(colour: tuple[int, int, int], target: tuple[int, ...], tolerance: int = 3) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(colour, target, strict=True))


def pixels_near(colours: Counter[tuple[int, int, int]], target: tuple[int, ...], tolerance: int = 3) -> int:
    return sum(n for colour, n in colours.items() if near(colour, target, tolerance))


def shoot(browser: Browser, tmp_path: Path, name: str, box: Box | None = None) -> Counter[tuple[int, int, int]]:
    """Screenshot the page (kept as ``name``); returns the colours counted inside ``box`` (default: everywhere)."""
    path = browser.screenshot(tmp_path / name)
    keep = os.environ.get("FLOWCHECK_SCREENSHOT_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(keep) / name)
    width, height, colours = read_png(path, box)
    assert (width, height) == WINDOW
    assert len(colours) > 50, f"{path} is a flat fill, not a rendered page"  # text, borders, anti-aliasing
    return colours


def open_map(browser: Browser, page: Path, fragment: str = "#service-map",
             window: tuple[int, int] = WINDOW) -> dict[str, str]:
    """Load ``page`` scrolled to its map and wait until the map is drawn; returns the section's data-* values."""
    url = page.resolve().as_uri()
    browser.open(url + fragment, window=window)
    state: dict[str, str] = json.loads(browser.wait_for(
        "(() => { const s = document.getElementById('service-map');"
        " return (s.dataset.ready === '1' || s.dataset.error) && JSON.stringify(Object.assign({}, s.dataset)); })()"))
    assert "error" not in state, f"the page script failed: {state['error']}"
    assert browser.requested_urls() == [url], "the page tried to fetch something"
    return state


def graph_box(browser: Browser) -> Box:
    rect = browser.eval("(() => { const r = document.getElementById('fm-cy').getBoundingClientRect();"
                        " return [r.left, r.top, r.right, r.bottom].map(Math.round); })()")
    return (rect[0], max(0, rect[1]), rect[2], min(WINDOW[1], rect[3]))


def set_filter(browser: Browser, select_id: str, value: str) -> int:
    """Choose ``value`` in one of the map's <select> filters, as a reader does; returns the edges drawn."""
    return int(browser.eval(
        f"(() => {{ const s = document.getElementById({json.dumps(select_id)}); s.value = {json.dumps(value)};"
        " s.dispatchEvent(new Event('change'));"
        " return document.getElementById('service-map').dataset.edges; })()"))


# Every drawn label box, from cytoscape's renderedBoundingBox with only the labels counted: node names
# (namespace titles included), and the label of each drawn edge; then every pair that intersects.
LABEL_CLASHES_JS = """(() => {
    const cy = window.flowcheckServiceMap.cy;
    const only = {includeNodes: false, includeEdges: false, includeLabels: true, includeOverlays: false,
                  includeUnderlays: false};
    const drawn = x => { const b = x.renderedBoundingBox(only); return b.w > 0 && isFinite(b.x1) ? b : null; };
    const nodes = cy.nodes(':visible').not('.ns').map(n => [n.data('label'), drawn(n)]).filter(x => x[1]);
    const edges = cy.edges(':visible').map(e => [e.data('source') + ' -> ' + e.data('target') + ' "'
        + e.pstyle('label').strValue + '"', drawn(e)]).filter(x => x[1]);
    const meet = (a, b) => a.x1 < b.x2 && b.x1 < a.x2 && a.y1 < b.y2 && b.y1 < a.y2;
    const clashes = [];
    edges.forEach(([name, box], i) => {
        nodes.forEach(([node, nodeBox]) => { if (meet(box, nodeBox)) clashes.push(name + ' covers ' + node); });
        edges.slice(i + 1).forEach(([other, otherBox]) => {
            if (meet(box, otherBox)) clashes.push(name + ' covers ' + other); });
    });
    return {labels: edges.map(x => x[0]), nodes: nodes.length, clashes: clashes};
})()"""


def drawn_labels(browser: Browser) -> list[str]:
    """The edge labels the map draws now; fails on any label box that meets a node name or another label."""
    found: dict[str, Any] = browser.eval(LABEL_CLASHES_JS)
    assert found["nodes"] > 0
    assert found["clashes"] == [], found["clashes"]
    return sorted(found["labels"])


def default_zoom_l7_and_mismatch_labels(browser: Browser) -> list[str]:
    """The L7 and mismatch labels drawn at the zoom the map opens with, no smaller than 6 px on screen."""
    labels: list[str] = browser.eval("""(() => {
        const cy = window.flowcheckServiceMap.cy;
        return cy.edges(':visible').filter(e => e.hasClass('mismatch') || e.hasClass('c-l7-filtered'))
            .filter(e => e.pstyle('label').strValue && !e.hasClass('nolabel')
                         && e.pstyle('font-size').pfValue * cy.zoom() >= 6
                         && e.pstyle('font-size').pfValue * cy.zoom() >= e.pstyle('min-zoomed-font-size').pfValue)
            .map(e => e.pstyle('label').strValue);
    })()""")
    return labels


def test_without_javascript_the_truth_table_is_complete_and_the_map_says_why_it_is_absent(
        browser: Browser, tmp_path: Path) -> None:
    paths = write_report_dir(sample_report(), tmp_path / "report")
    url = paths.html.resolve().as_uri()
    browser.open(url + "#matrix", javascript=False)
    assert browser.eval("document.getElementById('service-map').dataset.ready") == "0"
    assert browser.eval("document.querySelector('#service-map .fm').hidden") is True
    assert browser.eval("getComputedStyle(document.querySelector('#service-map noscript p')).display") == "block"
    colours = shoot(browser, tmp_path, "table-without-javascript.png")
    for name, target in (("green", GREEN), ("red", RED), ("amber", AMBER)):
        assert pixels_near(colours, target) > 500, f"no {name} cell visible"
    assert browser.requested_urls() == [url]


def plan_cli(fmt: str) -> str:
    command = [str(Path(sys.executable).parent / "flowcheck"), "plan", "--topology", "fixtures/topology.yaml",
               "--policies", "manifests/network-policies", "--format", fmt]
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=CLI_TIMEOUT_S,
                            check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_this_repositorys_plan_draws_every_path_that_is_not_dropped(browser: Browser, tmp_path: Path) -> None:
    results = json.loads(plan_cli("json"))["flows"]
    expected = {(r["from"], r["to"], r["protocol"], r["port"]) for r in results
                if r["from"] != r["to"] and r["verdict"] != "dropped"}
    page = tmp_path / "plan.html"
    page.write_text(plan_cli("html"), encoding="utf-8")
    state = open_map(browser, page)
    assert int(state["edges"]) == len(expected) > 0
    assert state["nsOverlaps"] == "0"
    # few edges: each carries its port, and none hides my-api's name or another label
    assert len(drawn_labels(browser)) == len(expected)
    colours = shoot(browser, tmp_path, "map-repository-plan.png", graph_box(browser))
    assert pixels_near(colours, ALLOWED_EDGE, tolerance=12) > 300


def test_a_fifty_workload_plan_is_drawn_the_same_way_at_any_window_size(browser: Browser, tmp_path: Path) -> None:
    flows = synthetic_plan()
    page = tmp_path / "plan50.html"
    page.write_text(render_plan_html(flows), encoding="utf-8")
    state = open_map(browser, page)
    assert int(state["edges"]) == default_view_count(flows) == 178
    assert state["nsOverlaps"] == "0"
    # every path allowed through an L7 filter says what passes, at the zoom the map opens with
    l7_paths = {(f.source, f.destination, f.protocol, f.port) for f in flows
                if f.l7_passes and f.source != f.destination}
    assert len(default_zoom_l7_and_mismatch_labels(browser)) == len(l7_paths) == 17
    assert len(drawn_labels(browser)) == 17 and state["labelsOff"] == "0"
    colours = shoot(browser, tmp_path, "map-50-workloads.png", graph_box(browser))
    assert pixels_near(colours, ALLOWED_EDGE, tolerance=12) > 1000

    # "what can reach data/postgres", then every verdict: the same counts as from the records
    into_postgres = {f.source for f in flows if f.destination == "data/postgres" and f.source != f.destination
                     and f.model is not Verdict.DROPPED}
    set_filter(browser, "fm-f-focus", "data/postgres")
    assert set_filter(browser, "fm-f-dir", "to") == len(into_postgres) > 0
    browser.eval("document.querySelector('#fm-f-verdict input[type=checkbox]:not(:checked)').click()")  # dropped on
    every_path = {(f.source, f.destination, f.protocol, f.port) for f in flows if f.source != f.destination}
    assert set_filter(browser, "fm-f-focus", "") == len(every_path)

    again = open_map(browser, page, window=(1000, 700))
    assert again["layoutHash"] == state["layoutHash"]


def test_a_run_lists_its_two_mismatches_and_a_click_shows_what_the_cluster_did(
        browser: Browser, tmp_path: Path) -> None:
    flows = synthetic_run()
    paths = write_report_dir(MatrixReport(flows, {"run": "synthetic"}), tmp_path / "report")
    state = open_map(browser, paths.html)
    assert int(state["edges"]) == default_view_count(flows) == 48
    listed = browser.eval("[...document.querySelectorAll('#fm-mismatches li')].map(li => li.textContent)")
    assert len(listed) == 2 == len([f for f in flows if f.mismatch])
    labels = default_zoom_l7_and_mismatch_labels(browser)
    assert sum(label.startswith("MISMATCH: ") for label in labels) == 2
    assert len(drawn_labels(browser)) == len(labels) and state["labelsOff"] == "0"

    live = next(f for f in flows if f.observed is not None and f.observed != f.model)
    # A point on that edge where the library's own hit test finds it, for a 3x3 px square: the
    # browser rounds the mouse position, and a crossing edge 1 px away would rightly take the click.
    # (findNearestElement is internal API: fine in a test, with cytoscape pinned.)
    target: dict[str, Any] = browser.eval("""(() => {
        const cy = window.flowcheckServiceMap.cy;
        const e = cy.edges('.mismatch').filter(x => x.data('edge').requests.some(r => r.evidence.length > 1))[0];
        const a = e.sourceEndpoint(), z = e.targetEndpoint(), zoom = cy.zoom(), pan = cy.pan();
        const r = document.getElementById('fm-cy').getBoundingClientRect();
        for (const t of [0.5, 0.45, 0.55, 0.4, 0.6, 0.35, 0.65, 0.3, 0.7, 0.25, 0.75, 0.2, 0.8]) {
            const p = {x: a.x + (z.x - a.x) * t, y: a.y + (z.y - a.y) * t};
            let ok = true;
            for (let dx = -1; dx <= 1 && ok; dx++) for (let dy = -1; dy <= 1 && ok; dy++) {
                const hit = cy.renderer().findNearestElement(p.x + dx / zoom, p.y + dy / zoom, true, false);
                ok = !!hit && hit.id() === e.id();
            }
            if (ok) return {id: e.id(), x: p.x * zoom + pan.x + r.left, y: p.y * zoom + pan.y + r.top};
        }
        return {id: e.id(), x: null, y: null};
    })()""")
    assert target["x"] is not None, "no clickable point on the mismatch edge"
    browser.click(target["x"], target["y"])
    browser.wait_for("window.flowcheckServiceMap.cy.edges(':selected').length === 1")
    assert browser.eval("window.flowcheckServiceMap.cy.edges(':selected')[0].id()") == target["id"]
    details = browser.eval("document.getElementById('fm-details').innerText")
    assert f"{live.source} → {live.destination} :{live.port}/{live.protocol}" in details
    assert "observed\ndropped (3 attempts)" in details or "observed\tdropped (3 attempts)" in details
    assert live.evidence[1] in details  # the Hubble lines
    assert live.model_reasons[0] in details
    colours = shoot(browser, tmp_path, "map-run-two-mismatches.png", graph_box(browser))
    assert pixels_near(colours, MISMATCH_HALO, tolerance=6) > 200

    empty = browser.eval("""(() => {
        const cy = window.flowcheckServiceMap.cy, r = document.getElementById('fm-cy').getBoundingClientRect();
        const pan = cy.pan(), zoom = cy.zoom();
        for (let y = r.height - 10; y > 10; y -= 20) for (let x = 10; x < r.width - 10; x += 20)
            if (!cy.renderer().findNearestElement((x - pan.x) / zoom, (y - pan.y) / zoom, true, false))
                return [x + r.left, y + r.top];
        return null;
    })()""")
    browser.click(*empty)
    assert browser.wait_for("document.getElementById('fm-details').textContent") == "Click an edge to see why."


def test_a_diff_draws_opened_and_closed_paths_in_their_own_colours(browser: Browser, tmp_path: Path) -> None:
    before, after = synthetic_diff()
    diff = diff_service_maps(build_service_map(before), build_service_map(after))
    page = tmp_path / "diff.html"
    page.write_text(render_html(MatrixReport(after), title="flowcheck diff (synthetic)", service_map=diff),
                    encoding="utf-8")
    state = open_map(browser, page)
    assert int(state["edges"]) == default_view_count(after, before) == 186
    changes = browser.eval("document.querySelectorAll('#fm-changes li').length")
    assert changes == len(diff.changes) == 16
    assert sum("opened" in label for label in drawn_labels(browser)) == 8
    colours = shoot(browser, tmp_path, "map-diff.png", graph_box(browser))
    assert pixels_near(colours, OPENED_EDGE, tolerance=8) > 200


CLOSED_EDGE = (0x21, 0x25, 0x29)


def test_a_real_flowcheck_diff_page_draws_what_the_change_opened_and_closed(browser: Browser, tmp_path: Path) -> None:
    """`flowcheck diff --base HEAD --format html` in a git repository whose working tree widens the scrape rule
    and removes the GET-only rule: 2 opened edges (blue) and 4 closed ones (dark, dashed), listed beside the map."""
    from tests.cli.test_diff import git, widen_scrape_and_drop_get_only

    repo = tmp_path / "repo"
    (repo / "fixtures").mkdir(parents=True)
    shutil.copy(REPO_ROOT / "fixtures" / "topology.yaml", repo / "fixtures")
    shutil.copytree(REPO_ROOT / "manifests" / "network-policies", repo / "manifests" / "network-policies")
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "base")
    widen_scrape_and_drop_get_only(repo / "manifests" / "network-policies")
    command = [str(Path(sys.executable).parent / "flowcheck"), "diff", "--topology", "fixtures/topology.yaml",
               "--policies", "manifests/network-policies", "--base", "HEAD", "--format", "html"]
    result = subprocess.run(command, cwd=repo, capture_output=True, text=True, timeout=CLI_TIMEOUT_S, check=False)
    assert result.returncode == 0, result.stderr
    page = tmp_path / "diff.html"
    page.write_text(result.stdout, encoding="utf-8")
    state = open_map(browser, page)
    items = browser.eval("[...document.querySelectorAll('#fm-changes li')].map(li => li.textContent)")
    assert len(items) == 6
    assert sum("opened: dropped \u2192 allowed" in i for i in items) == 2
    assert sum("closed: l7-filtered (GET) \u2192 dropped" in i for i in items) == 4
    drawn = browser.eval("window.flowcheckServiceMap.cy.edges('.ch').filter(':visible').length")
    assert drawn == 6 and int(state["edges"]) >= 6
    colours = shoot(browser, tmp_path, "map-flowcheck-diff.png", graph_box(browser))
    assert pixels_near(colours, OPENED_EDGE, tolerance=8) > 100, "no opened edge drawn"
    assert pixels_near(colours, CLOSED_EDGE, tolerance=8) > 100, "no closed edge drawn"


def test_a_plan_with_one_hostile_name_still_draws(browser: Browser, tmp_path: Path) -> None:
    hostile = "evil/</script><img src=x onerror=alert(1)>"
    flows = [CheckedFlow(hostile, "default/my-api", "TCP", 80, Verdict.ALLOWED, model_reasons=("<b>x</b>",))]
    page = tmp_path / "hostile.html"
    page.write_text(render_plan_html(flows), encoding="utf-8")
    state = open_map(browser, page)
    assert state["edges"] == "1"
    assert browser.eval("document.querySelectorAll('img').length") == 0


TEAL = (0xC5, 0xF6, 0xFA)  # the L7-filtered cell
SELF_GREY = (0xF1, 0xF3, 0xF5)
HEADER_GREY = (0xF6, 0xF8, 0xFA)


def thirty_destinations() -> list[CheckedFlow]:
    """30 workloads in 3 namespaces, each serving one port: a plan with 30 destination columns, a self cell
    per row, and one path allowed only through the L7 proxy."""
    names = [f"team-{ns}/service-{i:02d}" for ns in ("alpha", "bravo", "charlie") for i in range(10)]
    flows = []
    for s, source in enumerate(names):
        for d, destination in enumerate(names):
            verdict = Verdict.ALLOWED if (s + d) % 3 == 0 or source.split("/")[0] == destination.split("/")[0] \
                else Verdict.DROPPED
            passes = "GET /api/.*" if (source, destination) == (names[27], names[24]) else None
            flows.append(CheckedFlow(source, destination, "TCP", 8080, verdict, l7_passes=passes))
    return flows


def test_a_thirty_destination_table_keeps_its_headers_in_view_and_shows_l7_and_self_cells(
        browser: Browser, tmp_path: Path) -> None:
    """At 1400 px the table is wider than the window: it scrolls inside its own box, and wherever it is
    scrolled the namespace and destination headers stay on top and the sources on the left."""
    page = tmp_path / "wide.html"
    page.write_text(render_plan_html(thirty_destinations()), encoding="utf-8")
    browser.open(page.resolve().as_uri() + "#matrix", javascript=False)  # the table needs no script
    box = "document.getElementById('matrix-scroll')"
    sizes = browser.eval(f"(() => {{ const b = {box}; return [b.scrollWidth, b.clientWidth, b.scrollHeight,"
                         " b.clientHeight]; })()")
    assert sizes[0] > sizes[1] and sizes[2] > sizes[3], f"not a table that needs scrolling: {sizes}"
    assert browser.eval("document.querySelectorAll('#matrix-scroll td.v-self').length") == 30
    assert browser.eval("[...document.querySelectorAll('#matrix-scroll th.ns')].map(t => t.textContent)") == [
        "team-alpha", "team-bravo", "team-charlie"]
    # Scroll the box so the L7 cell (row 28, column 25) is in view, as a reader would.
    browser.eval(f"(() => {{ const b = {box}; const c = b.querySelector('td.v-l7-filtered');"
                 " b.scrollLeft = c.offsetLeft - 300; b.scrollTop = c.offsetTop - 300;"
                 " b.scrollIntoView(); })()")
    geometry = browser.eval(
        f"(() => {{ const b = {box}.getBoundingClientRect();"
        " const rect = e => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };"
        " const q = s => rect(document.querySelector(s));"
        f" return {{box: [b.left, b.top, b.right, b.bottom], scrolled: [{box}.scrollLeft, {box}.scrollTop],"
        " corner: q('#matrix-scroll th.corner'), group: q('#matrix-scroll tr.groups th.ns:last-child'),"
        " column: q('#matrix-scroll tr.columns th:last-child'), source: q('#matrix-scroll tbody tr:last-child th'),"
        " firstSource: q('#matrix-scroll tbody tr:first-child th'),"
        " l7: q('#matrix-scroll td.v-l7-filtered'),"
        " l7text: document.querySelector('#matrix-scroll td.v-l7-filtered').textContent,"
        " l7colour: getComputedStyle(document.querySelector('#matrix-scroll td.v-l7-filtered')).backgroundColor};"
        " })()")
    left, top, right, bottom = geometry["box"]
    assert geometry["scrolled"][0] > 500 and geometry["scrolled"][1] > 300, geometry
    # Headers: the namespace row at the top edge of the box, the destination row right under it.
    assert abs(geometry["corner"][1] - (top + 1)) <= 1 and abs(geometry["corner"][0] - (left + 1)) <= 1, geometry
    assert abs(geometry["group"][1] - (top + 1)) <= 1, geometry
    assert geometry["group"][3] <= geometry["column"][1] + 1 < top + 120, geometry
    # Sources: the first column at the left edge though the box is scrolled far right.
    assert abs(geometry["source"][0] - (left + 1)) <= 1, geometry
    assert geometry["firstSource"][1] < top, "the first rows scrolled away under the header"
    # The L7 cell is in view, below the headers and right of the sources, and says what passes.
    l7_left, l7_top, l7_right, l7_bottom = geometry["l7"]
    assert geometry["column"][3] <= l7_top and l7_bottom <= bottom and geometry["source"][2] <= l7_left, geometry
    assert l7_right <= min(right, WINDOW[0]) and l7_bottom <= WINDOW[1], geometry
    assert geometry["l7text"] == "L7: GET /api/.*"
    assert geometry["l7colour"] == "rgb(197, 246, 250)"
    hit = browser.eval(f"document.elementFromPoint({(l7_left + l7_right) / 2}, {(l7_top + l7_bottom) / 2}).className")
    assert hit == "v v-l7-filtered", "something covers the L7 cell"
    # The namespace of the columns at the left edge is named though its group starts far out of view.
    label = browser.eval("(() => { const l = [...document.querySelectorAll('#matrix-scroll th.ns .ns-label')]"
                         ".find(s => s.textContent === 'team-bravo').getBoundingClientRect();"
                         " const e = document.elementFromPoint(l.left + 3, (l.top + l.bottom) / 2);"
                         " return [l.left, l.right, e.textContent]; })()")
    assert geometry["source"][2] <= label[0] and label[2] == "team-bravo", (label, geometry)
    # A capture right after scrolling may show the frame before the scroll was composited: let one go by.
    browser.screenshot(tmp_path / "settle.png")
    colours = shoot(browser, tmp_path, "table-30-destinations.png")
    assert pixels_near(colours, TEAL) > 300, "the L7-filtered cell is not drawn"
    assert pixels_near(colours, SELF_GREY) > 300, "no self cell in view"
    assert pixels_near(colours, HEADER_GREY) > 3000, "no header in view"


# Cilium's Star Wars demo (docs.cilium.io, "Identity-Aware and HTTP-Aware Policy Enforcement"), as the
# model tests write it (STAR_WARS, RULE1: the deathstar serves port 80, the tiefighter is of org=empire
# and the xwing of org=alliance, rule1 lets org=empire POST /v1/request-landing only). An imperial probe
# droid (org=empire) is one more client, so a small map has three edges into one node.
PROBE_DROID = """\
---
apiVersion: v1
kind: Pod
metadata: {name: probe-droid, namespace: default, labels: {org: empire, class: probe-droid}}
spec: {containers: [{name: droid, image: docker.io/cilium/json-mock}]}
"""
# Two entries are wrong: the tiefighter may not DELETE (rule1 answers 403) and the xwing is dropped.
STAR_WARS_INTENT = """\
paths:
- {from: default/tiefighter, to: default/deathstar, port: 80, http: POST /v1/request-landing, verdict: allowed}
- {from: default/tiefighter, to: default/deathstar, port: 80, http: DELETE /v1/exhaust-port, verdict: allowed}
- {from: default/probe-droid, to: default/deathstar, port: 80, http: POST /v1/request-landing, verdict: allowed}
- {from: default/xwing, to: default/deathstar, port: 80, verdict: allowed}
"""


def star_wars_repository(root: Path, *, probe_droid: bool) -> Path:
    """The demo as an application repository, its topology written by `flowcheck init`."""
    from tests.model.test_inventory import RULE1, STAR_WARS

    (root / "deploy").mkdir(parents=True)
    (root / "policies").mkdir()
    (root / "deploy" / "starwars.yaml").write_text(STAR_WARS + (PROBE_DROID if probe_droid else ""), encoding="utf-8")
    (root / "policies" / "rule1.yaml").write_text(RULE1, encoding="utf-8")
    result = subprocess.run([str(Path(sys.executable).parent / "flowcheck"), "init", "deploy", "--policies",
                             "policies", "--out", "fc"], cwd=root, capture_output=True, text=True,
                            timeout=CLI_TIMEOUT_S, check=False)
    assert result.returncode == 0, result.stderr
    return root


def test_the_star_wars_plan_labels_its_l7_edge_without_hiding_a_node(browser: Browser, tmp_path: Path) -> None:
    repo = star_wars_repository(tmp_path / "starwars", probe_droid=False)
    result = subprocess.run([str(Path(sys.executable).parent / "flowcheck"), "plan", "--topology", "fc/topology.yaml",
                             "--policies", "policies", "--format", "html"], cwd=repo, capture_output=True, text=True,
                            timeout=CLI_TIMEOUT_S, check=False)
    assert result.returncode == 0, result.stderr
    page = tmp_path / "starwars-plan.html"
    page.write_text(result.stdout, encoding="utf-8")
    state = open_map(browser, page)
    assert state["edges"] == "1"
    assert drawn_labels(browser) == ['default/tiefighter -> default/deathstar "80/TCP \u00b7 POST /v1/request-landing"']
    shoot(browser, tmp_path, "map-starwars-plan.png", graph_box(browser))


def test_a_star_wars_run_with_two_wrong_entries_labels_both_without_hiding_a_node(
        browser: Browser, tmp_path: Path) -> None:
    """`pytest sw.flowcheck.yaml --flowcheck-cluster=none --flowcheck-report rep` on the demo: three edges into
    the deathstar, two of them mismatches with long labels, on a map of four workloads."""
    repo = star_wars_repository(tmp_path / "starwars", probe_droid=True)
    (repo / "fc" / "intent.flowcheck.yaml").unlink()
    (repo / "fc" / "sw.flowcheck.yaml").write_text(STAR_WARS_INTENT, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    result = subprocess.run([sys.executable, "-m", "pytest", "fc/sw.flowcheck.yaml", "--flowcheck-cluster=none",
                             "--flowcheck-report", "rep", "--flowcheck-policies", "policies", "--flowcheck-topology",
                             "fc/topology.yaml", "-p", "no:cacheprovider", "-q"], cwd=repo, env=env,
                            capture_output=True, text=True, timeout=CLI_TIMEOUT_S, check=False)
    assert "2 failed" in result.stdout, result.stdout + result.stderr
    state = open_map(browser, repo / "rep" / "report.html")
    assert state["edges"] == "3"
    labels = drawn_labels(browser)
    assert [label.split('"')[1] for label in labels] == [
        "80/TCP \u00b7 POST /v1/request-landing", "MISMATCH: intent allowed, model l7-denied",
        "MISMATCH: intent allowed, model dropped"], labels
    assert len(default_zoom_l7_and_mismatch_labels(browser)) == 3
    shoot(browser, tmp_path, "map-starwars-run-two-mismatches.png", graph_box(browser))
