"""Benchmark: plan time of the policy model for N workloads x M policies (issue 3).

Builds a synthetic topology of N workloads spread over 20 namespaces (labels and ports drawn from
small pools, as real clusters reuse them) and M policies of every kind the model reads --
NetworkPolicy (default deny, namespace+pod selectors, named ports, ipBlock egress), CNP (HTTP L7
rules, matchExpressions, entities, CIDR sets, DNS rules), CCNP deny rules -- parsed through the
same parsers as files are (``synthetic.py``). It then times building the model and planning every workload ->
workload flow on every served port, and prints workloads, pairs, seconds and microseconds per pair
for each N (default: N = 100, 250, 500 with M = 200).

Targets (benchmarks/README.md): N = 500 in <= 5 s, and per-pair time flat as N grows (here: the
N = 500 figure at most 1.5x the N = 100 one), both at M = 200. Each sample is printed with the load
average before it (the machine may be shared). ``--sizes`` and ``--policies`` choose other points
(``--sizes 20,40 --policies 10`` checks the script in seconds); a target applies only where its
sizes and M were measured, and the script says when none does. Exits 1 when a target is missed.

Run from the repository root: ``python benchmarks/model_plan.py [--sizes 100,250,500] [--policies 200]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence

import synthetic  # benchmarks/synthetic.py, beside this script

from flowcheck.model.engine import Model
from flowcheck.model.matrix import decide_matrix

SIZES = (100, 250, 500)
POLICIES = 200
TARGET_N = 500
TARGET_SECONDS = 5.0
FLAT_FROM = 100
FLAT_RATIO = 1.5


def run(n: int, m: int) -> tuple[int, int, int, float, float]:
    """(workloads, pairs, flows, wall seconds, CPU seconds) of building the model and planning."""
    topology = synthetic.topology(n)
    policies = synthetic.policy_set(m)
    start, cpu_start = time.perf_counter(), time.process_time()
    planned = decide_matrix(Model(topology, policies))
    return n, n * n, len(planned), time.perf_counter() - start, time.process_time() - cpu_start


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)),
                        help="comma-separated workload counts N (default: %(default)s)")
    parser.add_argument("--policies", type=int, default=POLICIES, metavar="M",
                        help="policies M (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        args.sizes = sorted({int(size) for size in args.sizes.split(",") if size.strip()})
    except ValueError:
        parser.error(f"--sizes: expected comma-separated numbers, got {args.sizes!r}")
    if not args.sizes or min(args.sizes) < 2 or args.policies < 1:
        parser.error("sizes must be >= 2 and policies >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    print(f"model plan benchmark: M = {args.policies} policies over {synthetic.NAMESPACES} namespaces; seconds "
          f"(wall) and cpu s include building the model; {os.cpu_count()} CPUs")
    print(f"{'workloads':>9}  {'pairs':>7}  {'flows':>7}  {'seconds':>7}  {'us/pair':>7}  {'cpu s':>7}  load before")
    per_pair: dict[int, float] = {}
    seconds_at: dict[int, float] = {}
    for n in args.sizes:
        load = os.getloadavg()[0]
        workloads, pairs, flows, seconds, cpu = run(n, args.policies)
        per_pair[n] = seconds / pairs * 1e6
        seconds_at[n] = seconds
        print(f"{workloads:>9}  {pairs:>7}  {flows:>7}  {seconds:>7.2f}  {per_pair[n]:>7.2f}  {cpu:>7.2f}  "
              f"{load:.2f}")
    at_target_m = args.policies == POLICIES
    met: list[str] = []
    missed: list[str] = []
    if at_target_m and TARGET_N in seconds_at:
        line = f"N = {TARGET_N} in {seconds_at[TARGET_N]:.2f} s (target <= {TARGET_SECONDS} s)"
        (met if seconds_at[TARGET_N] <= TARGET_SECONDS else missed).append(line)
    if at_target_m and FLAT_FROM in per_pair and TARGET_N in per_pair:
        ratio = per_pair[TARGET_N] / per_pair[FLAT_FROM]
        line = f"per-pair time N={TARGET_N}/N={FLAT_FROM} = {ratio:.2f} (target <= {FLAT_RATIO})"
        (met if ratio <= FLAT_RATIO else missed).append(line)
    for line in missed:
        print(f"MISSED: {line}")
    if met and not missed:
        print(f"targets met: {'; '.join(met)}")
    elif not met and not missed:
        print(f"no target applies at N = {', '.join(map(str, args.sizes))}, M = {args.policies}: the targets are "
              f"at N = {TARGET_N} (and N = {FLAT_FROM} for the per-pair ratio) with M = {POLICIES}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
