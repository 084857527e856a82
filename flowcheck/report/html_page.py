"""The run (or plan) as one self-contained HTML page, opened from a CI artifact.

One file, no external assets: CSS is inline in ``<style>``, links are in-page anchors only (a
cell's ``!N`` jumps to mismatch N), every piece of text is escaped with ``html.escape`` --
workload names, paths and Hubble lines come from users and clusters -- and a Content-Security-Policy
meta tag forbids every request, so nothing is fetched when the page is viewed.

The page has two views of the same flows. The **service map** (``service_map_html``) comes first:
a graph of who reaches whom, drawn by inlined JavaScript (Cytoscape.js); it needs JavaScript and
says so in a ``<noscript>`` where scripts are blocked. The **truth table**, its legend, the
mismatch list and the list of all flows need no JavaScript: they work from ``file://`` in a browser
that blocks scripts, and stay readable when printed.

Cell colours follow Hubble UI (``marks``): green ``allowed`` (Hubble's FORWARDED), red
``dropped`` (DROPPED), solid amber ``l7-denied``, amber with diagonal stripes for ``unknown``,
``refused`` and ``error`` (not policy verdicts, never a pass). A mismatched cell also gets a thick
dark-red outline and bold ``!N``, so it is found without relying on colour; a cell that was only
predicted (not probed, in a run that probed others) is italic with a ``~`` prefix. Each cell's
``title`` (hover text) carries the three views and the model's reasons.

The standard library builds the page: the markup is small and fixed, so a template engine would
add a dependency without removing code.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from html import escape

from flowcheck.report.endpoints import EndpointKind, parse_endpoint
from flowcheck.report.marks import EMPTY_CELL, MISMATCH_MARK, cell_basis, expected_text, mismatch_kinds, observed_text
from flowcheck.report.notices import run_notices
from flowcheck.report.records import CheckedFlow, MatrixReport
from flowcheck.report.service_map import OUTSIDE_GROUP, ServiceMap, build_service_map
from flowcheck.report.service_map_html import CONTENT_SECURITY_POLICY, render_service_map
from flowcheck.report.textutil import display_width
from flowcheck.report.truth_table import (
    Cell,
    ColumnParts,
    LegendEntry,
    LegendKind,
    Mismatch,
    TruthTable,
    build_truth_table,
    legend_entries,
    summarize,
)
from flowcheck.verdict import Verdict

_CSS = """
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       margin: 1.5rem; color: #1f2328; background: #ffffff; line-height: 1.4; }
h1 { font-size: 1.5rem; margin: 0 0 .3rem; }
h2 { font-size: 1.15rem; margin: 1.6rem 0 .5rem; }
h3 { font-size: .95rem; margin: .6rem 0 .2rem; }
code, pre, td.v { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace; }
p.summary { margin: 0 0 1rem; font-size: 1rem; }
.scroll { overflow-x: auto; max-width: 100%; }
.matrix-scroll { overflow: auto; width: fit-content; max-width: 100%; max-height: 85vh; border: 1px solid #d0d7de; }
table { border-collapse: separate; border-spacing: 0; }
table.matrix { font-size: .85rem; }
table.matrix th, table.matrix td { border: 1px solid #d0d7de; padding: .35rem .55rem; }
table.matrix thead th { background: #f6f8fa; vertical-align: bottom; text-align: center; max-width: 12rem;
                        overflow-wrap: break-word; font-weight: 600; position: sticky; top: 0; z-index: 2; }
table.matrix thead tr.groups th { height: 1.9rem; box-sizing: border-box; padding: .2rem .55rem; line-height: 1.2;
                                  white-space: nowrap; background: #eaeef2; text-align: left; }
table.matrix th.corner, table.matrix tbody th, table.matrix th.ns .ns-label {
  font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace; }
table.matrix th.corner, table.matrix tbody th { min-width: var(--source-width); }
table.matrix th.ns .ns-label { position: sticky; left: calc(var(--source-width) + 1.65rem + 2px); }
table.matrix thead tr.columns th { top: 1.9rem; }
table.matrix thead th .dst, table.matrix thead th .port { display: block; white-space: nowrap; }
table.matrix thead th .req { display: block; font-weight: 400; }
table.matrix thead th.corner { text-align: left; left: 0; z-index: 4; }
table.matrix tbody th { background: #f6f8fa; text-align: left; white-space: nowrap; position: sticky; left: 0;
                        z-index: 1; }
td.v { text-align: center; white-space: nowrap; }
td.v a { color: inherit; }
td.empty { color: #8c959f; background: #ffffff; }
.v-allowed { background: #dafbe1; color: #116329; }
.v-dropped { background: #ffebe9; color: #a40e26; }
.v-l7-denied { background: #fff1c2; color: #7a4d00; }
.v-l7-filtered { background: #c5f6fa; color: #0b5563; }
td.v-l7-filtered { white-space: normal; max-width: 12rem; }
.v-self { background: #f1f3f5; color: #6e7781; }
.v-unknown, .v-refused, .v-error {
  color: #7a4d00;
  background: repeating-linear-gradient(135deg, #fff1c2 0, #fff1c2 6px, #ffe08a 6px, #ffe08a 8px); }
td.mismatch { outline: 3px solid #82071e; outline-offset: -3px; font-weight: 700; }
td.predicted { font-style: italic; }
.mismatch-badge { outline: 3px solid #82071e; outline-offset: -3px; font-weight: 700; }
.badge { display: inline-block; padding: .05rem .45rem; border-radius: .3rem; border: 1px solid #d0d7de;
         font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .85rem; }
ul.legend { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: .4rem 1.2rem; font-size: .85rem; }
ol.mismatches { list-style: none; padding-left: 0; }
ol.mismatches > li { margin: 0 0 1.1rem; padding: .6rem .8rem; border-left: 4px solid #82071e;
                     background: #f6f8fa; }
ol.mismatches p.path { margin: 0 0 .3rem; font-weight: 600; }
ol.mismatches ul.kinds { margin: .2rem 0; color: #82071e; }
dl.views { display: grid; grid-template-columns: max-content auto; gap: .15rem .8rem; margin: .4rem 0; }
dl.views dt { font-weight: 600; }
dl.views dd { margin: 0; }
pre.evidence { background: #ffffff; border: 1px solid #d0d7de; padding: .5rem; overflow-x: auto;
               font-size: .8rem; margin: .2rem 0; white-space: pre; }
table.meta td, table.meta th, table.flows td, table.flows th { border: 1px solid #d0d7de; padding: .25rem .5rem;
                                                              text-align: left; vertical-align: top; }
table.flows { font-size: .8rem; }
table.flows td.reasons { max-width: 40rem; }
.muted { color: #57606a; }
caption { text-align: left; padding: 0 0 .2rem; }
ul.changes { list-style: none; padding-left: 0; }
ul.changes > li { margin: 0 0 .8rem; padding: .5rem .8rem; border-left: 4px solid #0c8599; background: #f6f8fa; }
ul.changes > li.change-opened { border-left-color: #1971c2; }
ul.changes > li.change-closed { border-left-color: #212529; }
ul.changes p.path { margin: 0 0 .3rem; font-weight: 600; }
@media print { thead th, tbody th { position: static; } .matrix-scroll { max-height: none; overflow: visible; } }
"""


def render_html(report: MatrixReport, *, title: str = "flowcheck truth table",
                service_map: ServiceMap | None = None, sections: Sequence[str] = ()) -> str:
    """The run as one self-contained HTML document (map, table, legend, mismatches, all flows, metadata).

    The map is built from ``report.flows`` unless ``service_map`` is given (a diff report passes the
    map of ``diff_service_maps`` to draw opened and closed paths); ``sections`` are HTML fragments,
    already escaped, shown before the map (a diff's list of changes).
    """
    table = build_truth_table(report.flows)
    summary = summarize(table)
    if service_map is None:
        service_map = build_service_map(report.flows)
    section = render_service_map(service_map) if service_map.nodes else None
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{escape(CONTENT_SECURITY_POLICY)}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title>",
        f"<style>{_CSS}</style>",
        *([section.head] if section else []),
        "</head>",
        "<body>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="summary">{escape(summary.text())}</p>',
        *(f'<p class="notice"><strong>Note:</strong> {escape(notice)}</p>' for notice in run_notices(report)),
    ]
    if report.metadata:
        parts.append(_metadata(report.metadata))
    parts.extend(sections)
    if section:
        parts.append(section.body)
    if table.flows:
        parts.append('<h2 id="matrix">Truth table</h2>')
        parts.append(_matrix(table))
        parts.append(_legend(table))
        if table.mismatches:
            parts.append(_mismatches(table.mismatches))
        parts.append(_all_flows(table))
    parts.extend(["</body>", "</html>", ""])
    return "\n".join(parts)


def render_plan_html(flows: Iterable[CheckedFlow], *, metadata: Mapping[str, str] | None = None) -> str:
    """The model's plan (flows with model verdicts only) as a self-contained HTML page."""
    report = MatrixReport(tuple(flows), dict(metadata or {}))
    return render_html(report, title="flowcheck plan (model verdicts)")


def verdict_class(verdict: Verdict) -> str:
    """The CSS class of a verdict: ``v-allowed``, ``v-dropped``, ``v-l7-denied``, ..."""
    return f"v-{verdict.value}"


def _metadata(metadata: Mapping[str, str]) -> str:
    rows = "".join(f"<tr><th scope=\"row\">{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in metadata.items())
    return f'<table class="meta" id="metadata"><caption class="muted">Run</caption>{rows}</table>'


def _cell_title(cell: Cell) -> str:
    lines = []
    for flow in cell.flows:
        lines.append(f"expected: {expected_text(flow)}; model: {flow.model.value}; observed: {observed_text(flow)}")
        if flow.l7_passes:
            lines.append(f"  the L7 proxy passes only: {flow.l7_passes}")
        lines.extend(f"  {reason}" for reason in flow.model_reasons)
    return "\n".join(lines)


def _cell(cell: Cell | None) -> str:
    if cell is None:
        return f'<td class="v empty">{EMPTY_CELL}</td>'
    classes = ["v", f"v-{cell.tone.value}"]
    if cell.mismatch:
        classes.append("mismatch")
    if cell.predicted:
        classes.append("predicted")
    text = escape(cell.label)
    refs = " ".join(f'<a href="#mismatch-{m.number}">{MISMATCH_MARK}{m.number}</a>' for m in cell.mismatches)
    body = f"{text} {refs}" if refs else text
    return f'<td class="{" ".join(classes)}" title="{escape(_cell_title(cell))}">{body}</td>'


def _column_header(parts: ColumnParts, name: str) -> str:
    """The destination's ``name`` (its namespace heads the group above), ``:port/protocol`` and request on
    their own lines, so a narrow header wraps between them."""
    header = f'<span class="dst">{escape(name)}</span><span class="port">{escape(parts.where)}</span>'
    if not parts.request:
        return header
    # <wbr> after dots and slashes: a long DNS name or URL path wraps at a label, not mid-word.
    request = re.sub(r"([./])", r"\1<wbr>", escape(parts.request))
    return f'{header} <span class="req">{request}</span>'


def _column_groups(table: TruthTable) -> list[tuple[str, list[str]]]:
    """The columns in runs of one destination namespace (columns are sorted by destination, so each
    namespace is one run); destinations outside the cluster form a group of their own."""
    groups: list[tuple[str, list[str]]] = []
    for column in table.columns:
        endpoint = parse_endpoint(table.column_parts[column].destination)
        group = endpoint.namespace if endpoint.kind is EndpointKind.WORKLOAD and endpoint.namespace else OUTSIDE_GROUP
        if not groups or groups[-1][0] != group:
            groups.append((group, []))
        groups[-1][1].append(column)
    return groups


def _matrix(table: TruthTable) -> str:
    """The grid in a box that scrolls both ways, its headers sticky: the destinations' namespaces, then the
    destinations, stay on top and the sources on the left, so a wide table is read at any scroll position."""
    groups = _column_groups(table)
    # The namespace label sticks beside the source column while its group is in view: the source column is
    # as wide as its longest name in a monospace font (``ch``), so the label knows where that column ends.
    group_row = "".join(f'<th class="ns" colspan="{len(columns)}" scope="colgroup">'
                        f'<span class="ns-label">{escape(group)}</span></th>' for group, columns in groups)
    source_width = max(display_width(text) for text in (*table.sources, _CORNER))
    heads = []
    for _group, columns in groups:
        for column in columns:
            parts = table.column_parts[column]
            endpoint = parse_endpoint(parts.destination)
            name = endpoint.name if endpoint.kind is EndpointKind.WORKLOAD else parts.destination
            heads.append(f'<th scope="col" title="{escape(column)}">{_column_header(parts, name)}</th>')
    rows = []
    for source in table.sources:
        cells = "".join(_cell(table.cell(source, c)) for c in table.columns)
        rows.append(f'<tr><th scope="row">{escape(source)}</th>{cells}</tr>')
    return (
        f'<div class="matrix-scroll" id="matrix-scroll"><table class="matrix" style="--source-width: {source_width}ch">'
        f'<thead><tr class="groups"><th class="corner" rowspan="2" scope="col">{escape(_CORNER)}</th>'
        f'{group_row}</tr><tr class="columns">{"".join(heads)}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


_CORNER = "source \\ destination"


def _legend(table: TruthTable) -> str:
    items = [_legend_item(entry) for entry in legend_entries(table)]
    return (f'<p class="muted">Cells show {escape(cell_basis(table.probed))}. Hover a cell for its expected, model '
            f'and observed verdicts and the model\'s reasons.</p><ul class="legend" id="legend">{"".join(items)}</ul>')


def _legend_item(entry: LegendEntry) -> str:
    """A badge drawn like the cells it explains (a mismatched cell is outlined, a predicted one italic)."""
    classes = ["badge"]
    mark = escape(entry.mark)
    meaning = escape(entry.meaning)
    if entry.shown is not None:
        classes.append(f"v-{entry.shown.value}")
    elif entry.kind is LegendKind.MISMATCH:
        classes.append("mismatch-badge")
        meaning += " (cell outlined)"
    elif entry.kind is LegendKind.PREDICTED:
        mark = f"<i>{mark}</i>"
    return f'<li><span class="{" ".join(classes)}">{mark}</span> {meaning}</li>'


def _views(flow: CheckedFlow) -> str:
    expected = expected_text(flow)
    expected_class = "" if flow.expected is None else f' class="{verdict_class(flow.expected)}"'
    observed_class = "" if flow.observed is None else f' class="{verdict_class(flow.observed)}"'
    return (
        '<dl class="views">'
        f"<dt>expected</dt><dd><span{expected_class}>{escape(expected)}</span></dd>"
        f'<dt>model</dt><dd><span class="{verdict_class(flow.model)}">{escape(flow.model.value)}</span></dd>'
        f"<dt>observed</dt><dd><span{observed_class}>{escape(observed_text(flow))}</span></dd>"
        "</dl>"
    )


def _mismatches(mismatches: Iterable[Mismatch]) -> str:
    items = []
    for item in mismatches:
        flow = item.flow
        kinds = "".join(f"<li>{escape(k)}</li>" for k in mismatch_kinds(flow))
        reasons = ("<ul class=\"reasons\">" + "".join(f"<li>{escape(r)}</li>" for r in flow.model_reasons) + "</ul>"
                   if flow.model_reasons else '<p class="muted">(none given)</p>')
        block = [
            f'<li id="mismatch-{item.number}">',
            f'<p class="path">{MISMATCH_MARK}{item.number} <code>{escape(flow.source)}</code> → '
            f"<code>{escape(flow.column)}</code></p>",
            f'<ul class="kinds">{kinds}</ul>',
            _views(flow),
            f"<h3>Model reasons</h3>{reasons}",
        ]
        if flow.observed is not None:
            evidence = (f'<pre class="evidence">{escape(chr(10).join(flow.evidence))}</pre>' if flow.evidence
                        else '<p class="muted">(none captured)</p>')
            block.append(f"<h3>Hubble flows</h3>{evidence}")
        if flow.test:
            block.append(f'<p class="muted">test: <code>{escape(flow.test)}</code></p>')
        block.append("</li>")
        items.append("".join(block))
    return (f'<h2 id="mismatches">Mismatches ({len(items)})</h2>'
            f'<ol class="mismatches">{"".join(items)}</ol>')


def _all_flows(table: TruthTable) -> str:
    rows = []
    for flow in table.flows:
        expected = "" if flow.expected is None else flow.expected.value
        observed = "" if flow.observed is None else observed_text(flow)
        observed_class = "" if flow.observed is None else f' class="{verdict_class(flow.observed)}"'
        reasons = "<br>".join(escape(r) for r in flow.model_reasons)
        rows.append(
            "<tr>"
            f"<td><code>{escape(flow.source)}</code></td><td><code>{escape(flow.column)}</code></td>"
            f"<td>{escape(expected)}</td><td class=\"{verdict_class(flow.model)}\">{escape(flow.model.value)}</td>"
            f"<td{observed_class}>{escape(observed)}</td>"
            f'<td class="reasons">{reasons}</td><td><code>{escape(flow.test)}</code></td>'
            "</tr>"
        )
    return (
        f'<details id="flows"><summary>All flows ({len(rows)})</summary><div class="scroll"><table class="flows">'
        "<thead><tr><th>source</th><th>destination</th><th>expected</th><th>model</th><th>observed</th>"
        f"<th>model reasons</th><th>test</th></tr></thead><tbody>{''.join(rows)}</tbody></table></div></details>"
    )
