/* flowcheck service map: draws the embedded graph (#fm-data) with Cytoscape.js + fcose, and wires the filters.
 *
 * The data, the labels and every text come from Python (flowcheck/report/service_map_html.py); this file
 * only draws, filters and shows details. User-derived text is set with textContent, never innerHTML.
 *
 * Deterministic picture: Python sorts nodes and edges; the layout runs with Math.random swapped for a
 * seeded PRNG (fcose's only randomness; it is bounded by an iteration count, not a clock); node sizes
 * come from label lengths, not fonts; dropped edges are taken out of the graph during the layout, so
 * filters and drops never move a node. For tests the section carries data-ready, data-edges (edges
 * drawn now), data-ns-overlaps, data-layout-hash and, on a script error, data-error.
 */
(function () {
  "use strict";
  var section = document.getElementById("service-map");
  var DATA = JSON.parse(document.getElementById("fm-data").textContent);
  var root = section.querySelector(".fm");
  root.hidden = false;   // the container needs its size before Cytoscape measures it
  function $(id) { return document.getElementById(id); }

  DATA.edges.forEach(function (e) {   // Python leaves empty fields out
    e.label = e.label || ""; e.l7 = e.l7 || ""; e.mismatch = e.mismatch || [];
    if (e.change) e.change.before_reasons = e.change.before_reasons || [];
    e.requests.forEach(function (r) {
      r.reasons = r.reasons || []; r.evidence = r.evidence || []; r.mismatches = r.mismatches || [];
    });
  });
  var CATEGORY = {};
  DATA.categories.forEach(function (c) { CATEGORY[c.key] = c; });
  var CHANGE = {};
  DATA.changes.forEach(function (c) { CHANGE[c.key] = c; });

  function mulberry32(seed) {
    var a = seed >>> 0;
    return function () {
      a = (a + 0x6D2B79F5) >>> 0;
      var t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }
  function seeded(seed, fn) {
    var original = Math.random;
    Math.random = mulberry32(seed);
    // layout-base keeps a module-level counter (RandomSeed.seed++) that survives between runs
    if (window.layoutBase && window.layoutBase.RandomSeed) {
      window.layoutBase.RandomSeed.seed = 1; window.layoutBase.RandomSeed.x = 0;
    }
    try { return fn(); } finally { Math.random = original; }
  }

  function nodeWidth(label) { return Math.max(44, Math.min(200, Math.floor(6.6 * label.length) + 14)); }

  var elements = [];
  DATA.groups.forEach(function (g) {
    elements.push({ group: "nodes", classes: g.outside ? "ns outside" : "ns",
                    data: { id: g.id, label: g.label, fill: g.fill, stroke: g.stroke } });
  });
  DATA.nodes.forEach(function (n) {
    elements.push({ group: "nodes", classes: n.kind === "workload" ? "wl" : "ext " + n.kind,
                    data: { id: n.id, label: n.label, kind: n.kind, parent: n.group, w: nodeWidth(n.label) } });
  });
  var groupOf = {};
  DATA.nodes.forEach(function (n) { groupOf[n.id] = n.group; });
  // A plan is mostly dropped paths (a default-deny repository: thousands), hidden until the reader turns
  // "dropped" on and never part of the layout: they join the graph only then, so the page opens fast.
  var deferred = [];
  DATA.edges.forEach(function (e, i) {
    var classes = ["c-" + e.category];
    if (e.mismatch.length) classes.push("mismatch");
    if (e.change) classes.push("ch", "ch-" + e.change.status);
    var color = e.change ? CHANGE[e.change.status].color : CATEGORY[e.category].color;
    var element = { group: "edges", classes: classes.join(" "), data: {
      id: "e" + i, n: i, source: e.source, target: e.target, label: e.label, short: e.short, full: e.full,
      color: color, sns: groupOf[e.source], tns: groupOf[e.target], edge: e, mx: 0, my: 0 } };
    if (e.category === "dropped" && !e.mismatch.length && !e.change) deferred.push(element);
    else elements.push(element);
  });
  function addDeferred() {
    if (deferred === null || !state.category.dropped) return;
    cy.add(deferred);
    deferred = null;
  }

  var style = [
    { selector: "node", style: {
        "label": "data(label)", "font-size": 11, "text-valign": "center", "text-halign": "center",
        "width": "data(w)", "height": 22, "shape": "round-rectangle", "background-color": "#fff",
        "border-width": 1, "border-color": "#868e96", "color": "#212529",
        "text-max-width": "data(w)", "text-wrap": "ellipsis" } },
    { selector: "node.ns", style: {
        "label": "", "background-color": "data(fill)", "background-opacity": 0.55, "border-color": "data(stroke)",
        "border-width": 1.5, "shape": "round-rectangle", "padding": 10, "text-wrap": "none",
        "min-width": 60, "min-height": 30 } },
    { selector: "node.ns.outside", style: { "border-style": "dashed" } },
    // namespace titles: separate nodes placed after the layout, drawn above the edges so none hides them
    { selector: "node.nstitle", style: {
        "label": "data(label)", "width": 1, "height": 1, "background-opacity": 0, "border-width": 0,
        "text-valign": "top", "text-halign": "right", "font-size": 12, "font-weight": "bold",
        "color": "#343a40", "text-background-color": "data(fill)", "text-background-opacity": 1,
        "text-background-padding": 2, "text-background-shape": "round-rectangle",
        "text-border-color": "data(stroke)", "text-border-width": 1, "text-border-opacity": 1,
        "z-compound-depth": "top", "z-index": 50, "events": "no", "text-margin-y": 7, "text-margin-x": 4 } },
    { selector: "node.ext", style: { "background-color": "#e7f5ff", "border-color": "#1c7ed6" } },
    { selector: "node.ext.entity", style: { "shape": "barrel", "background-color": "#d0ebff" } },
    { selector: "node.ext.fqdn", style: { "shape": "tag", "background-color": "#f3f0ff", "border-color": "#7048e8" } },
    { selector: "node.ext.cidr", style: { "shape": "cut-rectangle", "background-color": "#fff4e6", "border-color": "#e8590c" } },
    { selector: "node.focus", style: { "border-width": 3, "border-color": "#1971c2", "background-color": "#e7f5ff",
                                       "font-weight": "bold" } },
    { selector: "node.faded", style: { "opacity": 0.25 } },
    { selector: "node.ns.faded", style: { "opacity": 0.5 } },
    // Edge labels are level (a box the placement below can test), sized in graph units, and moved off
    // every node and every other label by placeLabels (text-margin-x/y): none hides a node's name.
    { selector: "edge", style: {
        "width": 1.4, "line-color": "data(color)", "target-arrow-color": "data(color)",
        "target-arrow-shape": "triangle", "arrow-scale": 0.7, "curve-style": "bezier",
        "control-point-step-size": 10, "opacity": 0.6, "label": "data(label)", "font-size": 9,
        "text-background-color": "#fff", "text-background-opacity": 0.9, "text-background-padding": 1,
        "text-rotation": "none", "color": "#212529", "min-zoomed-font-size": 5,
        "text-margin-x": "data(mx)", "text-margin-y": "data(my)" } },
    { selector: "edge.c-l7-denied", style: { "line-style": "dashed" } },
    { selector: "edge.c-unknown, edge.c-refused, edge.c-error", style: { "line-style": "dashed", "line-dash-pattern": [2, 3] } },
    { selector: "edge.c-dropped", style: { "line-style": "dotted", "target-arrow-shape": "tee" } },
    // what an L7 filter lets pass is named at the default zoom, at any size of map
    { selector: "edge.c-l7-filtered", style: { "width": 2, "opacity": 0.9, "font-size": 10, "color": "#7a4100",
        "text-border-color": "#f08c00", "text-border-width": 0.6, "text-border-opacity": 1,
        "text-background-padding": 1.5, "min-zoomed-font-size": 0 } },
    // few edges: each gets its label, and parallel edges fan out wide enough to keep them apart
    { selector: "edge.few", style: { "label": "data(short)", "min-zoomed-font-size": 0, "opacity": 0.9,
                                     "control-point-step-size": 24 } },
    { selector: "edge.ch", style: {
        "width": 3.5, "opacity": 1, "z-index": 8, "font-size": 11, "font-weight": "bold", "min-zoomed-font-size": 0,
        "text-background-opacity": 1 } },
    { selector: "edge.ch-closed", style: { "line-style": "dashed" } },
    { selector: "edge.ch-l7-unfiltered", style: { "line-style": "dotted" } },
    // mismatches: thick, haloed, labelled at any zoom, and drawn above the nodes
    { selector: "edge.mismatch", style: {
        "width": 4, "opacity": 1, "z-index": 10, "z-compound-depth": "top", "underlay-color": "#ffd43b",
        "underlay-opacity": 0.9, "underlay-padding": 5, "font-weight": "bold", "font-size": 12,
        "text-background-color": "#fff3bf", "text-background-opacity": 1, "min-zoomed-font-size": 0,
        "text-border-color": "#f59f00", "text-border-width": 1, "text-border-opacity": 1,
        "text-background-padding": 2, "text-wrap": "wrap", "text-max-width": 150 } },
    // a label that fits nowhere free is left off the overview (hover, a click and the lists show it)
    { selector: "edge.nolabel", style: { "label": "" } },
    { selector: "edge.hidden, node.hidden", style: { "display": "none" } },
    { selector: "edge:selected", style: { "width": 5, "opacity": 1, "label": "data(full)", "z-index": 20,
        "z-compound-depth": "top", "text-background-opacity": 1,
        "overlay-color": "#1971c2", "overlay-opacity": 0.15, "overlay-padding": 4, "min-zoomed-font-size": 0 } },
    { selector: "edge.hover", style: { "label": "data(full)", "opacity": 1, "width": 3, "z-index": 15,
                                       "min-zoomed-font-size": 0 } }
  ];

  var cy = cytoscape({
    container: $("fm-cy"), elements: elements, style: style, layout: { name: "preset" },
    wheelSensitivity: 0.2, minZoom: 0.1, maxZoom: 4, boxSelectionEnabled: false,
    autoungrabify: true,   // a report shows one picture: nodes stay where the deterministic layout put them
    selectionType: "single", pixelRatio: 1
  });

  function nsOverlaps() {
    var boxes = cy.nodes(".ns").map(function (n) { return n.boundingBox({ includeLabels: false }); }), k = 0;
    for (var i = 0; i < boxes.length; i++) for (var j = i + 1; j < boxes.length; j++) {
      var a = boxes[i], b = boxes[j];
      if (a.x1 < b.x2 && b.x1 < a.x2 && a.y1 < b.y2 && b.y1 < a.y2) k++;
    }
    return k;
  }

  // The layout runs on a fixed edge set, whatever the filters: every edge that carries traffic now or did
  // before a diff, and every mismatch (drawn whatever the filters). The other edges are taken out of the graph for the run (fcose reads connectedEdges() of the
  // whole graph, so leaving them out of a collection is not enough) and put back afterwards. If namespace
  // boxes overlap, seeds seed+1..seed+3 are tried and the best kept: the sequence is fixed, so still
  // deterministic.
  function runLayout() {
    var opts = JSON.parse(JSON.stringify(DATA.layout));
    opts.animate = false; opts.fit = true; opts.padding = 20;
    function perEdge(key, intra, inter) {   // JSON cannot carry functions: intra/inter pairs become one
      var a = opts[intra], b = opts[inter];
      opts[key] = function (e) { return e.data("sns") === e.data("tns") ? a : b; };
      delete opts[intra]; delete opts[inter];
    }
    perEdge("idealEdgeLength", "intraIdealEdgeLength", "interIdealEdgeLength");
    perEdge("edgeElasticity", "intraEdgeElasticity", "interEdgeElasticity");
    var out = cy.edges().filter(function (e) {
      var d = e.data("edge");
      return !CATEGORY[d.category].passes && !d.mismatch.length &&
             !(d.change && d.change.before && CATEGORY[d.change.before].passes);
    });
    var started = performance.now(), best = null, k;
    out.remove();
    for (k = 0; k < 4; k++) {
      seeded(DATA.seed + k, function () { cy.layout(opts).run(); });
      var overlaps = nsOverlaps();
      if (best === null || overlaps < best.overlaps) {
        best = { overlaps: overlaps, seed: DATA.seed + k,
                 pos: cy.nodes().not(".ns").map(function (n) { return [n, Object.assign({}, n.position())]; }) };
      }
      if (overlaps === 0) break;
    }
    if (best.seed !== DATA.seed + Math.min(k, 3)) best.pos.forEach(function (np) { np[0].position(np[1]); });
    out.restore();
    section.setAttribute("data-layout-seed", String(best.seed));
    section.setAttribute("data-ns-overlaps", String(best.overlaps));
    section.setAttribute("data-layout-ms", String(Math.round(performance.now() - started)));
  }

  // FNV-1a over rounded positions sorted by id: a fingerprint a test compares between two renders
  function layoutHash() {
    var parts = cy.nodes().map(function (n) {
      var p = n.position();
      return n.id() + "@" + Math.round(p.x) + "," + Math.round(p.y);
    }).sort();
    var h = 0x811c9dc5, s = parts.join("|");
    for (var i = 0; i < s.length; i++) { h ^= s.charCodeAt(i); h = Math.imul(h, 0x01000193) >>> 0; }
    return ("00000000" + h.toString(16)).slice(-8);
  }

  // ---- filters ----
  var state = { groups: {}, category: {}, mismatch: true, change: {}, focus: "", dir: "both", port: "" };
  DATA.groups.forEach(function (g) { state.groups[g.id] = true; });
  DATA.categories.forEach(function (c) { state.category[c.key] = c.on; });
  DATA.changes.forEach(function (c) { state.change[c.key] = true; });

  function edgeVisible(e) {
    var d = e.data(), edge = d.edge;
    if (!state.groups[d.sns] || !state.groups[d.tns]) return false;
    if (state.port && edge.pp !== state.port) return false;
    if (state.focus) {
      var to = d.target === state.focus, from = d.source === state.focus;
      if (state.dir === "to" && !to) return false;
      if (state.dir === "from" && !from) return false;
      if (state.dir === "both" && !to && !from) return false;
    }
    if (edge.mismatch.length && state.mismatch) return true;
    if (edge.change && state.change[edge.change.status]) return true;
    return !!state.category[edge.category];
  }

  var FEW = 40;  // when at most this many edges are shown, each carries its full label
  function apply() {
    addDeferred();
    var shown = 0, touched = {};
    cy.batch(function () {
      cy.nodes(".ns").forEach(function (n) { n.toggleClass("hidden", !state.groups[n.id()]); });
      cy.nodes(".nstitle").forEach(function (n) { n.toggleClass("hidden", !state.groups[n.data("ns")]); });
      cy.edges().forEach(function (e) {
        var visible = edgeVisible(e);
        e.toggleClass("hidden", !visible);
        if (visible) { shown++; touched[e.data("source")] = 1; touched[e.data("target")] = 1; }
        else if (e.selected()) e.unselect();
      });
      var narrowed = !!(state.focus || state.port);
      cy.nodes().not(".ns, .nstitle").forEach(function (n) {
        n.toggleClass("focus", n.id() === state.focus);
        n.toggleClass("faded", narrowed && !touched[n.id()] && n.id() !== state.focus);
      });
      cy.nodes(".ns").forEach(function (n) {
        var faded = narrowed && n.children().filter(function (c) { return touched[c.id()]; }).length === 0;
        n.toggleClass("faded", faded);
        cy.getElementById("title:" + n.id()).toggleClass("faded", faded);
      });
      cy.edges().toggleClass("few", shown <= FEW);
    });
    placeLabels();
    $("fm-cy").classList.toggle("no-edges", shown === 0);
    $("fm-shown").textContent = String(shown);
    section.setAttribute("data-edges", String(shown));
    refit();
    return shown;
  }

  // ---- edge labels: placed where they hide no node and no other label ----
  // Cytoscape draws an edge label at the edge's midpoint whatever is there; on a small map the edges
  // are short and the label lands on a node's name, and on a big one labels pile up. So each label is
  // placed, in graph units (the same at every zoom), greedily in a fixed order -- mismatches, then
  // changes, then L7 filters, then the rest; within each, path order -- at the first free spot of a
  // fixed candidate list: on its own edge first (middle, then towards the ends), then beside it, then
  // on rings around the middle. "Free" means off every node (body and name), namespace title and
  // label placed before it. A label with no free spot within reach is left off (class nolabel) and
  // counted in data-labels-off; hovering or clicking the edge, and the lists, still give its text.
  // Positions only depend on the layout and the filters, so the picture stays deterministic.
  var LABEL_BOX = { includeNodes: false, includeEdges: false, includeLabels: true, includeMainLabels: true,
                    includeSourceLabels: false, includeTargetLabels: false, includeOverlays: false,
                    includeUnderlays: false };
  var LABEL_GAP = 3;   // graph units kept free around each label
  function hits(a, b) { return a.x1 < b.x2 && b.x1 < a.x2 && a.y1 < b.y2 && b.y1 < a.y2; }
  function grown(b, by) { return { x1: b.x1 - by, y1: b.y1 - by, x2: b.x2 + by, y2: b.y2 + by }; }
  function labelRank(e) {
    var d = e.data("edge");
    return (d.mismatch.length ? 0 : d.change ? 1 : (d.category === "l7-filtered" || d.l7) ? 2 : 3) * 1e6 + e.data("n");
  }
  function labelCandidates(e, w, h) {
    var m = e.midpoint(), a = e.sourceEndpoint(), b = e.targetEndpoint();
    var dx = b.x - a.x, dy = b.y - a.y, len = Math.sqrt(dx * dx + dy * dy) || 1;
    var nx = -dy / len, ny = dx / len;
    var bx = m.x - (a.x + b.x) / 2, by = m.y - (a.y + b.y) / 2;   // a bezier's bow (parallel edges)
    var out = [], ts = [0.5];
    for (var k = 1; k <= 8; k++) ts.push(0.5 - 0.05 * k, 0.5 + 0.05 * k);
    // beside the line: far enough that a level box of w x h clears it, whatever the edge's angle
    var side = (Math.abs(nx) * w + Math.abs(ny) * h) / 2 + 2;
    [0, side, -side].forEach(function (off) {
      ts.forEach(function (t) {
        var bow = 4 * t * (1 - t);
        out.push({ x: a.x + dx * t + bx * bow + nx * off, y: a.y + dy * t + by * bow + ny * off });
      });
    });
    for (var r = 14; r <= 260; r += 14) {   // rings around the middle, 16 directions each
      for (var i = 0; i < 16; i++) {
        var angle = (i / 16) * 2 * Math.PI;
        out.push({ x: m.x + r * Math.cos(angle), y: m.y + r * Math.sin(angle) });
      }
    }
    return out;
  }
  function placeLabels() {
    var edges = cy.edges().filter(function (e) { return !e.hasClass("hidden"); });
    cy.batch(function () {
      cy.edges().removeClass("nolabel");
      edges.forEach(function (e) { e.data({ mx: 0, my: 0 }); });
    });
    var obstacles = [];
    cy.nodes().not(".ns").forEach(function (n) {
      if (n.hasClass("hidden") || !n.visible()) return;
      var bb = n.boundingBox({ includeLabels: true, includeOverlays: false, includeUnderlays: false });
      if (bb.w > 0) obstacles.push(grown(bb, LABEL_GAP));
    });
    var todo = edges.filter(function (e) { return !!e.pstyle("label").strValue; })
      .sort(function (x, y) { return labelRank(x) - labelRank(y); });
    var moves = [], off = 0;
    todo.forEach(function (e) {
      var bb = e.boundingBox(LABEL_BOX);
      if (!(bb.w > 0) || !isFinite(bb.x1)) return;
      var m = e.midpoint(), w = bb.w, h = bb.h;
      var cx = (bb.x1 + bb.x2) / 2 - m.x, cy0 = (bb.y1 + bb.y2) / 2 - m.y;   // the box's centre, from the midpoint
      var spot = null, candidates = labelCandidates(e, w, h);
      for (var i = 0; i < candidates.length && !spot; i++) {
        var c = candidates[i];
        var box = { x1: c.x - w / 2, x2: c.x + w / 2, y1: c.y - h / 2, y2: c.y + h / 2 };
        var free = true;
        for (var j = 0; j < obstacles.length && free; j++) free = !hits(box, obstacles[j]);
        if (free) spot = { c: c, box: box };
      }
      if (!spot) { off++; moves.push([e, null]); return; }
      obstacles.push(grown(spot.box, LABEL_GAP));
      moves.push([e, { mx: spot.c.x - m.x - cx, my: spot.c.y - m.y - cy0 }]);
    });
    cy.batch(function () {
      moves.forEach(function (mv) { if (mv[1]) mv[0].data(mv[1]); else mv[0].addClass("nolabel"); });
    });
    section.setAttribute("data-labels-off", String(off));
  }

  var FIT_MAX_ZOOM = 1.6;  // a small map is not blown up: labels keep their size
  function refit() {
    var eles = state.focus ? cy.getElementById(state.focus).closedNeighborhood().filter(":visible")
                           : cy.elements(":visible");   // :visible also leaves out the children of a hidden namespace
    cy.fit(eles, state.focus ? 50 : 16);
    if (cy.zoom() > FIT_MAX_ZOOM) { cy.zoom(FIT_MAX_ZOOM); cy.center(eles); }
  }
  // Browsers resize, and headless Chromium lays out before it sets the final viewport: re-fit unless
  // the reader has moved the view.
  var userMoved = false;
  ["wheel", "mousedown", "touchstart"].forEach(function (t) {
    $("fm-cy").addEventListener(t, function () { userMoved = true; }, { passive: true });
  });
  window.addEventListener("resize", function () { cy.resize(); if (!userMoved) refit(); });

  // ---- left panel: filters, which double as the legend ----
  function el(tag, attrs, text) {
    var x = document.createElement(tag);
    if (attrs) Object.keys(attrs).forEach(function (k) { x.setAttribute(k, attrs[k]); });
    if (text !== undefined) x.textContent = text;
    return x;
  }
  function checkbox(parent, checked, labelText, count, onchange, swatch) {
    var label = el("label"), box = el("input", { type: "checkbox" });
    box.checked = checked;
    box.addEventListener("change", function () { onchange(box.checked); apply(); });
    label.appendChild(box);
    if (swatch) label.appendChild(swatch);
    label.appendChild(el("span", null, labelText));
    if (count !== undefined) label.appendChild(el("span", { "class": "n" }, String(count)));
    parent.appendChild(label);
    return box;
  }
  function swatch(color, lineStyle, width) {
    var sw = el("span", { "class": "sw" + (lineStyle ? " " + lineStyle : "") });
    sw.style.borderTopColor = color;
    if (width) sw.style.borderTopWidth = width;
    return sw;
  }

  var portCounts = {};
  DATA.edges.forEach(function (e) { portCounts[e.pp] = (portCounts[e.pp] || 0) + 1; });

  var categoryBoxes = {};
  DATA.categories.forEach(function (c) {
    categoryBoxes[c.key] = checkbox($("fm-f-verdict"), c.on, c.label, c.count,
                                    function (on) { state.category[c.key] = on; }, swatch(c.color, c.style));
  });
  var mismatchSwatch = swatch("#212529", "mismatch");
  checkbox($("fm-f-highlight"), true, "mismatch (any verdict)", DATA.mismatchCount,
           function (on) { state.mismatch = on; }, mismatchSwatch);
  DATA.changes.forEach(function (c) {
    checkbox($("fm-f-highlight"), true, c.label, c.count, function (on) { state.change[c.key] = on; },
             swatch(c.color, c.style, "4px"));
  });

  var groupBoxes = {};
  DATA.groups.forEach(function (g) {
    var key = el("span", { "class": "nodekey" });
    key.style.background = g.fill; key.style.borderColor = g.stroke;
    groupBoxes[g.id] = checkbox($("fm-f-ns"), true, g.label, g.size, function (on) { state.groups[g.id] = on; }, key);
  });
  function setAllGroups(on) {
    DATA.groups.forEach(function (g) { state.groups[g.id] = on; groupBoxes[g.id].checked = on; });
    apply();
  }
  $("fm-ns-all").addEventListener("click", function () { setAllGroups(true); });
  $("fm-ns-none").addEventListener("click", function () { setAllGroups(false); });

  var focusSelect = $("fm-f-focus");
  DATA.groups.forEach(function (g) {
    var optgroup = el("optgroup", { label: g.label });
    DATA.nodes.forEach(function (n) { if (n.group === g.id) optgroup.appendChild(el("option", { value: n.id }, n.id)); });
    focusSelect.appendChild(optgroup);
  });
  focusSelect.addEventListener("change", function () { state.focus = focusSelect.value; apply(); });
  var dirSelect = $("fm-f-dir");
  dirSelect.addEventListener("change", function () { state.dir = dirSelect.value; apply(); });
  var portSelect = $("fm-f-port");
  DATA.ports.forEach(function (pp) { portSelect.appendChild(el("option", { value: pp }, pp + "  (" + portCounts[pp] + ")")); });
  portSelect.addEventListener("change", function () { state.port = portSelect.value; apply(); });
  $("fm-reset").addEventListener("click", function () {
    state.focus = ""; state.dir = "both"; state.port = ""; state.mismatch = true;
    focusSelect.value = ""; dirSelect.value = "both"; portSelect.value = "";
    DATA.categories.forEach(function (c) { state.category[c.key] = c.on; categoryBoxes[c.key].checked = c.on; });
    $("fm-f-highlight").querySelectorAll("input").forEach(function (box) { box.checked = true; });
    DATA.changes.forEach(function (c) { state.change[c.key] = true; });
    userMoved = false;
    setAllGroups(true);
  });

  // ---- right panel: mismatches, changes, details ----
  function pathText(edge) { return edge.source + " \u2192 " + edge.target + " :" + edge.pp; }
  var CHANGE_ORDER = {};
  DATA.changes.forEach(function (c, i) { CHANGE_ORDER[c.key] = i; });
  function listOrder(e) {   // changes by kind (opened, closed, L7 moves, changed), then in path order
    var change = e.data("edge").change;
    return (change ? CHANGE_ORDER[change.status] : 0) * 1e6 + e.data("n");
  }
  function fillList(id, filter, cls, describe) {
    var ul = $(id), list = cy.edges().filter(function (e) { return filter(e.data("edge")); })
      .sort(function (a, b) { return listOrder(a) - listOrder(b); });
    list.forEach(function (e) {
      var edge = e.data("edge"), li = el("li", { "class": cls });
      li.appendChild(el("div", null, pathText(edge)));
      describe(edge).forEach(function (line) { li.appendChild(el("div", { "class": "what" }, line)); });
      li.addEventListener("click", function () { selectEdge(e, true); });
      ul.appendChild(li);
    });
    if (!list.length) ul.appendChild(el("li", { "class": "none" }, "none"));
  }
  fillList("fm-mismatches", function (edge) { return edge.mismatch.length > 0; }, "mm",
           function (edge) { return edge.mismatch; });
  if (DATA.changes.length) {
    fillList("fm-changes", function (edge) { return !!edge.change; }, "ch",
             function (edge) { return [edge.change.text]; });
  }

  var details = $("fm-details");
  var HINT = "Click an edge to see why.";
  function badge(text, color) {
    var b = el("span", { "class": "badge" }, text);
    b.style.background = color;
    return b;
  }
  function rows(parent, pairs) {
    var dl = el("dl");
    pairs.forEach(function (p) {
      if (p[1] === null || p[1] === undefined || p[1] === "") return;
      dl.appendChild(el("dt", null, p[0]));
      var dd = el("dd");
      if (typeof p[1] === "string") dd.textContent = p[1]; else dd.appendChild(p[1]);
      dl.appendChild(dd);
    });
    parent.appendChild(dl);
  }
  function list(parent, tag, items) {
    var ol = el(tag);
    items.forEach(function (item) { ol.appendChild(el("li", null, item)); });
    parent.appendChild(ol);
  }
  function verdictBadge(verdict) {
    var c = CATEGORY[verdict];
    return badge(verdict, c ? c.color : "#495057");
  }
  function showDetails(edge) {
    details.textContent = "";
    details.appendChild(el("div", { "class": "path" }, pathText(edge)));
    rows(details, [["drawn as", verdictBadge(edge.category)], ["L7", edge.l7],
                   ["change", edge.change ? edge.change.text : ""]]);
    edge.mismatch.forEach(function (text) { details.appendChild(el("div", { "class": "mm" }, "\u26a0 " + text)); });
    if (edge.change && edge.change.before_reasons.length) {
      details.appendChild(el("div", { "class": "muted" }, "reasons before the change"));
      list(details, "ol", edge.change.before_reasons);
    }
    edge.requests.forEach(function (r) {
      var box = el("div", { "class": "req" });
      if (r.request || edge.requests.length > 1) box.appendChild(el("div", { "class": "req-title" }, r.request || "(port)"));
      rows(box, [["expected", r.expected ? verdictBadge(r.expected) : ""], ["model", verdictBadge(r.model)],
                 ["observed", DATA.probed ? r.observed_text : ""], ["L7 passes", r.l7_passes || ""],
                 ["test", r.test]]);
      box.appendChild(el("div", { "class": "muted" }, "reasons"));
      if (r.reasons.length) list(box, "ol", r.reasons); else box.appendChild(el("div", null, "(none given)"));
      if (r.evidence.length) {
        box.appendChild(el("div", { "class": "muted" }, "Hubble flows"));
        box.appendChild(el("pre", null, r.evidence.join("\n")));
      }
      details.appendChild(box);
    });
  }
  function selectEdge(e, center) {
    e.removeClass("hidden");   // a list click shows its edge even when a filter hides it
    cy.elements().unselect();
    e.select();
    showDetails(e.data("edge"));
    if (center) {
      cy.fit(e.connectedNodes().union(e), 120);
      if (cy.zoom() > FIT_MAX_ZOOM) { cy.zoom(FIT_MAX_ZOOM); cy.center(e); }
    }
  }
  cy.on("tap", "edge", function (evt) { selectEdge(evt.target, false); });
  cy.on("tap", "node", function (evt) {
    var n = evt.target;
    if (n.hasClass("ns")) return;
    focusSelect.value = n.id(); state.focus = n.id(); apply();
    var ins = n.incomers("edge").filter(function (e) { return !e.hasClass("hidden"); }).length;
    var outs = n.outgoers("edge").filter(function (e) { return !e.hasClass("hidden"); }).length;
    details.textContent = "";
    details.appendChild(el("div", { "class": "path" }, n.id()));
    details.appendChild(el("div", null, ins + " edges in, " + outs + " out with the current filters. " +
                                        "'Workload' on the left switches the direction."));
  });
  cy.on("tap", function (evt) { if (evt.target === cy) details.textContent = HINT; });
  cy.on("select unselect", "edge", function () { placeLabels(); });   // a selected edge shows its full label
  cy.on("mouseover", "edge", function (evt) { evt.target.addClass("hover"); });
  cy.on("mouseout", "edge", function (evt) { evt.target.removeClass("hover"); });

  // ---- initial state from the URL: #service-map?focus=ns/name&dir=to&port=8080/TCP&v=allowed,dropped&ns=a,b&select=mismatch
  var params = {}, hash = location.hash;
  if (hash.indexOf("#service-map?") === 0) {
    hash.slice("#service-map?".length).split("&").forEach(function (kv) {
      var i = kv.indexOf("=");
      if (i > 0) params[decodeURIComponent(kv.slice(0, i))] = decodeURIComponent(kv.slice(i + 1));
    });
  }
  if (params.focus && cy.getElementById(params.focus).length) { state.focus = params.focus; focusSelect.value = params.focus; }
  if (params.dir === "to" || params.dir === "from" || params.dir === "both") { state.dir = params.dir; dirSelect.value = params.dir; }
  if (params.port && portCounts[params.port]) { state.port = params.port; portSelect.value = params.port; }
  if (params.v !== undefined) {
    var on = params.v.split(",");
    DATA.categories.forEach(function (c) {
      state.category[c.key] = on.indexOf(c.key) >= 0; categoryBoxes[c.key].checked = state.category[c.key];
    });
  }
  if (params.ns !== undefined) {
    var groupsOn = params.ns.split(",");
    DATA.groups.forEach(function (g) { state.groups[g.id] = groupsOn.indexOf(g.label) >= 0; groupBoxes[g.id].checked = state.groups[g.id]; });
  }

  function placeTitles() {
    cy.batch(function () {
      cy.nodes(".ns").forEach(function (n) {
        var bb = n.boundingBox({ includeLabels: false });
        cy.add({ group: "nodes", classes: "nstitle", position: { x: bb.x1 + 4, y: bb.y1 },
                 data: { id: "title:" + n.id(), ns: n.id(), label: n.data("label"), fill: n.data("fill"),
                         stroke: n.data("stroke") } });
      });
    });
  }

  runLayout();
  placeTitles();
  apply();
  details.textContent = HINT;
  if (params.select === "mismatch" || params.select === "change") {
    var first = cy.edges(params.select === "mismatch" ? ".mismatch" : ".ch");
    if (first.length) selectEdge(first.sort(function (a, b) { return listOrder(a) - listOrder(b); })[0], false);
  }
  section.setAttribute("data-layout-hash", layoutHash());
  section.setAttribute("data-ready", "1");
  if (hash.indexOf("#service-map") === 0) section.scrollIntoView();
  window.flowcheckServiceMap = { cy: cy, state: state, apply: apply };
})();
