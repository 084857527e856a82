"""Benchmark: plan time of the policy model for N workloads x M policies (issue 3).

Builds a synthetic topology of N workloads spread over 20 namespaces (labels and ports drawn from
small pools, as real clusters reuse them) and M policies of every kind the model reads --
NetworkPolicy (default deny, namespace+pod selectors, named ports, ipBlock egress), CNP (HTTP L7
rules, matchExpressions, entities, CIDR sets, DNS rules), CCNP deny rules -- parsed through the
same parsers as files are (``synthetic.py``). It then times building the model and planning every workload ->
workload flow on every served port, and prints workloads, pairs, seconds and microseconds per pair
for N = 100, 250, 500 with M = 200.

Targets (benchmarks/README.md): N = 500 in <= 5 s, and per-pair time flat as N grows (here: the
N = 500 figure at most 1.5x the N = 100 one). Exits 1 when a target is missed.

Run from the repository root: ``python benchmarks/model_plan.py``.
"""

from __future__ import annotations

import sys
import time

import synthetic  # benchmarks/synthetic.py, beside this script

from flowcheck.model.engine import Model
from flowcheck.model.matrix import decide_matrix

SIZES = (100, 250, 500)
POLICIES = 200
TARGET_SECONDS = 5.0
FLAT_RATIO = 1.5


def run(n: int, m: int) -> tuple[int, int, int, float, float]:
    """(workloads, pairs, flows, wall seconds, CPU seconds) of building the model and planning."""
    topology = synthetic.topology(n)
    policies = synthetic.policy_set(m)
    start, cpu_start = time.perf_counter(), time.process_time()
    planned = decide_matrix(Model(topology, policies))
    return n, n * n, len(planned), time.perf_counter() - start, time.process_time() - cpu_start


def main() -> int:
    print(f"model plan benchmark: M = {POLICIES} policies over {synthetic.NAMESPACES} namespaces; seconds (wall) and "
          "cpu s include building the model")
    print(f"{'workloads':>9}  {'pairs':>7}  {'flows':>7}  {'seconds':>7}  {'us/pair':>7}  {'cpu s':>7}")
    per_pair: dict[int, float] = {}
    seconds_at: dict[int, float] = {}
    for n in SIZES:
        workloads, pairs, flows, seconds, cpu = run(n, POLICIES)
        per_pair[n] = seconds / pairs * 1e6
        seconds_at[n] = seconds
        print(f"{workloads:>9}  {pairs:>7}  {flows:>7}  {seconds:>7.2f}  {per_pair[n]:>7.2f}  {cpu:>7.2f}")
    ok = True
    if seconds_at[SIZES[-1]] > TARGET_SECONDS:
        print(f"MISSED: N = {SIZES[-1]} took {seconds_at[SIZES[-1]]:.2f} s (target <= {TARGET_SECONDS} s)")
        ok = False
    ratio = per_pair[SIZES[-1]] / per_pair[SIZES[0]]
    if ratio > FLAT_RATIO:
        print(f"MISSED: per-pair time grew {ratio:.2f}x from N = {SIZES[0]} to N = {SIZES[-1]} "
              f"(target <= {FLAT_RATIO}x)")
        ok = False
    if ok:
        print(f"targets met: N = {SIZES[-1]} in {seconds_at[SIZES[-1]]:.2f} s; per-pair ratio "
              f"N={SIZES[-1]}/N={SIZES[0]} = {ratio:.2f}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
