"""What a reader must know about a live run before trusting its table: the notices every format shows.

A truth table shows verdicts; it cannot show that the run was interrupted, that some declared paths
were never checked, how much of it Hubble confirmed, that a path's verdict depended on whether its
two pods shared a node, or that one path showed two verdicts within the run. ``run_notices`` derives
those facts from the records and the run's metadata (nothing is stored twice), and the terminal,
Markdown and HTML renderings print them under the summary line, in this order.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from flowcheck.report.records import CheckedFlow, MatrixReport
from flowcheck.verdict import Verdict

LISTED = 5  # paths named per notice; the rest are counted
SHOWN_AS_NOTICE = frozenset({"input_errors"})  # metadata a terminal's one-line run summary leaves to its notice
VERDICTS = (Verdict.ALLOWED, Verdict.DROPPED, Verdict.L7_DENIED)


def run_notices(report: MatrixReport) -> list[str]:
    """One line per fact (see the module docstring); empty for a clean, complete run."""
    notices = []
    interrupted = report.metadata.get("interrupted")
    if interrupted:
        notices.append(f"INTERRUPTED -- {interrupted}; tests not run: {report.metadata.get('not_run', 'unknown')}")
    input_errors = report.metadata.get("input_errors")
    if input_errors:
        notices.append(f"NOT CHECKED -- input the run could not read, so its paths are missing from this table: "
                       f"{input_errors}")
    unchecked = [f for f in report.flows if f.observed is None and f.observed_detail.startswith("not checked")]
    if unchecked:
        notices.append(f"{len(unchecked)} declared path(s) not checked: {_paths(unchecked)}")
    judged = [f for f in report.flows if f.observed is not None and f.evidence_state]
    if judged:
        count = {state: sum(1 for f in judged if f.evidence_state == state)
                 for state in ("confirmed", "none", "contradicted")}
        notices.append(f"Hubble evidence for {len(judged)} probe record(s): {count['confirmed']} confirmed, "
                       f"{count['none']} no evidence (no flow decided), {count['contradicted']} contradicted "
                       "(reported as errors)")
    notices.extend(_placement(report.flows))
    notices.extend(_placement_differences(report.flows))
    notices.extend(_differences_within_the_run(report.flows))
    return notices


def _paths(flows: Sequence[CheckedFlow]) -> str:
    shown = "; ".join(f"{f.source} -> {f.column}" for f in flows[:LISTED])
    return shown + (f"; and {len(flows) - LISTED} more" if len(flows) > LISTED else "")


def _placement(flows: Sequence[CheckedFlow]) -> list[str]:
    """How many paths were probed within a node, across nodes, or both."""
    placements: dict[tuple[object, ...], set[str]] = defaultdict(set)
    for f in flows:
        if f.observed is not None and f.placement:
            placements[f.key].add(f.placement)
    if not placements:
        return []
    both = sum(1 for p in placements.values() if len(p) > 1)
    same = sum(1 for p in placements.values() if p == {"same-node"})
    cross = sum(1 for p in placements.values() if p == {"cross-node"})
    return [f"placement: {both} path(s) probed both same-node and cross-node, {same} same-node only, {cross} "
            "cross-node only"]


def _placement_differences(flows: Sequence[CheckedFlow]) -> list[str]:
    """Paths whose same-node and cross-node probes saw different verdicts."""
    by_path: dict[tuple[object, ...], dict[str, set[Verdict]]] = defaultdict(lambda: defaultdict(set))
    columns: dict[tuple[object, ...], str] = {}
    for f in flows:
        if f.observed is not None and f.placement:
            by_path[f.key][f.placement].add(f.observed)
            columns[f.key] = f"{f.source} -> {f.column}"
    differing = []
    for key, placements in by_path.items():
        if len({frozenset(verdicts) for verdicts in placements.values()}) > 1:
            seen = ", ".join(f"{placement} {'/'.join(sorted(v.value for v in verdicts))}"
                             for placement, verdicts in sorted(placements.items()))
            differing.append(f"verdict differs by placement: {columns[key]}: {seen}")
    return differing


def _differences_within_the_run(flows: Sequence[CheckedFlow]) -> list[str]:
    """Paths probed between the same pods more than once in the run, with different verdicts."""
    seen: dict[tuple[object, ...], dict[Verdict, str]] = defaultdict(dict)
    columns: dict[tuple[object, ...], str] = {}
    for f in flows:
        if f.observed in VERDICTS and f.probed_via:
            key = (*f.key, f.probed_via)
            seen[key].setdefault(f.observed, f.test)
            columns[key] = f"{f.source} -> {f.column} [{f.probed_via}]"
    return [f"observed differently within this run: {columns[key]}: "
            + ", ".join(f"{verdict.value} ({test or 'unknown test'})" for verdict, test in verdicts.items())
            for key, verdicts in seen.items() if len(verdicts) > 1]
