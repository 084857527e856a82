"""Markdown for GitHub step summaries: golden output, a real GFM parse, escaping, the summary file."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pytest

from flowcheck.report.markdown import append_step_summary, md_code, md_escape, render_markdown, render_plan_markdown
from flowcheck.report.records import CheckedFlow, MatrixReport
from flowcheck.verdict import Verdict
from tests.report.golden import assert_matches_golden
from tests.report.sample import sample_flows, sample_report

markdown_it = pytest.importorskip("markdown_it", reason="markdown-it-py (installed with the dev extras via "
                                  "import-linter/rich) renders CommonMark + GFM tables for these checks")


def to_html(markdown: str) -> str:
    return str(markdown_it.MarkdownIt("commonmark").enable("table").render(markdown))


class TableCells(HTMLParser):
    """Collects the text of every <th>/<td>, row by row, and every tag seen."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.tags: list[str] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def parse(markdown: str) -> TableCells:
    parser = TableCells()
    parser.feed(to_html(markdown))
    return parser


def test_sample_run_matches_golden() -> None:
    assert_matches_golden("sample.md", render_markdown(sample_report()))


def test_plan_matches_golden() -> None:
    plan = [CheckedFlow(f.source, f.destination, f.protocol, f.port, f.model, request=f.request,
                        model_reasons=f.model_reasons) for f in sample_flows()]
    assert_matches_golden("plan.md", render_plan_markdown(plan, metadata={"policies": "manifests/network-policies"}))


def test_table_renders_as_a_gfm_table_with_marks_and_mismatch_refs() -> None:
    rows = parse(render_markdown(sample_report())).rows
    header, *body = rows[:4]
    assert header[0] == "source \\ destination"
    assert header[1:] == ["default/my-api/ICMP echo-request", "default/my-api:8080/TCP",
                          "default/my-api:8080/TCP GET /orders", "default/my-api:8080/TCP POST /orders",
                          "default/my-api:9090/TCP", "kube-system/coredns:53/UDP",
                          "kube-system/coredns:53/UDP DNS A my-api.default.svc.cluster.local",
                          "world:443/TCP fqdn api.example.com"]
    by_source = {row[0]: row[1:] for row in body}
    assert by_source["default/web"] == ["-", "-", "🟢 allowed", "🟠 l7-denied", "-", "🟡 error !1", "-",
                                        "🟡 ~unknown"]
    assert by_source["monitoring/prometheus"][4:6] == ["🔴 dropped !2", "🟡 refused !3"]
    assert by_source["tenant/client"][:2] == ["🔴 dropped", "🔴 dropped"]


def test_mismatch_list_has_reasons_and_hubble_lines_in_code_blocks() -> None:
    html = to_html(render_markdown(sample_report()))
    assert "<h3>Mismatches (4)</h3>" in html
    assert "namespaceSelector team=observability does not match namespace monitoring" in html
    assert ("<pre><code class=\"language-text\">Jun 16 16:52:15.100: tenant/client:38111 (ID:5120) -&gt; "
            "kube-system/coredns:53 (ID:102) policy-verdict:none EGRESS DENIED (UDP)\n") in html


def test_hostile_names_neither_inject_html_nor_break_the_table() -> None:
    flows = (CheckedFlow("evil/<script>alert(1)</script>", "default/a|b", "TCP", 80, Verdict.DROPPED,
                         expected=Verdict.ALLOWED, model_reasons=("rule `x` | *y* <b>z</b>",),
                         observed=Verdict.DROPPED, evidence=("```\n<img src=x>",), test="t"),)
    markdown = render_markdown(MatrixReport(flows, {"note": "<iframe>"}))
    parsed = parse(markdown)
    assert "script" not in parsed.tags
    assert "img" not in parsed.tags
    assert "iframe" not in parsed.tags
    assert "b" not in parsed.tags
    assert parsed.rows[0] == ["source \\ destination", "default/a|b:80/TCP"]
    assert parsed.rows[1] == ["evil/<script>alert(1)</script>", "🔴 dropped !1"]
    html = to_html(markdown)
    assert "rule `x` | *y* &lt;b&gt;z&lt;/b&gt;" in html
    # The evidence line (with a newline and a fence of its own) stays inside one longer fence, flattened.
    assert "<pre><code class=\"language-text\">``` &lt;img src=x&gt;\n</code></pre>" in html


def test_md_escape_and_md_code() -> None:
    assert md_escape("a|b") == "a\\|b"
    assert md_escape("x\ny") == "x y"
    assert md_code("a`b") == "``a`b``"
    assert md_code("`x") == "`` `x ``"


def test_step_summary_is_not_written_when_the_variable_is_unset(tmp_path: Path) -> None:
    assert append_step_summary("# hi\n", environ={}) is None
    assert list(tmp_path.iterdir()) == []


def test_step_summary_appends_to_the_named_file(tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    assert append_step_summary("## table", environ={"GITHUB_STEP_SUMMARY": str(summary)}) == summary
    assert append_step_summary("## again\n", environ={"GITHUB_STEP_SUMMARY": str(summary)}) == summary
    assert summary.read_text() == "earlier step\n## table\n## again\n"


def test_step_summary_reads_the_real_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    append_step_summary(render_markdown(sample_report()))
    assert summary.read_text().startswith("## flowcheck truth table\n")


def test_oversize_summary_is_cut_at_a_line_with_a_note_and_closed_fences(tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    markdown = "## t\n\n```text\n" + "".join(f"hubble line {i}\n" for i in range(200)) + "```\n"
    append_step_summary(markdown, environ={"GITHUB_STEP_SUMMARY": str(summary)}, max_bytes=600)
    written = summary.read_text()
    assert len(written.encode()) <= 600
    assert "**Summary truncated**" in written
    assert "hubble line 0\n" in written
    assert "hubble line 199" not in written
    fences = [line for line in written.splitlines() if line.startswith("```")]
    assert len(fences) == 2  # the open code block was closed before the note
    assert "Summary truncated" in to_html(written).split("</pre>")[-1]


def test_the_per_flow_plan_listing_escapes_every_cell() -> None:
    """`flowcheck plan --format markdown`: hostile header names and glob-like paths stay literal."""
    from flowcheck.report.flow_list import render_flow_markdown

    flow = CheckedFlow("a/<b>x", "b/y", "TCP", 80, Verdict.DROPPED,
                       model_reasons=("rule 0: header X-<b>: 1 on /a/*/b/* | not matched",))
    [_header, _rule, row] = render_flow_markdown([flow]).splitlines()
    assert "<b>" not in row
    assert "/a/*/b/*" not in row
    assert "**dropped**" in row


def test_the_per_flow_plan_listing_shows_what_the_l7_proxy_passes_and_self_flows() -> None:
    """`flowcheck plan --format table|markdown` say what the truth tables say: an L7-filtered port is not a plain
    `allowed`, and a workload's traffic to its own IP is marked as such."""
    from flowcheck.report.flow_list import render_flow_markdown, render_flow_table

    filtered = CheckedFlow("tenant/client", "default/my-api", "TCP", 8080, Verdict.ALLOWED, l7_passes="GET")
    own = CheckedFlow("default/my-api", "default/my-api", "TCP", 8080, Verdict.ALLOWED)
    plain = CheckedFlow("monitoring/prometheus", "default/my-api", "TCP", 9090, Verdict.ALLOWED)
    table = render_flow_table([filtered, own, plain]).splitlines()
    assert "allowed (L7: GET)" in table[1] and "allowed (self)" in table[2]
    assert "allowed (" not in table[3]
    assert "| allowed (L7: GET) |" in render_flow_markdown([filtered])
