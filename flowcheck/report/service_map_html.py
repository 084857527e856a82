"""The service map as an HTML section: embedded data, the filters, and the inlined drawing library.

``render_service_map`` returns what a page needs to show a ``ServiceMap``: a ``<style>`` for the
page's head and a ``<section id="service-map">`` for its body. The page stays one file that works
offline: the graph data is JSON in a ``<script type="application/json">``; Cytoscape.js and the
fcose layout are inlined from ``vendor/`` (``vendored``) with their licences; the page logic and its
styles are the package files ``assets/service_map.js`` and ``assets/service_map.css``. The page
that embeds the section should carry ``CONTENT_SECURITY_POLICY``: it forbids every request, so
nothing is fetched at view time even by accident.

Python decides everything that can be tested without a browser -- the nodes, the edges, their
category, colours and labels, the mismatch and change texts, the counts -- and the script only
draws, filters and shows details. Without JavaScript the section says, in a ``<noscript>``, that
the map needs it; the truth table next to it needs none.

Colours follow the truth table's (Hubble UI's green for allowed, red for dropped), and every line
style differs too, so the legend does not rely on colour alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from html import escape
from importlib import resources
from typing import Any

from flowcheck.report.endpoints import EndpointKind
from flowcheck.report.marks import cell_basis
from flowcheck.report.service_map import (
    OUTSIDE_GROUP,
    DiffStatus,
    EdgeCategory,
    EdgeChange,
    EdgeRequest,
    MapEdge,
    ServiceMap,
)
from flowcheck.report.vendored import inline_script_text, vendored_scripts

CONTENT_SECURITY_POLICY = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:"
"""No request of any kind (scripts and styles are inline): a report opened from an artifact stays offline."""

LAYOUT_SEED = 16  # any fixed value: the picture depends on it, so changing it changes every map


@dataclass(frozen=True, slots=True)
class Look:
    label: str
    color: str
    style: str  # "" | "dashed" | "dotted": the line, so categories differ by more than colour
    on: bool = True


CATEGORY_LOOKS: dict[EdgeCategory, Look] = {
    EdgeCategory.ALLOWED: Look("allowed", "#2f9e44", ""),
    EdgeCategory.L7_FILTERED: Look("L7-filtered (label: what passes)", "#f08c00", ""),
    EdgeCategory.L7_DENIED: Look("l7-denied (HTTP 403 / DNS REFUSED)", "#c2255c", "dashed"),
    EdgeCategory.DROPPED: Look("dropped (L3/L4)", "#e03131", "dotted", on=False),
    EdgeCategory.UNKNOWN: Look("unknown (the model cannot decide)", "#868e96", "dashed"),
    EdgeCategory.MIXED: Look("mixed (allowed and dropped: by request or where probed)", "#9c36b5", ""),
    EdgeCategory.REFUSED: Look("refused (nothing listens)", "#a05a00", "dashed"),
    EdgeCategory.ERROR: Look("error (the probe failed)", "#495057", "dashed"),
}
ALWAYS_LISTED = (EdgeCategory.ALLOWED, EdgeCategory.L7_FILTERED, EdgeCategory.L7_DENIED, EdgeCategory.DROPPED,
                 EdgeCategory.UNKNOWN)
"""Categories the legend lists even when no edge has them; the rarer ones are listed only when present."""

CHANGE_LOOKS: dict[DiffStatus, Look] = {
    DiffStatus.OPENED: Look("opened by the change", "#1971c2", ""),
    DiffStatus.CLOSED: Look("closed by the change", "#212529", "dashed"),
    DiffStatus.L7_FILTERED: Look("now L7-filtered (only what the label names passes)", "#d9480f", ""),
    DiffStatus.L7_UNFILTERED: Look("no longer L7-filtered (every request passes)", "#5c940d", "dotted"),
    DiffStatus.CHANGED: Look("changed (other verdict or L7 rule)", "#0c8599", ""),
}

_GROUP_PALETTE = (("#e7f5ff", "#74c0fc"), ("#ebfbee", "#8ce99a"), ("#fff9db", "#ffe066"), ("#f3f0ff", "#b197fc"),
                  ("#fff0f6", "#faa2c1"), ("#e6fcf5", "#63e6be"), ("#fff4e6", "#ffc078"), ("#f8f9fa", "#adb5bd"))
_OUTSIDE_COLOURS = ("#f1f3f5", "#868e96")

# fcose settings, tuned on 50-workload maps (0 overlapping namespace boxes on 10 inputs). The
# intra*/inter* pairs become per-edge functions in the page: edges between namespaces are long and
# slack, so namespace boxes stay apart. numIter bounds the run; nothing depends on the clock.
FCOSE_OPTIONS: dict[str, Any] = {
    "name": "fcose", "quality": "proof", "randomize": True, "nodeDimensionsIncludeLabels": False,
    "uniformNodeDimensions": False, "packComponents": True, "nodeRepulsion": 4500,
    "intraIdealEdgeLength": 50, "interIdealEdgeLength": 120, "intraEdgeElasticity": 0.45,
    "interEdgeElasticity": 0.05, "nestingFactor": 0.1, "gravity": 0.3, "gravityCompound": 1.5,
    "gravityRangeCompound": 1.2, "numIter": 2500, "tile": True, "tilingPaddingVertical": 12,
    "tilingPaddingHorizontal": 12, "nodeSeparation": 60,
}

_ERROR_HOOK = ("window.addEventListener(\"error\", function (e) { var s = document.getElementById(\"service-map\"); "
               "if (s) s.setAttribute(\"data-error\", String(e.message)); });")


@dataclass(frozen=True, slots=True)
class HtmlSection:
    """A piece of a page: ``head`` goes into ``<head>`` (styles), ``body`` where the section is shown."""

    head: str
    body: str


def _asset(name: str) -> str:
    return resources.files("flowcheck.report").joinpath("assets", name).read_text(encoding="utf-8")


def json_for_script(value: object) -> str:
    """JSON that is safe inside ``<script>``: no ``<`` can start a closing tag, no line separator breaks it."""
    return (json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
            .replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def short_mismatch(request: EdgeRequest) -> str:
    """The edge label of a mismatch: ``intent dropped, model allowed`` / ``expected allowed, observed dropped``."""
    if request.expected is not None and request.expected != request.model:
        return f"intent {request.expected.value}, model {request.model.value}"
    reference = request.expected if request.expected is not None else request.model
    observed = request.observed.value if request.observed is not None else "?"
    return f"expected {reference.value}, observed {observed}"


CHANGE_WORDS: dict[DiffStatus, str] = {
    DiffStatus.OPENED: "opened", DiffStatus.CLOSED: "closed", DiffStatus.L7_FILTERED: "now L7-filtered",
    DiffStatus.L7_UNFILTERED: "no longer L7-filtered", DiffStatus.CHANGED: "changed",
}


def change_text(change: EdgeChange, after_l7: str = "") -> str:
    """``opened: dropped → allowed``; a side the path is absent from reads ``(no such path)``; what an L7
    filter passes is named on each side that has one: ``changed: l7-filtered (GET) → l7-filtered (GET|POST)``
    (``after_l7``: the edge's own label, as the diff now has it)."""
    before = change.before.value if change.before is not None else "(no such path)"
    after = change.after.value if change.after is not None else "(no such path)"
    if change.before_l7 and change.before is EdgeCategory.L7_FILTERED:
        before += f" ({change.before_l7})"
    if after_l7 and change.after is EdgeCategory.L7_FILTERED:
        after += f" ({after_l7})"
    return f"{CHANGE_WORDS[change.status]}: {before} \u2192 {after}"


def edge_label(edge: MapEdge) -> str:
    """The label drawn on the overview: mismatches and changes first, else what an L7 filter lets pass."""
    first = next((r for r in edge.requests if r.mismatches), None)
    if first is not None:
        return f"MISMATCH: {short_mismatch(first)}"
    if edge.change is not None:
        sign = {DiffStatus.OPENED: "+", DiffStatus.CLOSED: "\u2212", DiffStatus.L7_FILTERED: "~",
                DiffStatus.L7_UNFILTERED: "~", DiffStatus.CHANGED: "~"}[edge.change.status]
        return f"{sign}{edge.transport} {CHANGE_WORDS[edge.change.status]}"
    return edge.l7 if edge.category is EdgeCategory.L7_FILTERED else ""


def edge_short_label(edge: MapEdge) -> str:
    """The label of every edge when few are drawn: a mismatch or change label, else ``8080/TCP`` (+ what passes)."""
    if edge.mismatch or edge.change is not None:
        return edge_label(edge)
    return f"{edge.transport} \u00b7 {edge.l7}" if edge.l7 else edge.transport


def edge_full_label(edge: MapEdge) -> str:
    """Everything in one line, for a selected edge or a short list: ``8080/TCP l7-filtered · GET only · ...``."""
    parts = [f"{edge.transport} {edge.category.value}"]
    if edge.l7:
        parts.append(edge.l7)
    parts.extend(f"MISMATCH: {short_mismatch(r)}" for r in edge.requests if r.mismatches)
    if edge.change is not None:
        parts.append(change_text(edge.change, edge.l7))
    return " \u00b7 ".join(parts)


def _without_empty(fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` minus the empty ones: a plan has thousands of edges, and the page script fills in defaults."""
    return {key: value for key, value in fields.items() if value not in (None, "", [])}


def _request_json(request: EdgeRequest) -> dict[str, Any]:
    return _without_empty({
        "request": request.request, "outcome": request.outcome.value, "model": request.model.value,
        "expected": None if request.expected is None else request.expected.value,
        "observed": None if request.observed is None else request.observed.value,
        "observed_text": request.observed_text, "reasons": list(request.reasons), "evidence": list(request.evidence),
        "mismatches": list(request.mismatches), "l7_passes": request.l7_passes, "test": request.test,
    })


def _edge_json(edge: MapEdge) -> dict[str, Any]:
    out = _without_empty({
        "source": edge.source, "target": edge.target, "pp": edge.transport, "category": edge.category.value,
        "label": edge_label(edge), "short": edge_short_label(edge), "full": edge_full_label(edge), "l7": edge.l7,
        "mismatch": list(edge.mismatch_texts), "requests": [_request_json(r) for r in edge.requests],
    })
    if edge.change is not None:
        out["change"] = _without_empty({
            "status": edge.change.status.value, "text": change_text(edge.change, edge.l7),
            "before": None if edge.change.before is None else edge.change.before.value,
            "before_reasons": list(edge.change.before_reasons)})
    return out


def group_id(group: str) -> str:
    return f"ns:{group}"


def _ports(edges: tuple[MapEdge, ...]) -> list[str]:
    by_transport = {e.transport: (e.port if e.port is not None else -1, e.protocol) for e in edges}
    return sorted(by_transport, key=lambda t: by_transport[t])


def map_data(service_map: ServiceMap) -> dict[str, Any]:
    """What the page script reads: every node, edge, colour and count (the JSON embedded in the section)."""
    groups = []
    namespaces = 0
    for group in service_map.groups:
        outside = group == OUTSIDE_GROUP
        fill, stroke = _OUTSIDE_COLOURS if outside else _GROUP_PALETTE[namespaces % len(_GROUP_PALETTE)]
        namespaces += 0 if outside else 1
        size = sum(1 for n in service_map.nodes if n.group == group)
        groups.append({"id": group_id(group), "label": group, "fill": fill, "stroke": stroke, "size": size,
                       "outside": outside})
    counts = {c: sum(1 for e in service_map.edges if e.category is c) for c in EdgeCategory}
    categories = [{"key": c.value, "label": look.label, "color": look.color, "style": look.style, "on": look.on,
                   "passes": c.passes, "count": counts[c]}
                  for c, look in CATEGORY_LOOKS.items() if c in ALWAYS_LISTED or counts[c]]
    change_counts = {s: sum(1 for e in service_map.changes if e.change is not None and e.change.status is s)
                     for s in DiffStatus}
    changes = ([{"key": s.value, "label": look.label, "color": look.color, "style": look.style,
                 "count": change_counts[s]} for s, look in CHANGE_LOOKS.items()]
               if service_map.changes else [])
    return {
        "seed": LAYOUT_SEED,
        "layout": FCOSE_OPTIONS,
        "probed": service_map.probed,
        "categories": categories,
        "changes": changes,
        "mismatchCount": len(service_map.mismatches),
        "groups": groups,
        "nodes": [{"id": n.id, "label": n.label, "kind": n.kind.value, "group": group_id(n.group)}
                  for n in service_map.nodes],
        "edges": [_edge_json(e) for e in service_map.edges],
        "ports": _ports(service_map.edges),
    }


def _summary(service_map: ServiceMap) -> str:
    workloads = sum(1 for n in service_map.nodes if n.kind is EndpointKind.WORKLOAD)
    outside = len(service_map.nodes) - workloads
    namespaces = len([g for g in service_map.groups if g != OUTSIDE_GROUP])
    parts = [f"<strong>{workloads}</strong> workloads in <strong>{namespaces}</strong> namespaces",
             f"<strong>{outside}</strong> outside the cluster",
             f'<strong>{len(service_map.edges)}</strong> paths (<strong id="fm-shown">0</strong> drawn)',
             f"<strong>{len(service_map.mismatches)}</strong> mismatches"]
    if service_map.changes:
        parts.append(f"<strong>{len(service_map.changes)}</strong> changed by the diff")
    basis = f"Edges show {cell_basis(service_map.probed)}; a workload's traffic to itself is not drawn."
    return " \u00b7 ".join(parts) + f' \u00b7 <span>{escape(basis)}</span>'


_NODE_KEY = (
    '<div class="key-row"><span class="nodekey" style="background:#fff"></span>workload</div>'
    '<div class="key-row"><span class="nodekey" style="background:#d0ebff;border-color:#1c7ed6;border-radius:6px">'
    "</span>entity (world, host, ...)</div>"
    '<div class="key-row"><span class="nodekey" style="background:#f3f0ff;border-color:#7048e8"></span>FQDN</div>'
    '<div class="key-row"><span class="nodekey" style="background:#fff4e6;border-color:#e8590c"></span>'
    "address or CIDR</div>"
)


def render_service_map(service_map: ServiceMap) -> HtmlSection:
    """The map as a page section; see the module docstring for what it needs from the page."""
    libraries = "\n".join(f'<script data-vendor="{escape(package.spec)}">{text}\n</script>'
                          for package, text in vendored_scripts())
    page_logic = inline_script_text("service_map.js", _asset("service_map.js"))
    changes = ('<h3>Changes (<span>' + str(len(service_map.changes)) + '</span>)</h3><ul class="fm-list" '
               'id="fm-changes"></ul>') if service_map.changes else ""
    body = "\n".join(part for part in [
        '<section id="service-map" data-ready="0">',
        '<h2>Service map</h2>',
        '<noscript><p class="muted">The service map needs JavaScript, which this browser does not run here; '
        'the truth table below shows the same verdicts without it.</p></noscript>',
        '<div class="fm" hidden>',
        f'<div class="fm-bar">{_summary(service_map)}</div>',
        '<aside class="fm-left">',
        '<h3>Verdict</h3><div id="fm-f-verdict"></div>',
        '<h3>Highlight</h3><div id="fm-f-highlight"></div>',
        '<h3>Workload</h3><select id="fm-f-focus" aria-label="workload"><option value="">(any)</option></select>',
        '<select id="fm-f-dir" aria-label="direction"><option value="both">edges in and out</option>'
        '<option value="to">what can reach it</option><option value="from">what it can reach</option></select>',
        '<h3>Port</h3><select id="fm-f-port" aria-label="port"><option value="">(any)</option></select>',
        '<h3>Namespace <button type="button" id="fm-ns-all">all</button> '
        '<button type="button" id="fm-ns-none">none</button></h3><div id="fm-f-ns"></div>',
        f"<h3>Nodes</h3>{_NODE_KEY}",
        '<p><button type="button" id="fm-reset">reset filters</button></p>',
        "</aside>",
        '<div class="fm-cy" id="fm-cy"><div class="fm-empty">No edge matches the filters.</div></div>',
        '<aside class="fm-right">',
        f'<h3>Mismatches ({len(service_map.mismatches)})</h3><ul class="fm-list" id="fm-mismatches"></ul>',
        changes,
        '<h3>Details</h3><div class="fm-details" id="fm-details"></div>',
        "</aside>",
        "</div>",
        f'<script type="application/json" id="fm-data">{json_for_script(map_data(service_map))}</script>',
        f"<script>{_ERROR_HOOK}</script>",
        libraries,
        f'<script data-asset="service_map.js">{page_logic}</script>',
        "</section>",
    ] if part)
    head = f'<style data-asset="service_map.css">{_asset("service_map.css")}</style>'
    return HtmlSection(head=head, body=body)
