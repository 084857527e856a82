"""The HTML report: golden output, and its structure checked by parsing it (cells, colours, links, escaping)."""

from __future__ import annotations

import re

from flowcheck.report.html_page import render_html, render_plan_html
from flowcheck.report.records import CheckedFlow, MatrixReport
from flowcheck.verdict import Verdict
from tests.report.golden import assert_matches_golden, without_inlined_assets
from tests.report.htmltree import Element, TreeBuilder, parse_html
from tests.report.sample import sample_flows, sample_report


def page() -> TreeBuilder:
    return parse_html(render_html(sample_report()))


def matrix_rows(tree: TreeBuilder) -> dict[str, list[Element]]:
    matrix = next(t for t in tree.root.iter("table") if "matrix" in t.classes)
    body = matrix.iter("tbody")[0]
    return {row.iter("th")[0].text(): row.iter("td") for row in body.iter("tr")}


def test_sample_run_matches_golden() -> None:
    assert_matches_golden("sample.html", without_inlined_assets(render_html(sample_report())))


def test_plan_matches_golden() -> None:
    plan = [CheckedFlow(f.source, f.destination, f.protocol, f.port, f.model, request=f.request,
                        model_reasons=f.model_reasons) for f in sample_flows()]
    assert_matches_golden("plan.html", without_inlined_assets(render_plan_html(plan)))


def test_document_is_well_formed() -> None:
    tree = page()
    assert tree.doctype == "DOCTYPE html"
    assert tree.unclosed_mismatches == []
    assert tree.current is tree.root  # every element closed
    assert [e.tag for e in tree.root.children if isinstance(e, Element)] == ["html"]
    meta = tree.root.iter("meta")[0]
    assert meta.attrs == {"charset": "utf-8"}


def test_header_rows_group_the_columns_by_namespace_and_list_every_column() -> None:
    matrix = next(t for t in page().root.iter("table") if "matrix" in t.classes)
    groups, columns = matrix.iter("thead")[0].iter("tr")
    assert [(th.text(), th.attrs.get("colspan")) for th in groups.iter("th")] == [
        ("source \\ destination", None), ("default", "5"), ("kube-system", "2"), ("(outside the cluster)", "1")]
    assert [th.text() for th in columns.iter("th")] == [
        "my-api/ICMP echo-request", "my-api:8080/TCP", "my-api:8080/TCP GET /orders", "my-api:8080/TCP POST /orders",
        "my-api:9090/TCP", "coredns:53/UDP", "coredns:53/UDP DNS A my-api.default.svc.cluster.local",
        "world:443/TCP fqdn api.example.com"]
    assert [th.attrs["title"] for th in columns.iter("th")][:2] == ["default/my-api/ICMP echo-request",
                                                                    "default/my-api:8080/TCP"]


def test_cells_carry_verdict_classes_and_mismatch_markers() -> None:
    rows = matrix_rows(page())
    assert list(rows) == ["default/web", "monitoring/prometheus", "tenant/client"]
    web = rows["default/web"]
    assert [c.text() for c in web] == ["-", "-", "allowed", "l7-denied", "-", "error !1", "-", "~unknown"]
    assert web[0].classes == {"v", "empty"}
    assert web[2].classes == {"v", "v-allowed"}
    assert web[3].classes == {"v", "v-l7-denied"}
    assert web[5].classes == {"v", "v-error", "mismatch"}
    assert web[7].classes == {"v", "v-unknown", "predicted"}
    prometheus = rows["monitoring/prometheus"]
    assert prometheus[4].classes == {"v", "v-dropped", "mismatch"}
    assert prometheus[5].classes == {"v", "v-refused", "mismatch"}
    client = rows["tenant/client"]
    assert [(c.text(), c.classes) for c in client[:2]] == [("dropped", {"v", "v-dropped"}),
                                                           ("dropped", {"v", "v-dropped"})]
    assert [a.attrs["href"] for a in prometheus[4].iter("a")] == ["#mismatch-2"]


def test_cell_hover_text_has_the_three_views_and_reasons() -> None:
    cell = matrix_rows(page())["monitoring/prometheus"][4]
    assert cell.attrs["title"].splitlines() == [
        "expected: allowed; model: dropped; observed: dropped (3 attempts)",
        "  NetworkPolicy default/allow-prometheus ingress rule 0: namespaceSelector team=observability does not "
        "match namespace monitoring (labels: none)",
    ]


def css_rules(html: str) -> dict[str, str]:
    """Selector -> declarations of the inline stylesheet (selectors of a group split)."""
    style = re.search(r"<style>(.*?)</style>", html, re.S)
    assert style is not None
    rules: dict[str, str] = {}
    for selectors, body in re.findall(r"([^{}]+)\{([^{}]*)\}", style.group(1)):
        for selector in selectors.split(","):
            rules[selector.strip()] = rules.get(selector.strip(), "") + body
    return rules


def test_colours_follow_hubble_ui_green_red_amber() -> None:
    rules = css_rules(render_html(sample_report()))
    assert "background: #dafbe1" in rules[".v-allowed"]      # green
    assert "background: #ffebe9" in rules[".v-dropped"]      # red
    assert "background: #fff1c2" in rules[".v-l7-denied"]    # amber
    for striped in (".v-unknown", ".v-refused", ".v-error"):  # amber, striped: never a pass
        assert "repeating-linear-gradient(135deg, #fff1c2" in rules[striped]
    assert "outline: 3px solid" in rules["td.mismatch"]


def test_mismatch_list_has_paths_views_reasons_and_hubble_lines() -> None:
    tree = page()
    section = tree.root.find_id("mismatches")
    assert section.text() == "Mismatches (4)"
    items = next(o for o in tree.root.iter("ol") if "mismatches" in o.classes).iter("li")
    entries = [li for li in items if li.attrs.get("id", "").startswith("mismatch-")]
    assert [li.attrs["id"] for li in entries] == ["mismatch-1", "mismatch-2", "mismatch-3", "mismatch-4"]
    fourth = tree.root.find_id("mismatch-4")
    assert fourth.iter("p")[0].text() == ("!4 tenant/client → kube-system/coredns:53/UDP DNS A "
                                          "my-api.default.svc.cluster.local")
    views = fourth.iter("dl")[0]
    assert [d.text() for d in views.iter("dd")] == ["allowed", "allowed", "dropped (3 attempts)"]
    assert views.iter("dd")[2].iter("span")[0].classes == {"v-dropped"}
    evidence = fourth.iter("pre")[0]
    assert evidence.classes == {"evidence"}
    assert evidence.text().splitlines() == [
        "Jun 16 16:52:15.100: tenant/client:38111 (ID:5120) -> kube-system/coredns:53 (ID:102) "
        "policy-verdict:none EGRESS DENIED (UDP)",
        "Jun 16 16:52:15.100: tenant/client:38111 (ID:5120) -> kube-system/coredns:53 (ID:102) "
        "Policy denied DROPPED (UDP)",
    ]
    reasons = next(ul.text() for ul in fourth.iter("ul") if "reasons" in ul.classes)
    assert "tenant/allow-dns egress rule 0" in reasons
    second_kinds = [li.text() for li in tree.root.find_id("mismatch-2").iter("ul")[0].iter("li")]
    assert second_kinds == ["intent vs model: expected allowed, the model predicts dropped",
                            "live vs expected: expected allowed, observed dropped"]


def test_metadata_is_shown() -> None:
    meta = page().root.find_id("metadata")
    rows = {tr.iter("th")[0].text(): tr.iter("td")[0].text() for tr in meta.iter("tr")}
    assert rows == {"cilium_version": "1.16.5", "kind_node_image": "kindest/node:v1.31.0", "run": "nightly #42"}


def without_scripts(html: str) -> str:
    """The page without the bodies of its inline scripts (the vendored libraries carry URLs in comments)."""
    return re.sub(r"(<script[^>]*>).*?(</script>)", r"\1\2", html, flags=re.S)


def test_page_is_self_contained() -> None:
    html = render_html(sample_report())
    tree = parse_html(html)
    elements = tree.root.iter()
    assert not [e for e in elements if e.tag in ("link", "img", "iframe", "object", "embed")]
    assert not [e for e in elements if "src" in e.attrs]  # every script is inline
    hrefs = [e.attrs["href"] for e in elements if "href" in e.attrs]
    assert hrefs and all(h.startswith("#") for h in hrefs)
    ids = {e.attrs["id"] for e in elements if "id" in e.attrs}
    assert all(h[1:] in ids for h in hrefs)  # every in-page link has its target
    csp = next(e for e in tree.root.iter("meta") if e.attrs.get("http-equiv") == "Content-Security-Policy")
    assert csp.attrs["content"].startswith("default-src 'none';")  # the browser refuses any request
    markup = without_scripts(html)
    assert "@import" not in markup
    assert "url(" not in markup
    assert not re.search(r"https?://", markup)


def test_hostile_names_are_escaped() -> None:
    flows = (
        CheckedFlow("evil/<script>alert(1)</script>", 'default/"><img src=x onerror=alert(2)>', "TCP", 80,
                    Verdict.DROPPED, expected=Verdict.ALLOWED, observed=Verdict.DROPPED,
                    model_reasons=("<b>bold</b> & more",), evidence=("</pre><script>alert(3)</script>",),
                    test="<i>t</i>"),
    )
    html = render_html(MatrixReport(flows, {"<k>": "<v>"}))
    tree = parse_html(html)
    tags = {e.tag for e in tree.root.iter()}
    assert not tags & {"img", "b", "i"}
    scripts = tree.root.iter("script")
    assert all(e.parent is not None and e.parent.attrs.get("id") == "service-map" for e in scripts)
    assert "<script>alert" not in html
    assert "alert(1)" in tree.root.find_id("fm-data").text()  # in the map's data, as JSON text
    rows = matrix_rows(tree)
    assert list(rows) == ["evil/<script>alert(1)</script>"]  # shown as text
    headers = [th.text() for th in tree.root.iter("thead")[0].iter("th")]
    assert headers[1:] == ["(outside the cluster)", 'default/"><img src=x onerror=alert(2)>:80/TCP']
    assert tree.root.find_id("mismatch-1").iter("pre")[0].text() == "</pre><script>alert(3)</script>"
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; more" in html
    assert tree.root.iter("title")[0].text() == "flowcheck truth table"


def test_plan_page_has_model_verdicts_and_no_mismatch_section() -> None:
    plan = [CheckedFlow("default/web", "default/my-api", "TCP", 8080, Verdict.ALLOWED,
                        model_reasons=("rule 0 matched",)),
            CheckedFlow("tenant/client", "default/my-api", "TCP", 8080, Verdict.DROPPED)]
    tree = parse_html(render_plan_html(plan))
    assert tree.root.iter("h1")[0].text() == "flowcheck plan (model verdicts)"
    assert not [e for e in tree.root.iter() if e.attrs.get("id") == "mismatches"]
    assert not [e for e in tree.root.iter() if "mismatch" in e.classes or "mismatch-badge" in e.classes]
    rows = matrix_rows(tree)
    assert [(c.text(), c.classes) for c in rows["default/web"]] == [("allowed", {"v", "v-allowed"})]
    assert [(c.text(), c.classes) for c in rows["tenant/client"]] == [("dropped", {"v", "v-dropped"})]
    assert rows["default/web"][0].attrs["title"] == ("expected: (none stated); model: allowed; observed: not probed\n"
                                                    "  rule 0 matched")


def test_empty_report_renders_a_page_without_a_table_or_a_map() -> None:
    tree = parse_html(render_html(MatrixReport(())))
    assert tree.root.iter("p")[0].text() == "no flows checked"
    assert not tree.root.iter("table")
    assert not tree.root.iter("section")
    assert not tree.root.iter("script")
