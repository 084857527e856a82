"""Benchmark: ``flowcheck plan`` as a process, as a user runs it -- wall time and peak RSS (issue 13).

``model_plan.py`` measures the model in process; a user waits for the whole command: the
interpreter starting, the imports, reading and validating every policy file, reading the
topology, deciding, and writing the output. This script writes a synthetic repository
(``synthetic.py``: N workloads over 20 namespaces serving one port, ``http`` TCP/8080; M policy
files of every kind the model reads) to a temporary directory, runs the ``flowcheck`` command on it
with stdout to a file, and takes each run's wall time (from start to exit) and its peak resident
set size (``os.wait4``'s rusage of that one child, started from a small launcher process: Linux
reports ``ru_maxrss`` in KiB and keeps a parent's high-water mark across fork and exec).

Targets (issue 13; each sample is printed with the load average before it, then met/MISSED):

* ``plan --format json``, N = 500, M = 200: median wall <= 2.0 s, peak RSS <= 300 MB;
* ``plan --by identity --format json``, N = 5,000 in 280 identities (<= 300), M = 1,000:
  median wall <= 10 s, peak RSS <= 1 GB;
* time grows with identities squared, not workloads squared: the same 280 identities and 1,000
  policies at N = 2,500 and N = 5,000 -- doubling the workloads would quadruple a per-workload
  plan; here it may at most double the median CPU time of the process (user + system, which a
  shared machine's load disturbs less than the wall time; both are printed). What grows with N is
  reading the topology and listing each identity's workloads in every row. An informational run at
  N = 5,000 in 140 identities shows the part that grows with identities.

Each output is checked for its number of rows (N x N flows; one per identity pair and the
identities' own paths), so a fast wrong answer does not count. Exit status 1 when a target is
missed or an output is wrong.

Run from the repository root with the project installed (``make venv``)::

    .venv/bin/python benchmarks/plan_command.py [--runs 3] [--command '.venv/bin/flowcheck']
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import synthetic  # benchmarks/synthetic.py, beside this script

MB = 1024 * 1024


@dataclass(frozen=True)
class Case:
    label: str
    workloads: int
    policies: int
    identities: int | None
    by_identity: bool
    max_seconds: float | None = None
    max_rss_mb: float | None = None


PLAN_500 = Case("plan --format json, N=500 x M=200", 500, 200, None, False, 2.0, 300)
BY_IDENTITY_5000 = Case("plan --by identity --format json, N=5000 in 280 identities x M=1000", 5000, 1000, 280,
                        True, 10.0, 1024)
BY_IDENTITY_2500 = Case("plan --by identity --format json, N=2500 in 280 identities x M=1000", 2500, 1000, 280, True)
BY_IDENTITY_5000_140 = Case("plan --by identity --format json, N=5000 in 140 identities x M=1000 (information)",
                            5000, 1000, 140, True)
GROWTH_LIMIT = 2.0  # t(N=5000) / t(N=2500) at the same identities: workloads squared would give 4


@dataclass(frozen=True)
class Sample:
    seconds: float
    cpu_seconds: float
    rss_mb: float
    load: float
    rows: int


def default_command() -> list[str]:
    """The ``flowcheck`` console script beside this interpreter (what a user of this venv runs), else ``-m``."""
    script = Path(sys.executable).parent / "flowcheck"
    return [str(script)] if script.exists() else [sys.executable, "-m", "flowcheck"]


# Runs one command with stdout and stderr to files and prints its wall time, peak RSS (KiB) and exit
# status. It runs in a fresh small interpreter because Linux keeps a process's RSS high-water mark
# across exec (the kernel's signal_struct maxrss): a child forked from this script, which holds the
# synthetic repository, would report this script's size as its own peak.
_LAUNCHER = """
import json, os, subprocess, sys, time
argv, out, err = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
with open(out, "w") as stdout, open(err, "w") as stderr:
    start = time.perf_counter()
    child = subprocess.Popen(argv, stdout=stdout, stderr=stderr)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
print(json.dumps([seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, os.waitstatus_to_exitcode(status)]))
"""


def run_once(command: list[str], case: Case, topology: Path, policies: Path, out: Path) -> Sample:
    argv = [*command, "plan", "--topology", str(topology), "--policies", str(policies), "--format", "json"]
    if case.by_identity:
        argv += ["--by", "identity"]
    load = os.getloadavg()[0]
    err = out.with_suffix(".err")
    launched = subprocess.run([sys.executable, "-S", "-c", _LAUNCHER, json.dumps(argv), str(out), str(err)],
                              capture_output=True, text=True, check=True)
    seconds, cpu, rss_kib, code = json.loads(launched.stdout)
    if code != 0:
        raise SystemExit(f"{shlex.join(argv)} exited {code}: {err.read_text().strip()}")
    return Sample(seconds, cpu, rss_kib / 1024, load, _rows(out, case))


def _rows(out: Path, case: Case) -> int:
    """How many rows the output has (counted, not parsed: a 100 MB document parses slower than it is written)."""
    data = out.read_bytes()
    if not data.endswith(b"]}\n"):
        raise SystemExit(f"{case.label}: the output is not a complete JSON document ({len(data)} bytes)")
    return data.count(b'"self":' if case.by_identity else b'{"from":')


def expected_rows(case: Case) -> int:
    if not case.by_identity:
        return case.workloads * case.workloads
    identities = case.identities or case.workloads
    return identities * identities + identities  # one path per identity pair, plus each identity's own path


def measure(command: list[str], case: Case, runs: int, root: Path) -> list[Sample]:
    workdir = Path(tempfile.mkdtemp(dir=root))
    topology, policies = synthetic.write_repository(workdir, case.workloads, case.policies,
                                                    identities=case.identities)
    print(f"\n{case.label}")
    samples = []
    for k in range(runs):
        sample = run_once(command, case, topology, policies, workdir / "out.json")
        print(f"  run {k + 1}: {sample.seconds:6.2f} s wall  {sample.cpu_seconds:6.2f} s CPU  "
              f"{sample.rss_mb:7.1f} MB peak RSS  "
              f"{sample.rows} rows  (load average {sample.load:.2f} before)")
        if sample.rows != expected_rows(case):
            raise SystemExit(f"{case.label}: {sample.rows} rows, expected {expected_rows(case)}")
        samples.append(sample)
    return samples


def verdict(case: Case, samples: list[Sample]) -> bool:
    median = statistics.median(s.seconds for s in samples)
    peak = max(s.rss_mb for s in samples)
    ok = True
    if case.max_seconds is not None:
        met = median <= case.max_seconds
        ok &= met
        print(f"  {'met' if met else 'MISSED'}: median wall {median:.2f} s (target <= {case.max_seconds} s)")
    if case.max_rss_mb is not None:
        met = peak <= case.max_rss_mb
        ok &= met
        print(f"  {'met' if met else 'MISSED'}: peak RSS {peak:.1f} MB (target <= {case.max_rss_mb} MB)")
    if case.max_seconds is None and case.max_rss_mb is None:
        print(f"  median wall {median:.2f} s, peak RSS {peak:.1f} MB")
    return ok


def _ratio(a: list[Sample], b: list[Sample], field: str) -> float:
    return statistics.median(getattr(s, field) for s in a) / statistics.median(getattr(s, field) for s in b)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per case; the median wall time counts (default 3)")
    parser.add_argument("--command", type=shlex.split, default=None,
                        help="how to start flowcheck (default: the flowcheck script beside this interpreter)")
    args = parser.parse_args()
    command = args.command or default_command()
    print(f"flowcheck plan as a process: {shlex.join(command)}; {os.cpu_count()} CPUs; "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    ok = True
    with tempfile.TemporaryDirectory(prefix="flowcheck-bench-") as tmp:
        root = Path(tmp)
        ok &= verdict(PLAN_500, measure(command, PLAN_500, args.runs, root))
        ok &= verdict(BY_IDENTITY_5000, big := measure(command, BY_IDENTITY_5000, args.runs, root))
        half = measure(command, BY_IDENTITY_2500, args.runs, root)
        verdict(BY_IDENTITY_2500, half)
        fewer = measure(command, BY_IDENTITY_5000_140, args.runs, root)
        verdict(BY_IDENTITY_5000_140, fewer)
    wall_ratio = _ratio(big, half, "seconds")
    ratio = _ratio(big, half, "cpu_seconds")
    met = ratio <= GROWTH_LIMIT
    ok &= met
    print(f"\ngrowth with workloads at 280 identities: CPU time t(N=5000) / t(N=2500) = {ratio:.2f}, wall "
          f"{wall_ratio:.2f} (workloads squared: 4; target <= {GROWTH_LIMIT} on CPU time): "
          f"{'met' if met else 'MISSED'}")
    print(f"growth with identities at N=5000: CPU time t(280 identities) / t(140 identities) = "
          f"{_ratio(big, fewer, 'cpu_seconds'):.2f}, wall {_ratio(big, fewer, 'seconds'):.2f} (information)")
    print("all targets met" if ok else "some target MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
