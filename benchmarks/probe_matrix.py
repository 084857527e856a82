"""Benchmark: one agent run per source pod (flowcheck) vs one process per probe (cyclonus, k8s e2e).

Needs root, iproute2 and nftables (the netns lab from ``tests/netlab``). Run from the repository root::

    python benchmarks/probe_matrix.py

N lab pods each serve 3 ports (HTTP 8080, TCP 9000, UDP 81 -- the real probe server); about a third of
the (source, destination, port) triples are dropped by nftables on the destination; probe timeout 1 s.

- Mode A (flowcheck): one agent run per source pod with all its probes, all sources concurrently.
- Mode B (how cyclonus and the Kubernetes e2e netpol suite probe): one process per probe,
  ``ip netns exec SRC python3 agent.py`` with a one-probe plan, 15 workers (cyclonus' default).

Both modes start the agent the same way, through ``LabExecutor`` (``python -S agent.py``, see there).

Both modes must observe exactly the expected outcome for every triple (ok where allowed, timeout where
dropped); the wall times are printed for N = 10 and N = 20, with their ratio. Mode A takes about a
second, so it is run ``MODE_A_RUNS`` times and its median counts (every run is printed): on a shared
two-core machine a single sample mostly measures the neighbours. Mode B (about a minute) runs once.
Targets (at N = 20): mode A wall <= 1.2 x timeout + 0.5 s, and mode B / mode A >= 20. Exit status 1 when
a target is missed or an outcome is wrong, 2 when the lab cannot run here.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
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
SIZES = (10, 20)
MODE_B_WORKERS = 15  # cyclonus' defaultWorkersCount
MODE_A_RUNS = 5
HTTP_PORT, TCP_PORT, UDP_PORT = 8080, 9000, 81
PORTS = ((HTTP_PORT, "tcp"), (TCP_PORT, "tcp"), (UDP_PORT, "udp"))
TARGET_MODE_A_S = 1.2 * TIMEOUT_S + 0.5
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


def mode_a(lab: NetLab, executor: LabExecutor, n: int, wrong: list[str]) -> float:
    plans = {src: build_plan([spec(lab, t) for t in triples(n) if t[0] == src], timeout_s=TIMEOUT_S)
             for src in range(n)}

    def run(src: int) -> None:
        plan = plans[src]
        done = executor.run_agent(pod_name(src), plan, timeout_s=agent_budget_s(plan))
        for probe_id, result in parse_results(plan, done).items():
            s, d, p = (int(x) for x in probe_id.split("-"))
            check((s, d, p), result.outcome, "A", wrong)

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=n) as pool:
        list(pool.map(run, range(n)))
    return time.monotonic() - started


def mode_b(lab: NetLab, executor: LabExecutor, n: int, wrong: list[str]) -> float:
    def run(triple: Triple) -> None:
        plan = build_plan([spec(lab, triple)], timeout_s=TIMEOUT_S)
        done = executor.run_agent(pod_name(triple[0]), plan, timeout_s=agent_budget_s(plan))
        check(triple, next(iter(parse_results(plan, done).values())).outcome, "B", wrong)

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=MODE_B_WORKERS) as pool:
        list(pool.map(run, triples(n)))
    return time.monotonic() - started


def main() -> int:
    reason = netlab_unavailable_reason()
    if reason is not None:
        print(f"probe_matrix: cannot run: {reason}", file=sys.stderr)
        return 2
    print(f"probe_matrix: probe timeout {TIMEOUT_S} s; each pod serves HTTP {HTTP_PORT}, TCP {TCP_PORT}, "
          f"UDP {UDP_PORT}; ~1/3 of (source, destination, port) triples dropped by nft; agent run as "
          f"`ip netns exec POD {Path(sys.executable).name} -S agent.py` (Python {sys.version.split()[0]}); "
          f"{os.cpu_count()} CPUs")
    print(f"{'N':>3} {'probes':>7} {'dropped':>8} {'mode A (1 run/source), median':>30} "
          f"{'mode B (1 process/probe, 15 workers)':>37} {'ratio':>7}   mode A runs")
    measured: dict[int, tuple[float, float]] = {}
    wrong: list[str] = []
    with NetLab() as lab:
        set_up(lab, max(SIZES))
        executor = LabExecutor(lab)
        executor.run_agent(pod_name(0), build_plan([], timeout_s=TIMEOUT_S), timeout_s=30)  # warm caches
        for n in SIZES:
            runs = [mode_a(lab, executor, n, wrong) for _ in range(MODE_A_RUNS)]
            a = statistics.median(runs)
            b = mode_b(lab, executor, n, wrong)
            measured[n] = (a, b)
            all_triples = triples(n)
            dropped = sum(1 for t in all_triples if is_dropped(*t))
            print(f"{n:>3} {len(all_triples):>7} {dropped:>8} {a:>28.2f} s {b:>35.2f} s {b / a:>6.1f}x   "
                  + " ".join(f"{run:.2f}" for run in runs))
    a20, b20 = measured[max(SIZES)]
    ok_a = a20 <= TARGET_MODE_A_S
    ok_ratio = b20 / a20 >= TARGET_RATIO
    print(f"target: mode A at N = {max(SIZES)} <= {TARGET_MODE_A_S:.2f} s: {'met' if ok_a else 'MISSED'} "
          f"({a20:.2f} s, median of {MODE_A_RUNS})")
    print(f"target: ratio at N = {max(SIZES)} >= {TARGET_RATIO:.0f}: {'met' if ok_ratio else 'MISSED'} "
          f"({b20 / a20:.1f}x)")
    print(f"outcomes: {'all as expected' if not wrong else f'{len(wrong)} WRONG'}")
    for line in wrong[:20]:
        print(f"  {line}")
    return 0 if ok_a and ok_ratio and not wrong else 1


if __name__ == "__main__":
    sys.exit(main())
