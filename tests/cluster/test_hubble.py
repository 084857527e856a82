"""Hubble flows: parsing recorded `hubble observe -o json` lines, matching a probe, one-line summaries."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from flowcheck.cluster.hubble import (
    FlowRecord,
    ProbeFacts,
    collect_flows,
    format_time,
    match,
    observe_argv,
    parse_flow_line,
    parse_flow_lines,
    parse_time,
)
from flowcheck.errors import ClusterError
from tests.cluster.fakes import ExecReply, FakeCluster, data

CLIENT, MY_API, PROMETHEUS = "10.244.1.17", "10.244.2.31", "10.244.1.22"


def at(text: str) -> datetime:
    return parse_time(text)


@pytest.fixture(scope="module")
def reference() -> list[FlowRecord]:
    return parse_flow_lines(data("hubble-flows-reference.jsonl"))


@pytest.fixture(scope="module")
def probes() -> list[FlowRecord]:
    return parse_flow_lines(data("hubble-flows-probes.jsonl"))


def test_every_real_reference_line_parses(reference: list[FlowRecord]) -> None:
    assert len(reference) == 12
    assert all(f.time.tzinfo is not None for f in reference)


def test_real_policy_denied_drop_is_parsed(reference: list[FlowRecord]) -> None:
    drop = reference[4]  # export.rst: xwing -> deathstar SYN, DROPPED POLICY_DENIED
    assert (drop.verdict, drop.drop_reason_desc) == ("DROPPED", "POLICY_DENIED")
    assert (drop.src_ip, drop.dst_ip, drop.protocol, drop.dst_port) == ("10.244.1.60", "10.244.1.5", "TCP", 80)
    assert drop.tcp_flags == ("SYN",)
    assert drop.source.pod_name == "xwing" and drop.destination.pod_name == "deathstar-7848d6c4d5-th9v2"
    assert drop.node_name == "kind-kind/kind-worker"
    assert drop.flow_type == ""  # field-masked sample: omitted fields stay empty, not invented
    assert drop.summary() == ("DROPPED POLICY_DENIED default/xwing:44916 -> "
                              "default/deathstar-7848d6c4d5-th9v2:80 TCP SYN")


def test_protojson_details_ips_reply_flags_and_string_int64(reference: list[FlowRecord]) -> None:
    synack = reference[1]
    assert synack.tcp_flags == ("SYN", "ACK") and synack.is_reply is True  # from the deprecated `reply`
    assert reference[2].policy_match_type == 3 and reference[2].event_type == 5
    assert reference[5].event_type == 1 and reference[5].event_sub_type == 133
    nxdomain = reference[7]
    assert nxdomain.dns is not None and nxdomain.dns.rcode_name == "NXDOMAIN" and nxdomain.l7_type == "RESPONSE"
    answer = reference[8]
    assert answer.dns is not None and answer.dns.ips == ("10.160.0.203",) and answer.dns.rcode is None
    slow = reference[10]
    assert slow.http is not None and slow.http.code == 503 and slow.latency_ns == 999958359
    world = reference[9].destination
    assert world.labels == ("reserved:world",) and world.display("10.128.0.4") == "10.128.0.4 (world)"


def test_non_flow_lines_and_noise_are_skipped() -> None:
    text = "\n".join([
        '{"lost_events":{"source":"HUBBLE_RING_BUFFER","num_events_lost":"3"},"node_name":"n","time":"2026-08-27T14:30:13Z"}',
        "level=warning msg=\"something\"",
        "",
        '{"flow":{"time":"not a time"}}',
        "[1, 2]",
        '{"flow":{"time":"2026-08-27T14:30:13.5Z","verdict":"FORWARDED","new_field":{"x":1},'
        '"l4":{"UDP":{"source_port":5353}},"IP":{"source":"1.1.1.1","destination":"2.2.2.2"}}}',
    ])
    flows = parse_flow_lines(text)
    assert len(flows) == 1
    assert flows[0].protocol == "UDP" and flows[0].src_port == 5353 and flows[0].dst_port == 0  # omitted zero


def test_time_parsing_keeps_microseconds_of_nanosecond_stamps() -> None:
    assert parse_time("2021-06-16T16:52:13.611147709Z") == datetime(2021, 6, 16, 16, 52, 13, 611147, tzinfo=UTC)
    assert parse_time("2026-01-01T01:00:00+01:00") == datetime(2026, 1, 1, 0, 0, tzinfo=UTC)
    assert format_time(datetime(2026, 8, 27, 14, 30, 12, 5, tzinfo=UTC)) == "2026-08-27T14:30:12.000005Z"
    with pytest.raises(ValueError, match="naive"):
        format_time(datetime(2026, 8, 27))


def test_match_finds_the_policy_denied_drop_of_one_probe(probes: list[FlowRecord]) -> None:
    probe = ProbeFacts(src_ip=CLIENT, dst_ip=MY_API, dst_port=9090, protocol="TCP", src_port=41234,
                       start=at("2026-08-27T14:30:12.000Z"), end=at("2026-08-27T14:30:14.4Z"))
    found = match(probes, probe)
    assert [f.uuid[-2:] for f in found] == ["02", "01"]  # policy-verdict then drop event, in time order
    assert all(f.drop_reason_desc == "POLICY_DENIED" for f in found)
    assert found[1].summary() == ("DROPPED POLICY_DENIED ingress tenant/client:41234 -> default/my-api:9090 TCP SYN")


def test_two_probes_to_one_destination_each_get_only_their_own_flows(probes: list[FlowRecord]) -> None:
    """Issue 17.2: two probes of one batch to the same destination port differ only in the source port
    the agent reported; without it each would get the other's drops as evidence."""
    window = {"start": at("2026-08-27T14:30:12.000Z"), "end": at("2026-08-27T14:30:14.4Z")}
    first = ProbeFacts(src_ip=CLIENT, dst_ip=MY_API, dst_port=9090, protocol="TCP", src_port=41234, **window)
    second = ProbeFacts(src_ip=CLIENT, dst_ip=MY_API, dst_port=9090, protocol="TCP", src_port=41236, **window)
    assert [f.uuid[-2:] for f in match(probes, first)] == ["02", "01"]
    assert [f.uuid[-2:] for f in match(probes, second)] == ["10", "09"]
    without_port = ProbeFacts(src_ip=CLIENT, dst_ip=MY_API, dst_port=9090, protocol="TCP", **window)
    assert len(match(probes, without_port)) == 4  # what an agent that reports no source port gets


def test_the_reply_direction_is_matched_by_the_probes_source_port(probes: list[FlowRecord]) -> None:
    window = {"start": at("2026-08-27T14:30:15.0Z"), "end": at("2026-08-27T14:30:15.2Z")}
    mine = ProbeFacts(src_ip=CLIENT, dst_ip=MY_API, dst_port=8080, protocol="TCP", src_port=41240, **window)
    other = ProbeFacts(src_ip=CLIENT, dst_ip=MY_API, dst_port=8080, protocol="TCP", src_port=41241, **window)
    found = match(probes, mine)
    assert [f.uuid[-2:] for f in found] == ["04", "05", "06"]
    assert mine.is_reply(found[2]) and not mine.is_request(found[2])
    assert match(probes, other) == []


def test_a_destination_known_by_name_only_is_matched_by_the_probes_socket(probes: list[FlowRecord]) -> None:
    """An FQDN probe: the address the pod's resolver answered is not known to the harness, so the flows
    are picked out by the source address and port (requests and replies), any destination address."""
    window = {"start": at("2026-08-27T14:30:15.0Z"), "end": at("2026-08-27T14:30:15.2Z")}
    by_name = ProbeFacts(src_ip=CLIENT, dst_ip="", dst_port=8080, protocol="TCP", src_port=41240, **window)
    by_address = ProbeFacts(src_ip=CLIENT, dst_ip=MY_API, dst_port=8080, protocol="TCP", src_port=41240, **window)
    assert match(probes, by_name) == match(probes, by_address) != []
    assert match(probes, ProbeFacts(src_ip=CLIENT, dst_ip="", dst_port=8080, protocol="TCP", src_port=41241,
                                    **window)) == []


def test_match_excludes_other_pods_ports_and_times(probes: list[FlowRecord]) -> None:
    probe = ProbeFacts(src_ip=CLIENT, dst_ip=MY_API, dst_port=9090, protocol="TCP",
                       start=at("2026-08-27T14:30:12.000Z"), end=at("2026-08-27T14:30:14.4Z"))
    found = {f.uuid[-2:] for f in match(probes, probe)}
    assert "08" not in found  # same 5-tuple, two minutes earlier
    assert found >= {"09", "10"}  # another probe's drops: only a source port tells them apart
    assert "03" not in found  # prometheus, not client
    assert not found & {"04", "05", "06"}  # port 8080
    udp = ProbeFacts(src_ip=CLIENT, dst_ip=MY_API, dst_port=9090, protocol="UDP",
                     start=probe.start, end=probe.end)
    assert match(probes, udp) == []


def test_match_finds_the_l7_denial_and_its_403_response(probes: list[FlowRecord]) -> None:
    probe = ProbeFacts(src_ip=CLIENT, dst_ip=MY_API, dst_port=8080, protocol="TCP",
                       start=at("2026-08-27T14:30:15.0Z"), end=at("2026-08-27T14:30:15.2Z"))
    found = match(probes, probe)
    assert [f.uuid[-2:] for f in found] == ["04", "05", "06"]
    denial, response = found[1], found[2]
    # how cilium-cli recognises a proxy denial: an L7 record with verdict DROPPED; Hubble gives it no reason
    assert (denial.flow_type, denial.verdict, denial.drop_reason_desc) == ("L7", "DROPPED", "")
    assert denial.http is not None and denial.http.method == "POST"
    assert response.http is not None and response.http.code == 403 and response.is_reply
    assert denial.summary() == ("DROPPED ingress tenant/client:41240 -> default/my-api:8080 "
                                "HTTP/1.1 POST http://10.244.2.31:8080/orders (request)")
    assert response.summary() == ("FORWARDED ingress default/my-api:8080 -> tenant/client:41240 "
                                  "HTTP/1.1 403 (POST http://10.244.2.31:8080/orders)")


def test_summary_names_the_allowing_policy(probes: list[FlowRecord]) -> None:
    allowed = next(f for f in probes if f.uuid.endswith("03"))
    assert allowed.allowed_by[0].kind == "NetworkPolicy" and allowed.allowed_by[0].revision == 7
    assert allowed.summary() == ("FORWARDED ingress monitoring/prometheus:52210 -> default/my-api:9090 TCP SYN "
                                 "(allowed by default/allow-monitoring-scrape)")


def test_summary_names_a_deny_policy() -> None:
    line = ('{"flow":{"time":"2026-08-27T14:30:12Z","verdict":"DROPPED","drop_reason_desc":"POLICY_DENY",'
            '"IP":{"source":"10.244.1.17","destination":"10.244.2.31"},"l4":{"TCP":{"source_port":1,'
            '"destination_port":9090,"flags":{"SYN":true}}},"source":{"namespace":"tenant","pod_name":"client"},'
            '"destination":{"namespace":"default","pod_name":"my-api"},"traffic_direction":"INGRESS",'
            '"ingress_denied_by":[{"name":"deny-tenant","namespace":"default","revision":"9",'
            '"kind":"CiliumNetworkPolicy"}]}}')
    flow = parse_flow_line(line)
    assert flow is not None
    assert flow.summary().endswith("TCP SYN (by default/deny-tenant)")


def test_dns_summary_shows_the_rcode(reference: list[FlowRecord]) -> None:
    assert reference[7].summary().startswith("FORWARDED egress kube-system/kube-dns-b4f5c58c7-vnx5s:53 -> ")
    assert "DNS answer istiod-istio-1611.istio-system.svc.istio-system.svc.cluster.local. A NXDOMAIN" in (
        reference[7].summary())


def test_observe_argv_is_the_documented_command() -> None:
    argv = observe_argv(at("2026-08-27T14:30:12Z"), at("2026-08-27T14:30:20Z"), ["tenant/client", "default/my-api"])
    assert argv == ["hubble", "observe", "-o", "json", "--since", "2026-08-27T14:30:12.000000Z",
                    "--until", "2026-08-27T14:30:20.000000Z", "--pod", "tenant/client", "--pod", "default/my-api"]
    narrowed = observe_argv(at("2026-08-27T14:30:12Z"), None, ["tenant/client"], ports=[41240, 41234, 41240])
    # repeated --port values are OR'ed and paired with --pod on each side: both directions of those connections
    assert narrowed[-6:] == ["--pod", "tenant/client", "--port", "41234", "--port", "41240"]


def test_collect_flows_asks_every_agent_and_merges_in_time_order() -> None:
    cluster = FakeCluster()
    cluster.add_cilium_agents(["cilium-a", "cilium-b"])
    lines = data("hubble-flows-probes.jsonl").splitlines()
    by_agent = {"cilium-a": "\n".join(lines[:4]) + "\n", "cilium-b": "\n".join([lines[0], *lines[4:]]) + "\n"}
    cluster.exec_handler = lambda ns, pod, container, argv, stdin: ExecReply(stdout=by_agent[pod])
    flows = collect_flows(cluster.clients, ["cilium-a", "cilium-b"], since=at("2026-08-27T14:00:00Z"), until=None,
                          pods=["tenant/client"])
    assert len(flows) == 10  # line 0 came from both agents (same uuid): kept once; the lost_events line is skipped
    assert [f.time for f in flows] == sorted(f.time for f in flows)
    assert [(c["pod"], c["container"]) for c in cluster.exec_calls] == [("cilium-a", "cilium-agent"),
                                                                        ("cilium-b", "cilium-agent")]
    assert cluster.exec_calls[0]["command"][:4] == ["hubble", "observe", "-o", "json"]
    assert cluster.exec_calls[0]["stdin_enabled"] is False


def test_collect_flows_reports_a_failing_hubble() -> None:
    cluster = FakeCluster()
    cluster.add_cilium_agents(["cilium-a"])
    cluster.exec_handler = lambda *a: ExecReply(
        stderr="failed to connect to 'unix:///var/run/cilium/hubble.sock': connection refused\n",
        status=data("exec-status-exit-code.json").replace('"message":"2"', '"message":"1"'))
    with pytest.raises(ClusterError, match=r"(?s)`hubble observe` failed in cilium-a \(exit 1\).*connection refused"):
        collect_flows(cluster.clients, ["cilium-a"], since=at("2026-08-27T14:00:00Z"), until=None, pods=["a/b"])
