"""The terminal truth table: golden output, alignment by display width, colour only on request."""

from __future__ import annotations

import re

import pytest

from flowcheck.report.records import CheckedFlow, MatrixReport
from flowcheck.report.terminal import render_plan_table, render_table
from flowcheck.report.textutil import display_width
from flowcheck.verdict import Verdict
from tests.report.golden import assert_matches_golden
from tests.report.sample import sample_flows, sample_report

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def table_lines(text: str) -> list[str]:
    """The lines that belong to boxed tables (rules and rows)."""
    return [line for line in text.splitlines() if line.startswith(("+", "|"))]


def test_sample_run_matches_golden() -> None:
    assert_matches_golden("sample.txt", render_table(sample_report()))


def test_narrow_terminal_splits_columns_into_blocks_matching_golden() -> None:
    assert_matches_golden("sample-narrow.txt", render_table(sample_report(), max_width=60))


def test_plan_matches_golden() -> None:
    plan = [CheckedFlow(f.source, f.destination, f.protocol, f.port, f.model, request=f.request,
                        model_reasons=f.model_reasons) for f in sample_flows()]
    assert_matches_golden("plan.txt", render_plan_table(plan))


@pytest.mark.parametrize("max_width", [40, 60, 80, 120, 400])
def test_every_table_line_has_the_same_display_width(max_width: int) -> None:
    text = render_table(sample_report(), max_width=max_width)
    blocks = text.split("\n\n")
    tables = [table_lines(block) for block in blocks if table_lines(block)]
    assert tables
    for lines in tables:
        assert len({display_width(line) for line in lines}) == 1, lines


def test_wide_characters_and_combining_marks_keep_the_table_aligned() -> None:
    flows = [
        CheckedFlow("ns/日本語-client", "default/my-api", "TCP", 8080, Verdict.ALLOWED, observed=Verdict.ALLOWED),
        CheckedFlow("ns/cafe\u0301", "default/my-api", "TCP", 8080, Verdict.DROPPED, observed=Verdict.DROPPED),
        CheckedFlow("ns/plain", "default/サーバ", "TCP", 80, Verdict.DROPPED, expected=Verdict.ALLOWED,
                    observed=Verdict.DROPPED),
    ]
    lines = table_lines(render_table(MatrixReport(tuple(flows))))
    assert len(lines) == 7  # rule, header, header rule, three rows, rule
    assert len({display_width(line) for line in lines}) == 1
    # The wide name takes 2 columns per character: the row is visibly shorter in len() than the rules.
    assert len(lines[3]) != len(lines[0])


def test_table_fits_max_width_when_headers_are_numbered() -> None:
    text = render_table(sample_report(), max_width=80)
    assert "columns:" in text
    assert "  [7] kube-system/coredns:53/UDP DNS A my-api.default.svc.cluster.local" in text
    assert all(display_width(line) <= 80 for line in table_lines(text))


def test_full_headers_are_used_when_they_fit() -> None:
    flows = (CheckedFlow("default/web", "default/my-api", "TCP", 8080, Verdict.ALLOWED),)
    text = render_table(MatrixReport(flows))
    assert "| source \\ destination | default/my-api:8080/TCP |" in text
    assert "columns:" not in text


def test_no_tabs_and_no_colour_by_default() -> None:
    text = render_table(sample_report())
    assert "\t" not in text
    assert "\x1b" not in text


def test_colour_when_asked_marks_verdicts_and_keeps_alignment() -> None:
    coloured = render_table(sample_report(), color=True)
    assert "\x1b[32mallowed" in coloured            # green allowed
    assert "\x1b[31mdropped" in coloured            # red dropped (as expected)
    assert "\x1b[1;7;31mdropped !2" in coloured     # a mismatch: bold, reversed
    assert "\x1b[33ml7-denied" in coloured          # amber
    plain = ANSI.sub("", coloured)
    assert plain == render_table(sample_report())


def test_mismatches_are_marked_in_cells_and_explained_below() -> None:
    text = render_table(sample_report())
    assert "| dropped !2 |" in text
    section = text[text.index("mismatches (4):"):]
    entry = section[section.index("  !2 "):section.index("  !3 ")]
    assert entry.startswith("  !2 monitoring/prometheus -> default/my-api:9090/TCP\n")
    assert "intent vs model: expected allowed, the model predicts dropped" in entry
    assert "live vs expected: expected allowed, observed dropped" in entry
    assert "expected: allowed | model: dropped | observed: dropped (3 attempts)" in entry
    assert "namespaceSelector team=observability does not match namespace monitoring" in entry
    assert "policy-verdict:none INGRESS DENIED (TCP Flags: SYN)" in entry


def test_plan_has_no_mismatch_marks_and_says_nothing_was_probed() -> None:
    plan = [CheckedFlow("default/web", "default/my-api", "TCP", 8080, Verdict.DROPPED),
            CheckedFlow("default/web", "default/db", "TCP", 5432, Verdict.UNKNOWN, model_reasons=("toFQDNs",))]
    text = render_plan_table(plan)
    assert "mismatch" not in text
    assert "!N" not in text
    assert "refused" not in text  # probing outcomes cannot occur in a plan
    assert "the model's verdicts; nothing was probed" in text
    assert "| default/web          | unknown             | dropped                 |" in text
    assert "~" not in text  # no "predicted" prefixes when nothing at all was probed


def test_control_characters_in_names_are_escaped() -> None:
    flows = (CheckedFlow("ns/\x1b[2Jevil\r", "default/my-api", "TCP", 80, Verdict.ALLOWED),)
    text = render_table(MatrixReport(flows))
    assert "\x1b" not in text
    assert "\r" not in text
    assert "ns/\\x1b[2Jevil\\x0d" in text


def test_empty_report_says_so() -> None:
    assert render_table(MatrixReport(())) == "flowcheck truth table: no flows checked\n"


def test_duplicate_paths_show_every_outcome_and_every_mismatch() -> None:
    flows = (
        CheckedFlow("a/x", "b/y", "TCP", 80, Verdict.ALLOWED, expected=Verdict.ALLOWED, observed=Verdict.ALLOWED,
                    test="t1"),
        CheckedFlow("a/x", "b/y", "TCP", 80, Verdict.ALLOWED, expected=Verdict.ALLOWED, observed=Verdict.DROPPED,
                    test="t2"),
    )
    text = render_table(MatrixReport(flows))
    assert "| allowed/dropped !1 |" in text
    assert "test: t2" in text
