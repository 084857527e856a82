"""Benchmark: one agent run per source pod (flowcheck) vs one process per probe (cyclonus, k8s e2e).

Needs root, iproute2 and nftables (the netns lab from ``tests/netlab``). Run from the repository root::

    python benchmarks/probe_matrix.py [--sizes 20,50] [--runs 5] [--python /usr/bin/python3]

N lab pods each serve 3 ports (HTTP 8080, TCP 9000, UDP 81 -- the real probe server); about a third of
the (source, destination, port) triples are dropped by nftables on the destination; probe timeout 1 s.
Every source probes every other pod on every port: N x (N - 1) x 3 probes.

- Mode A (flowcheck): one agent run per source pod with all its probes, all sources concurrently.
- Mode B (how cyclonus and the Kubernetes e2e netpol suite probe): one process per probe,
  ``ip netns exec SRC python agent`` with a one-probe plan, 15 workers (cyclonus' default).

Both modes start the agent the same way, through ``LabExecutor`` -- as the cluster's executor does
(``flowcheck.probe.launch``: ``python -S``, the agent imported from bytecode cached in the pod's own
scratch directory). Every pod runs the agent once before anything is timed, so the figures are a
steady-state probe round; the first round in fresh pods, which compiles the agent in each of them, is
timed and printed too ("cold"), but no target applies to it.

Both modes must observe exactly the expected outcome for every triple (ok where allowed, timeout where
dropped). Mode A takes seconds, so it runs ``--runs`` times per size and its median counts (every run is
printed, with the load average before it and where the CPU time went: probe servers, agents with their
``ip netns exec``, and this harness parsing the results); mode B runs once per size. Mode B cannot beat
(dropped probes x timeout / 15 workers), printed as its floor: the ratio depends on mode A's wall time.

The interpreter (``--python``, default: the one running this script) runs the lab's probe servers and
every agent, and its build matters: in the 50-pod lab a pyenv build (no PGO, no LTO, ``--enable-shared``)
spent 1.3-1.6x the CPU of Debian's packaged ``/usr/bin/python3.11`` on the same servers and agents.
Probe pods run ``python:3-alpine``, which docker-library builds with LTO but without PGO
(``Dockerfile-linux.template`` skips ``--enable-optimizations`` on Alpine) -- somewhere in between. The
interpreter used, its version and its start-up time are printed, so runs can be compared.

Targets (issue 13): mode A median <= 1.7 s at N = 20 and <= 2.5 s at N = 50; mode B / mode A >= 20 at
each of those sizes. Exit status 1 when a target is missed or an outcome is wrong, 2 when the lab cannot
run here.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from flowcheck.probe.plan import (  # noqa: E402
    HttpProbe,
    Outcome,
    ProbeSpec,
    TcpProbe,
    UdpProbe,
    agent_budget_s,
    build_plan,
    parse_results,
)
from tests.netlab import LabExecutor, NetLab, netlab_unavailable_reason  # noqa: E402

TIMEOUT_S = 1.0
DEFAULT_SIZES = (20, 50)
MODE_B_WORKERS = 15  # cyclonus' defaultWorkersCount
DEFAULT_MODE_A_RUNS = 5
HTTP_PORT, TCP_PORT, UDP_PORT = 8080, 9000, 81
PORTS = ((HTTP_PORT, "tcp"), (TCP_PORT, "tcp"), (UDP_PORT, "udp"))
TARGET_MODE_A_S = {20: 1.7, 50: 2.5}
TARGET_RATIO = 20.0

Triple = tuple[int, int, int]  # (source index, destination index, port index)


def is_dropped(src: int, dst: int, port_index: int) -> bool:
    """About a third of the triples, spread over every source, destination and port."""
    return (src + 2 * dst + port_index) % 3 == 0


def pod_name(index: int) -> str:
    return f"bench/pod{index}"


def spec(lab: NetLab, triple: Triple) -> ProbeSpec:
    src, dst, port_index = triple
    probe_id = f"{src}-{dst}-{port_index}"
    address = lab.address_of(pod_name(dst))
    port = PORTS[port_index][0]
    if port == HTTP_PORT:
        return HttpProbe(probe_id, address, port)
    if port == TCP_PORT:
        return TcpProbe(probe_id, address, port)
    return UdpProbe(probe_id, address, port)


def triples(n: int) -> list[Triple]:
    return [(s, d, p) for s in range(n) for d in range(n) if s != d for p in range(len(PORTS))]


def set_up(lab: NetLab, n: int) -> None:
    for index in range(n):
        lab.add_pod(pod_name(index), http=[HTTP_PORT], tcp=[TCP_PORT], udp=[UDP_PORT], wait=False)
    lab.pin_neighbours()  # N x (N - 1) ARP entries would overflow the host-wide neighbour table (see NetLab)
    lab.wait_ready()
    for dst in range(n):
        elements = [f"{lab.address_of(pod_name(src))} . {proto} . {port}"
                    for src in range(n) if src != dst
                    for port_index, (port, proto) in enumerate(PORTS) if is_dropped(src, dst, port_index)]
        lab.nft(pod_name(dst), "\n".join([
            "add set inet flowcheck_lab drops { type ipv4_addr . inet_proto . inet_service ; }",
            f"add element inet flowcheck_lab drops {{ {', '.join(elements)} }}",
            "add rule inet flowcheck_lab ingress ip saddr . meta l4proto . th dport @drops drop",
        ]))


def check(triple: Triple, outcome: Outcome, mode: str, wrong: list[str]) -> None:
    expected = Outcome.TIMEOUT if is_dropped(*triple) else Outcome.OK
    if outcome is not expected:
        wrong.append(f"mode {mode}: {triple} expected {expected.value}, got {outcome.value}")


@dataclass(frozen=True, slots=True)
class Sample:
    """One timed mode A round: wall time, the load average before it, and CPU seconds by who spent them."""

    wall_s: float
    load_before: float
    servers_cpu_s: float
    agents_cpu_s: float
    harness_cpu_s: float
    wrong_outcomes: int


def _cpu_of(pids: Sequence[int]) -> float:
    """CPU seconds the processes have run (``/proc/PID/schedstat``: nanoseconds on a CPU)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):  # a server that is gone ran no more
            total += int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])
    return total / 1e9


def _rusage_s(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def mode_a(lab: NetLab, executor: LabExecutor, n: int, wrong: list[str]) -> Sample:
    plans = {src: build_plan([spec(lab, t) for t in triples(n) if t[0] == src], timeout_s=TIMEOUT_S)
             for src in range(n)}
    servers = [process.popen.pid for process in lab.processes]

    def run(src: int) -> None:
        plan = plans[src]
        done = executor.run_agent(pod_name(src), plan, timeout_s=agent_budget_s(plan))
        for probe_id, result in parse_results(plan, done).items():
            s, d, p = (int(x) for x in probe_id.split("-"))
            check((s, d, p), result.outcome, "A", wrong)

    load = os.getloadavg()[0]
    wrong_before = len(wrong)
    servers_before = _cpu_of(servers)
    agents_before = _rusage_s(resource.RUSAGE_CHILDREN)
    harness_before = _rusage_s(resource.RUSAGE_SELF)
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=n) as pool:
        list(pool.map(run, range(n)))
    wall = time.monotonic() - started
    return Sample(wall, load, _cpu_of(servers) - servers_before, _rusage_s(resource.RUSAGE_CHILDREN) - agents_before,
                  _rusage_s(resource.RUSAGE_SELF) - harness_before, len(wrong) - wrong_before)


def mode_b(lab: NetLab, executor: LabExecutor, n: int, wrong: list[str]) -> float:
    def run(triple: Triple) -> None:
        plan = build_plan([spec(lab, triple)], timeout_s=TIMEOUT_S)
        done = executor.run_agent(pod_name(triple[0]), plan, timeout_s=agent_budget_s(plan))
        check(triple, next(iter(parse_results(plan, done).values())).outcome, "B", wrong)

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=MODE_B_WORKERS) as pool:
        list(pool.map(run, triples(n)))
    return time.monotonic() - started


def startup_ms(python: str, runs: int = 20) -> float:
    """Median wall time of ``python -S -c pass``: what every agent start pays before the agent's own code."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([python, "-S", "-c", "pass"], check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)),
                        help="comma-separated pod counts (default: %(default)s)")
    parser.add_argument("--runs", type=int, default=DEFAULT_MODE_A_RUNS,
                        help="timed mode A rounds per size (default: %(default)s)")
    parser.add_argument("--python", default=sys.executable,
                        help="interpreter for the lab's probe servers and agents (default: %(default)s)")
    args = parser.parse_args(argv)
    args.sizes = sorted({int(size) for size in args.sizes.split(",") if size.strip()})
    if not args.sizes or min(args.sizes) < 2 or args.runs < 1:
        parser.error("sizes must be >= 2 and runs >= 1")
    if shutil.which(args.python) is None:
        parser.error(f"no interpreter at {args.python}")
    return args


def targets_line(sizes: Sequence[int], missed: Sequence[str]) -> str:
    """The closing line: the targets missed, met, or -- at sizes without one (``--sizes 5``) -- that none applies."""
    if missed:
        return f"targets: MISSED: {', '.join(missed)}"
    targeted = [n for n in sizes if n in TARGET_MODE_A_S]
    if not targeted:
        return (f"targets: none applies at N = {', '.join(map(str, sizes))} (targets are at N = "
                f"{', '.join(map(str, sorted(TARGET_MODE_A_S)))})")
    return f"targets: all met (at N = {', '.join(map(str, targeted))})"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    reason = netlab_unavailable_reason()
    if reason is not None:
        print(f"probe_matrix: cannot run: {reason}", file=sys.stderr)
        return 2
    version = subprocess.run([args.python, "-c", "import sys; print(sys.version.split()[0])"], capture_output=True,
                             text=True, check=True).stdout.strip()
    print(f"probe_matrix: probe timeout {TIMEOUT_S} s; each pod serves HTTP {HTTP_PORT}, TCP {TCP_PORT}, "
          f"UDP {UDP_PORT}; ~1/3 of (source, destination, port) triples dropped by nft; {os.cpu_count()} CPUs; "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"interpreter for servers and agents: {args.python} (Python {version}), start-up "
          f"(`python -S -c pass`, median of 20) {startup_ms(args.python):.1f} ms"
          + ("" if Path(args.python).resolve() == Path(sys.executable).resolve() else
             f"; for comparison this script's {sys.executable}: {startup_ms(sys.executable):.1f} ms"))
    wrong: list[str] = []
    missed: list[str] = []
    with NetLab(python=args.python) as lab:
        set_up(lab, max(args.sizes))
        executor = LabExecutor(lab)
        cold_wrong: list[str] = []
        cold = mode_a(lab, executor, max(args.sizes), cold_wrong)  # every pod's first agent run compiles it
        print(f"cold round (fresh pods: each agent compiles once), N = {max(args.sizes)}: {cold.wall_s:.2f} s, "
              f"load before {cold.load_before:.2f}, "
              f"{f'{len(cold_wrong)} outcomes WRONG' if cold_wrong else 'outcomes as expected'} (not a target)")
        for n in args.sizes:
            all_triples = triples(n)
            dropped = sum(1 for t in all_triples if is_dropped(*t))
            samples = [mode_a(lab, executor, n, wrong) for _ in range(args.runs)]
            a = statistics.median(sample.wall_s for sample in samples)
            load_b = os.getloadavg()[0]
            b = mode_b(lab, executor, n, wrong)
            floor_b = dropped * TIMEOUT_S / MODE_B_WORKERS
            print(f"\nN = {n}: {len(all_triples)} probes ({n} x {n - 1} x {len(PORTS)}), {dropped} dropped")
            print(f"  mode A (one agent run per source, {n} at once), {args.runs} runs:")
            for index, sample in enumerate(samples, start=1):
                print(f"    run {index}: {sample.wall_s:.2f} s   load before {sample.load_before:5.2f}   CPU s: "
                      f"servers {sample.servers_cpu_s:.2f}, agents + ip {sample.agents_cpu_s:.2f}, "
                      f"harness {sample.harness_cpu_s:.2f}; {sample.wrong_outcomes} outcomes wrong")
            print(f"  mode A median: {a:.2f} s   all: {' '.join(f'{sample.wall_s:.2f}' for sample in samples)}")
            print(f"  mode B (one process per probe, {MODE_B_WORKERS} workers): {b:.2f} s   load before {load_b:.2f}"
                  f"   floor (dropped x timeout / workers) {floor_b:.2f} s")
            print(f"  ratio B / A: {b / a:.1f}x   (B's floor / A: {floor_b / a:.1f}x)")
            if n in TARGET_MODE_A_S:
                met = a <= TARGET_MODE_A_S[n]
                print(f"  target: mode A <= {TARGET_MODE_A_S[n]} s: {'met' if met else 'MISSED'} ({a:.2f} s)")
                if not met:
                    missed.append(f"mode A at N = {n}")
                met = b / a >= TARGET_RATIO
                print(f"  target: ratio >= {TARGET_RATIO:.0f}x: {'met' if met else 'MISSED'} ({b / a:.1f}x)")
                if not met:
                    missed.append(f"ratio at N = {n}")
    print(f"\noutcomes: {'all as expected' if not wrong else f'{len(wrong)} WRONG'}")
    for line in wrong[:20]:
        print(f"  {line}")
    print(targets_line(args.sizes, missed))
    return 0 if not missed and not wrong else 1


if __name__ == "__main__":
    sys.exit(main())
