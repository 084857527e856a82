"""The probe layer on real packets across network namespaces, with real nftables rules (needs root,
iproute2 and nftables; skips with the reason otherwise).

Every test goes through the harness's own pipeline -- specs → ``build_plan`` → ``LabExecutor.run_agent``
(the real agent under ``ip netns exec``) → ``parse_results`` → ``classify`` -- so what is proven here is
what the harness will see. Rules sit on the destination's input hook, as an ingress policy would.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

import pytest

from flowcheck.errors import ClusterError
from flowcheck.probe.classify import classify
from flowcheck.probe.plan import (
    DnsProbe,
    HttpProbe,
    Outcome,
    ProbeResult,
    ProbeSpec,
    TcpProbe,
    UdpProbe,
    agent_budget_s,
    build_plan,
    parse_results,
)
from flowcheck.verdict import Verdict
from tests.netlab import LabExecutor, NetLab, netlab_unavailable_reason, sweep_leftovers
from tests.netlab.lab import NAME_PREFIX
from tests.probe.conftest import API, API_HTTP, API_TCP, API_UDP, CLIENT, DNS, PROXY

pytestmark = pytest.mark.netlab

TIMEOUT_S = 1.0
DROP_SLACK_S = 0.3  # the bound: a drop is reported within timeout + 0.3 s
STARTUP_ALLOWANCE_S = 1.0  # interpreter start under `ip netns exec` on a loaded 2-core machine


def probe(lab: NetLab, specs: Sequence[ProbeSpec], *, source: str = CLIENT, timeout_s: float = TIMEOUT_S
          ) -> tuple[dict[str, ProbeResult], float]:
    executor = LabExecutor(lab)
    plan = build_plan(specs, timeout_s=timeout_s)
    started = time.monotonic()
    done = executor.run_agent(source, plan, timeout_s=agent_budget_s(plan))
    wall = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return parse_results(plan, done), wall


def verdicts(results: dict[str, ProbeResult]) -> dict[str, Verdict]:
    return {pid: classify(result).verdict for pid, result in results.items()}


def api_specs(lab: NetLab) -> list[ProbeSpec]:
    api = lab.address_of(API)
    return [TcpProbe("tcp", api, API_TCP), HttpProbe("http", api, API_HTTP), UdpProbe("udp", api, API_UDP)]


def test_tcp_http_and_udp_are_allowed_across_namespaces(clean_lab: NetLab) -> None:
    results, _ = probe(clean_lab, api_specs(clean_lab))
    assert verdicts(results) == {"tcp": Verdict.ALLOWED, "http": Verdict.ALLOWED, "udp": Verdict.ALLOWED}
    assert results["http"].server == API and results["udp"].server == API
    assert classify(results["http"], expected_server=API).verdict is Verdict.ALLOWED


def test_nft_drop_is_a_timeout_within_timeout_plus_0_3_s(clean_lab: NetLab) -> None:
    for port, protocol in ((API_TCP, "tcp"), (API_HTTP, "tcp"), (API_UDP, "udp")):
        clean_lab.block(API, src=CLIENT, port=port, protocol=protocol, action="drop")
    results, wall = probe(clean_lab, api_specs(clean_lab))
    for result in results.values():
        assert result.outcome is Outcome.TIMEOUT, result
        assert result.elapsed_s is not None
        assert TIMEOUT_S - 0.01 <= result.elapsed_s <= TIMEOUT_S + DROP_SLACK_S, result
        assert classify(result).verdict is Verdict.DROPPED
    assert wall <= TIMEOUT_S + DROP_SLACK_S + STARTUP_ALLOWANCE_S
    assert "packets 0 " not in clean_lab.rules(API)  # every rule did match the probe's packets


def test_drop_of_one_source_does_not_touch_another(clean_lab: NetLab) -> None:
    clean_lab.block(API, src=CLIENT, port=API_HTTP, action="drop")
    results, _ = probe(clean_lab, api_specs(clean_lab)[1:2], source=PROXY)
    assert verdicts(results) == {"http": Verdict.ALLOWED}


def test_reject_with_tcp_reset_is_refused(clean_lab: NetLab) -> None:
    clean_lab.block(API, src=CLIENT, port=API_TCP, action="tcp-reset")
    clean_lab.block(API, src=CLIENT, port=API_HTTP, action="tcp-reset")
    results, _ = probe(clean_lab, api_specs(clean_lab)[:2])
    for result in results.values():
        assert result.outcome is Outcome.REFUSED and result.errno == "ECONNREFUSED"
        assert result.elapsed_s is not None and result.elapsed_s < 0.5  # an answer, not a timeout
        assert classify(result).verdict is Verdict.REFUSED


def test_icmp_port_unreachable_on_udp_is_refused(clean_lab: NetLab) -> None:
    # the API pod does serve UDP 81 and DNS serves 53: the rule's ICMP answer, not a closed port, refuses
    clean_lab.block(API, src=CLIENT, port=API_UDP, protocol="udp", action="icmp-port-unreachable")
    clean_lab.block(DNS, src=CLIENT, port=53, protocol="udp", action="icmp-port-unreachable")
    results, _ = probe(clean_lab, [UdpProbe("udp", clean_lab.address_of(API), API_UDP),
                                   DnsProbe("dns", clean_lab.address_of(DNS), "www.lab")])
    for result in results.values():
        assert result.outcome is Outcome.REFUSED, result
        assert classify(result).verdict is Verdict.REFUSED


def test_icmp_host_unreachable_and_no_route_are_unreachable(clean_lab: NetLab) -> None:
    clean_lab.block(API, src=CLIENT, port=API_TCP, action="icmp-host-unreachable")
    # TEST-NET-3: the lab pods have no route beyond the lab subnet, so nothing is even sent
    results, _ = probe(clean_lab, [TcpProbe("icmp", clean_lab.address_of(API), API_TCP),
                                   TcpProbe("no-route", "203.0.113.7", 80)])
    assert results["icmp"].outcome is Outcome.UNREACHABLE and results["icmp"].errno == "EHOSTUNREACH"
    assert results["no-route"].outcome is Outcome.UNREACHABLE and results["no-route"].errno == "ENETUNREACH"
    assert set(verdicts(results).values()) == {Verdict.ERROR}
    assert classify(results["icmp"], unreachable_is_drop=True).verdict is Verdict.DROPPED


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_dns_rcodes_are_reported_exactly(clean_lab: NetLab, transport: str) -> None:
    server = clean_lab.address_of(DNS)
    names = {"noerror": "api.lab", "nxdomain": "nxdomain.lab", "refused": "refused.lab", "servfail": "servfail.lab"}
    results, _ = probe(clean_lab, [DnsProbe(pid, server, name, transport=transport) for pid, name in names.items()])
    assert {pid: r.rcode for pid, r in results.items()} == {
        "noerror": "NOERROR", "nxdomain": "NXDOMAIN", "refused": "REFUSED", "servfail": "SERVFAIL"}
    assert {r.transport for r in results.values()} == {transport}
    assert verdicts(results) == {"noerror": Verdict.ALLOWED, "nxdomain": Verdict.ALLOWED,
                                 "refused": Verdict.L7_DENIED, "servfail": Verdict.ERROR}
    assert results["noerror"].answers[0].data == "192.0.2.10"


def test_dropped_dns_is_dropped(clean_lab: NetLab) -> None:
    clean_lab.block(DNS, src=CLIENT, port=53, protocol="udp", action="drop")
    results, _ = probe(clean_lab, [DnsProbe("dns", clean_lab.address_of(DNS), "api.lab")])
    assert verdicts(results) == {"dns": Verdict.DROPPED}


def test_l7_proxy_403_access_denied_is_l7_denied(clean_lab: NetLab) -> None:
    proxy = clean_lab.address_of(PROXY)
    results, _ = probe(clean_lab, [HttpProbe("get", proxy, 8080, method="GET", path="/orders"),
                                   HttpProbe("post", proxy, 8080, method="POST", path="/orders", body="{}")])
    assert results["post"].status == 403 and results["post"].body == "Access denied\r\n"
    assert results["post"].headers["server"] == "envoy"
    assert classify(results["post"]).verdict is Verdict.L7_DENIED
    # the allowed method went through the proxy to the real server
    assert classify(results["get"], expected_server=API).verdict is Verdict.ALLOWED


def test_http_method_and_headers_arrive_at_the_server_as_sent(clean_lab: NetLab) -> None:
    headers = {"X-Token": "42", "X-Request-Id": "flowcheck-lab-1", "Authorization": "Bearer abc.def"}
    results, _ = probe(clean_lab, [HttpProbe("1", clean_lab.address_of(API), API_HTTP, method="PUT",
                                             path="/v1/items/9?force=true", headers=headers, body="payload")])
    echo = results["1"].echo
    assert echo is not None and echo.method == "PUT" and echo.path == "/v1/items/9?force=true"
    assert {name: echo.headers[name] for name in headers} == headers
    server = clean_lab.pod(API).server
    assert server is not None
    logged = [json.loads(line) for line in server.log().splitlines() if "flowcheck-lab-1" in line]
    assert len(logged) == 1
    assert logged[0]["method"] == "PUT" and logged[0]["client"].startswith(clean_lab.address_of(CLIENT) + ":")
    assert {name: logged[0]["headers"][name] for name in headers} == headers
    assert logged[0]["body_bytes"] == len("payload")


def logged_clients(lab: NetLab, pod: str) -> list[dict[str, Any]]:
    """The JSON lines the processes of ``pod`` (probe server, resolver) logged, one per request."""
    lines = [line for process in lab.processes if process.pod == pod for line in process.log().splitlines()]
    return [entry for entry in map(json.loads, filter(None, lines)) if "client" in entry]


def test_reported_source_ports_are_what_the_destinations_saw(clean_lab: NetLab) -> None:
    """Every kind, two probes per destination and kind in one batch, answered or dropped: the (address, port)
    each probe reports is the one its packets carried -- as the probe server and the resolver logged them,
    and, for dropped SYNs nothing answers, as an nft set on the destination recorded them."""
    api, dns, client = clean_lab.address_of(API), clean_lab.address_of(DNS), clean_lab.address_of(CLIENT)
    specs: list[ProbeSpec] = []
    for n in (1, 2):
        specs += [TcpProbe(f"tcp{n}", api, API_TCP), HttpProbe(f"http{n}", api, API_HTTP),
                  UdpProbe(f"udp{n}", api, API_UDP), TcpProbe(f"dropped{n}", api, 9100),
                  DnsProbe(f"dns-udp{n}", dns, "api.lab"), DnsProbe(f"dns-tcp{n}", dns, "api.lab", transport="tcp")]
    clean_lab.nft(API, "\n".join([
        "add set inet flowcheck_lab sources { type ipv4_addr . inet_service ; flags dynamic ; }",
        "add rule inet flowcheck_lab ingress tcp dport 9100 update @sources { ip saddr . tcp sport }",
        "add rule inet flowcheck_lab ingress tcp dport 9100 drop"]))
    try:
        results, _ = probe(clean_lab, specs)
        listed = clean_lab.exec(API, ["nft", "-j", "list", "set", "inet", "flowcheck_lab", "sources"]).stdout
    finally:
        clean_lab.clear_rules(API)
        clean_lab.nft(API, "delete set inet flowcheck_lab sources")
    assert all(r.outcome is (Outcome.TIMEOUT if pid.startswith("dropped") else Outcome.OK)
               for pid, r in results.items()), results
    assert {r.saddr for r in results.values()} == {client}
    reported = {pid: f"{r.saddr}:{r.sport}" for pid, r in results.items()}
    over_udp = {pid for pid in reported if pid.startswith(("udp", "dns-udp"))}
    for group in (over_udp, set(reported) - over_udp):  # TCP and UDP ports are separate numberings
        assert len({reported[pid] for pid in group}) == len(group)
    seen_by_server = {(entry["proto"], entry["client"]) for entry in logged_clients(clean_lab, API)}
    seen_by_resolver = {(entry["transport"], entry["client"]) for entry in logged_clients(clean_lab, DNS)}
    [nft_set] = [item["set"] for item in json.loads(listed)["nftables"] if "set" in item]
    seen_by_nft = {f"{addr}:{port}" for addr, port in (elem["concat"] for elem in nft_set["elem"])}
    for n in "12":
        assert ("tcp", reported["tcp" + n]) in seen_by_server
        assert ("http", reported["http" + n]) in seen_by_server
        assert ("udp", reported["udp" + n]) in seen_by_server
        assert ("udp", reported["dns-udp" + n]) in seen_by_resolver
        assert ("tcp", reported["dns-tcp" + n]) in seen_by_resolver
    assert seen_by_nft == {reported["dropped1"], reported["dropped2"]}


def test_200_probes_with_50_dropped_take_about_one_timeout(clean_lab: NetLab) -> None:
    api = clean_lab.address_of(API)
    specs: list[ProbeSpec] = []
    for i in range(200):
        specs.append(HttpProbe(f"http{i}", api, API_HTTP) if i % 4 else TcpProbe(f"drop{i}", api, 9100 + i))
    clean_lab.block(API, src=CLIENT, port=None, protocol="tcp", action="drop")  # everything ...
    clean_lab.nft(API, f"insert rule inet flowcheck_lab ingress tcp dport {API_HTTP} accept")  # ... but HTTP
    results, wall = probe(clean_lab, specs)
    by_verdict: dict[Verdict, int] = {}
    for verdict in verdicts(results).values():
        by_verdict[verdict] = by_verdict.get(verdict, 0) + 1
    assert by_verdict == {Verdict.ALLOWED: 150, Verdict.DROPPED: 50}
    assert wall < 3 * TIMEOUT_S, f"200 probes with 50 drops took {wall:.2f} s"


def test_overdue_agent_is_killed_and_its_probes_become_errors(clean_lab: NetLab) -> None:
    clean_lab.block(API, src=CLIENT, port=API_TCP, action="drop")
    executor = LabExecutor(clean_lab)
    specs = [TcpProbe("slow", clean_lab.address_of(API), API_TCP, timeout_s=20)]
    plan = build_plan(specs, timeout_s=1.0)
    done = executor.run_agent(CLIENT, plan, timeout_s=0.5)
    assert done.returncode < 0
    result = parse_results(plan, done)["slow"]
    assert result.outcome is Outcome.ERROR and "killed (SIGKILL)" in result.detail
    assert classify(result).verdict is Verdict.ERROR


def test_executor_maps_pods_and_refuses_unknown_ones(clean_lab: NetLab) -> None:
    executor = LabExecutor(clean_lab)
    assert executor.address_of(API) == clean_lab.pod(API).address
    with pytest.raises(ClusterError, match="no lab pod"):
        executor.address_of("default/nope")
    with pytest.raises(ClusterError, match="no lab pod"):
        executor.run_agent("default/nope", build_plan([], timeout_s=1.0), timeout_s=5)


# -- the lab's own hygiene ----------------------------------------------------------------------------


@pytest.fixture
def lab_possible() -> None:
    reason = netlab_unavailable_reason()
    if reason is not None:
        pytest.skip(reason)


def netns_names() -> list[str]:
    return [line.split()[0] for line in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                                                       check=True).stdout.splitlines() if line.strip()]


@pytest.mark.usefixtures("lab_possible")
@pytest.mark.parametrize("interruption", [RuntimeError, KeyboardInterrupt])
def test_lab_tears_everything_down_on_failure_and_interrupt(interruption: type[BaseException]) -> None:
    labs: list[NetLab] = []

    def set_up_then_fail() -> None:
        with NetLab() as lab:
            labs.append(lab)
            lab.add_pod("default/a", http=[8080])
            lab.add_pod("default/b")
            assert len(lab.leftovers()) == 3
            raise interruption()

    with pytest.raises(interruption):
        set_up_then_fail()
    server = labs[0].pod("default/a").server
    assert server is not None and server.popen.returncode is not None
    assert labs[0].leftovers() == []


@pytest.mark.usefixtures("lab_possible")
@pytest.mark.parametrize("interrupted_command", [["ip", "netns", "del"], ["ip", "netns", "pids"]])
def test_a_second_ctrl_c_during_teardown_leaves_nothing_behind(monkeypatch: pytest.MonkeyPatch,
                                                              interrupted_command: list[str]) -> None:
    """Issue 17.5: the first Ctrl-C starts the teardown, a second one lands in the middle of it."""
    from tests.netlab import lab as lab_module

    real_run = lab_module._run
    interruptions = {"left": 2}

    def ctrl_c_during_teardown(argv: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        if list(argv[:3]) == interrupted_command and interruptions["left"]:
            interruptions["left"] -= 1
            raise KeyboardInterrupt
        return real_run(argv, **kwargs)

    lab = NetLab()

    def first_ctrl_c() -> None:
        with lab:
            lab.add_pod("default/a", http=[8080])
            lab.add_pod("default/b")
            monkeypatch.setattr(lab_module, "_run", ctrl_c_during_teardown)
            raise KeyboardInterrupt  # the first Ctrl-C

    with pytest.raises(KeyboardInterrupt):
        first_ctrl_c()
    monkeypatch.setattr(lab_module, "_run", real_run)
    assert interruptions["left"] == 0  # both landed in the teardown
    assert lab.leftovers() == []
    server = lab.pod("default/a").server
    assert server is not None and server.popen.returncode is not None


def permanent_neighbours(lab: NetLab, pod: str) -> dict[str, str]:
    shown = subprocess.run(["ip", "-n", lab.pod(pod).netns, "neigh", "show", "nud", "permanent"],
                           capture_output=True, text=True, check=True).stdout
    return {line.split()[0]: line.split()[line.split().index("lladdr") + 1] for line in shown.splitlines() if line}


@pytest.mark.usefixtures("lab_possible")
def test_pinned_neighbours_cover_every_pair_and_pods_added_later() -> None:
    """Large labs pin ARP entries (the host-wide neighbour table would overflow): every pod gets a permanent
    entry for every other pod, with its real MAC, also for pods added after pinning -- and traffic flows."""
    with NetLab() as lab:
        lab.add_pod("default/a", tcp=[9000])
        lab.add_pod("default/b")
        lab.pin_neighbours()
        lab.add_pod("default/c", tcp=[9000])
        pods = ["default/a", "default/b", "default/c"]
        for pod in pods:
            assert permanent_neighbours(lab, pod) == {lab.address_of(other): lab.pod(other).mac
                                                      for other in pods if other != pod}, pod
            link = subprocess.run(["ip", "-n", lab.pod(pod).netns, "link", "show", "eth0"], capture_output=True,
                                  text=True, check=True).stdout
            assert f"link/ether {lab.pod(pod).mac} " in link
        specs: list[ProbeSpec] = [TcpProbe("a", lab.address_of("default/a"), 9000),
                                  TcpProbe("c", lab.address_of("default/c"), 9000)]
        results, _ = probe(lab, specs, source="default/b")
        assert {r.outcome for r in results.values()} == {Outcome.OK}


@pytest.mark.usefixtures("lab_possible")
def test_sweep_removes_namespaces_of_dead_runs_only() -> None:
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True)
    dead = f"{NAME_PREFIX}{finished.stdout.strip()}xdead-p0"
    with NetLab() as alive:
        subprocess.run(["ip", "netns", "add", dead], check=True)
        try:
            assert sweep_leftovers() == [dead]
            assert dead not in netns_names()
            assert len(alive.leftovers()) == 1  # the live lab's hub survived the sweep
        finally:
            subprocess.run(["ip", "netns", "del", dead], capture_output=True, check=False)
