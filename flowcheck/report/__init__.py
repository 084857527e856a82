"""Reports: truth tables (terminal, Markdown, HTML), the run's matrix.json, and baselines.

Every report is a projection of one ``MatrixReport`` (``records``): a list of ``CheckedFlow``
records, each with what its author expected, what the model predicts (and why) and what the
cluster did (with Hubble flows as evidence).

- ``truth_table`` arranges flows into the grid all formats draw: rows = sources, columns =
  ``destination:port/protocol`` (+ L7 request), sorted, mismatches numbered in table order.
- A cell shows the *observed* outcome where the flow was probed, else the *model's* verdict
  (prefixed ``~`` when other cells of the run were probed). A cell that disagrees -- intent vs
  model, or observed vs expected (vs model when nothing was expected) -- carries ``!N``, the
  number of its entry in the mismatch list under the table (path, expected / model / observed,
  the model's reasons, the Hubble flow lines, the test).
- Colours (``marks``) follow Hubble UI: green ``allowed``, red ``dropped``, amber ``l7-denied``
  (solid) and ``unknown`` / ``refused`` / ``error`` (striped in HTML, a yellow circle in Markdown),
  always beside the word so nothing depends on colour.
- ``terminal`` (ASCII boxes, display-width padding, ANSI only when asked, numbered headers and
  column blocks for wide matrices), ``markdown`` (GFM + ``$GITHUB_STEP_SUMMARY``), ``html_page``
  (one self-contained page: the service map, then the truth table), ``service_map`` (the map's
  graph: endpoints by kind (``endpoints``), one edge per path, mismatches, diffs) and
  ``service_map_html`` (its section, drawn by the inlined Cytoscape.js of ``vendored``), ``files``
  (``write_report_dir``, ``read_matrix``) and ``baseline`` (recording and comparing baselines;
  ``flowcheck baseline record|compare`` is ``flowcheck.cli.baseline``).
"""

from __future__ import annotations

from flowcheck.report.baseline import (
    Baseline,
    BaselineDiff,
    BaselineEntry,
    Basis,
    ChangeKind,
    FlowChange,
    compare_baselines,
    read_baseline,
    record_baseline,
    render_diff,
    write_baseline,
)
from flowcheck.report.files import ReportPaths, read_matrix, write_report_dir
from flowcheck.report.html_page import render_html, render_plan_html
from flowcheck.report.markdown import append_step_summary, render_markdown, render_plan_markdown
from flowcheck.report.records import CheckedFlow, MatrixReport, ReportFileError, merge_reports
from flowcheck.report.service_map import ServiceMap, build_service_map, diff_service_maps
from flowcheck.report.terminal import render_plan_table, render_table

__all__ = [
    "Baseline",
    "BaselineDiff",
    "BaselineEntry",
    "Basis",
    "ChangeKind",
    "CheckedFlow",
    "FlowChange",
    "MatrixReport",
    "ReportFileError",
    "ReportPaths",
    "ServiceMap",
    "append_step_summary",
    "build_service_map",
    "compare_baselines",
    "diff_service_maps",
    "merge_reports",
    "read_baseline",
    "read_matrix",
    "record_baseline",
    "render_diff",
    "render_html",
    "render_markdown",
    "render_plan_html",
    "render_plan_markdown",
    "render_plan_table",
    "render_table",
    "write_baseline",
    "write_report_dir",
]
