"""The real agent against real servers on loopback (no root needed): what it reports, and that it never
hangs, crashes or prints anything but one JSON line per probe -- whatever the plan or the peer does.

Drops and rejects by firewall rule need nftables: those are in ``test_netlab.py``.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.probe.conftest import LocalServer, free_port, run_agent

LOOPBACK = "127.0.0.1"


def closed_port(kind: int = socket.SOCK_STREAM) -> int:
    return free_port(kind)  # bound once and released: nothing listens there now


# -- allowed and refused on loopback ------------------------------------------------------------------


def test_tcp_http_and_udp_to_the_probe_server_are_ok(local_server: LocalServer) -> None:
    run = run_agent({"timeout": 2, "probes": [
        {"id": "tcp", "kind": "tcp", "host": LOOPBACK, "port": local_server.tcp},
        {"id": "http", "kind": "http", "host": LOOPBACK, "port": local_server.http},
        {"id": "udp", "kind": "udp", "host": LOOPBACK, "port": local_server.udp, "payload": "hello"},
    ]})
    assert run.returncode == 0
    got = run.by_id()
    assert got["tcp"]["outcome"] == "ok" and got["tcp"]["connected"] is True
    assert got["http"]["outcome"] == "ok" and got["http"]["status"] == 200
    assert got["http"]["server"] == "default/api"
    assert got["udp"]["outcome"] == "ok" and got["udp"]["server"] == "default/api"
    assert '"payload":"hello"' in got["udp"]["reply"]


def test_each_probe_reports_the_source_port_the_server_saw(local_server: LocalServer) -> None:
    """Two probes of each kind to one destination in one run: each reports its own local port, and it is
    the port the server logged for that request -- what lets evidence be matched to one probe."""
    ports = {"tcp": local_server.tcp, "http": local_server.http, "udp": local_server.udp}
    run = run_agent({"timeout": 2, "probes": [
        {"id": f"{kind}{n}", "kind": kind, "host": LOOPBACK, "port": port} for kind, port in ports.items()
        for n in (1, 2)]})
    got = run.by_id()
    assert {result["outcome"] for result in got.values()} == {"ok"}
    assert {result["saddr"] for result in got.values()} == {LOOPBACK}
    assert len({(result["kind"], result["sport"]) for result in got.values()}) == 6
    seen: dict[str, list[str]] = {"tcp": [], "http": [], "udp": []}
    for entry in local_server.log_lines():
        if entry.get("proto") in seen:
            seen[entry["proto"]].append(entry["client"])
    for kind in ports:
        assert sorted(seen[kind]) == sorted(f"{LOOPBACK}:{got[kind + n]['sport']}" for n in "12"), kind


def test_a_refused_probe_reports_its_source_port_and_a_probe_without_a_socket_none() -> None:
    run = run_agent({"timeout": 2, "probes": [
        {"id": "refused", "kind": "tcp", "host": LOOPBACK, "port": closed_port()},
        {"id": "udp", "kind": "udp", "host": LOOPBACK, "port": closed_port(socket.SOCK_DGRAM)},
        {"id": "unresolved", "kind": "tcp", "host": "no-such-host.invalid", "port": 80},
    ]})
    got = run.by_id()
    assert got["refused"]["outcome"] == "refused" and got["refused"]["saddr"] == LOOPBACK
    assert isinstance(got["refused"]["sport"], int) and got["refused"]["sport"] > 0
    assert got["udp"]["outcome"] == "refused" and got["udp"]["sport"] > 0
    assert got["unresolved"]["outcome"] in ("error", "timeout")  # the name never resolves: no socket was opened
    assert "sport" not in got["unresolved"] and "saddr" not in got["unresolved"]


def test_http_method_path_and_headers_arrive_as_sent(local_server: LocalServer) -> None:
    run = run_agent({"timeout": 2, "probes": [
        {"id": "1", "kind": "http", "host": LOOPBACK, "port": local_server.http, "method": "PATCH",
         "path": "/orders/7?dry=1", "headers": {"X-Token": "42", "X-Trace": "a b c"}, "body": "{}"},
    ]})
    echo = run.by_id()["1"]["echo"]
    assert echo["method"] == "PATCH" and echo["path"] == "/orders/7?dry=1"
    assert echo["headers"]["X-Token"] == "42" and echo["headers"]["X-Trace"] == "a b c"
    assert echo["headers"]["Host"] == f"{LOOPBACK}:{local_server.http}"
    logged = [entry for entry in local_server.log_lines() if entry.get("proto") == "http"]
    assert logged[-1]["method"] == "PATCH" and logged[-1]["headers"]["X-Token"] == "42"
    assert logged[-1]["body_bytes"] == 2


def test_rst_is_refused_for_tcp_http_and_dns_over_tcp() -> None:
    port = closed_port()
    run = run_agent({"timeout": 2, "probes": [
        {"id": "tcp", "kind": "tcp", "host": LOOPBACK, "port": port},
        {"id": "http", "kind": "http", "host": LOOPBACK, "port": port},
        {"id": "dns", "kind": "dns", "server": LOOPBACK, "port": port, "name": "a.lab", "transport": "tcp"},
    ]})
    for result in run.results:
        assert result["outcome"] == "refused", result
        assert result["errno"] == "ECONNREFUSED" and result["connected"] is False


def test_icmp_port_unreachable_on_udp_is_refused() -> None:
    run = run_agent({"timeout": 2, "probes": [
        {"id": "udp", "kind": "udp", "host": LOOPBACK, "port": closed_port(socket.SOCK_DGRAM)},
        {"id": "dns", "kind": "dns", "server": LOOPBACK, "port": closed_port(socket.SOCK_DGRAM), "name": "a.lab"},
    ]})
    assert [r["outcome"] for r in run.results] == ["refused", "refused"]
    assert all(r["elapsed"] < 1.0 for r in run.results)  # an answer, not a timeout


# -- DNS ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_dns_rcodes_are_reported_exactly(local_resolver_port: int, transport: str) -> None:
    names = {"ok": "www.lab", "nx": "nxdomain.lab", "refused": "refused.lab", "servfail": "servfail.lab."}
    run = run_agent({"timeout": 2, "probes": [
        {"id": pid, "kind": "dns", "server": LOOPBACK, "port": local_resolver_port, "name": name,
         "transport": transport} for pid, name in names.items()
    ]})
    got = run.by_id()
    assert {pid: got[pid]["rcode"] for pid in names} == {
        "ok": "NOERROR", "nx": "NXDOMAIN", "refused": "REFUSED", "servfail": "SERVFAIL"}
    assert all(r["outcome"] == "ok" and r["transport"] == transport for r in run.results)
    assert got["ok"]["answers"] == [{"name": "www.lab.", "type": "A", "ttl": 30, "data": "192.0.2.10"}]
    assert got["nx"]["answers"] == []


@pytest.mark.parametrize(("qtype", "data"), [("AAAA", "2001:db8::10"), ("TXT", "flowcheck")])
def test_dns_aaaa_and_txt_answers_are_decoded(local_resolver_port: int, qtype: str, data: str) -> None:
    run = run_agent({"timeout": 2, "probes": [
        {"id": "1", "kind": "dns", "server": LOOPBACK, "port": local_resolver_port, "name": "www.lab", "qtype": qtype},
    ]})
    assert run.results[0]["answers"][0]["type"] == qtype
    assert run.results[0]["answers"][0]["data"] == data


# -- misbehaving peers --------------------------------------------------------------------------------


class StreamPeer:
    """A TCP listener on loopback that treats every connection with ``behaviour`` and notes when it accepted."""

    def __init__(self, behaviour: Callable[[socket.socket], None]) -> None:
        self.behaviour = behaviour
        self.listener = socket.socket()
        self.listener.bind((LOOPBACK, 0))
        self.listener.listen(512)
        self.port = self.listener.getsockname()[1]
        self.stop = threading.Event()
        self.accepted_at: list[float] = []
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections.append(conn)
            self.accepted_at.append(time.monotonic())
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            self.behaviour(conn)
            # hold the connection until the client closes it (or the test ends)
            conn.settimeout(0.2)
            while not self.stop.is_set():
                try:
                    if not conn.recv(4096):
                        break
                except TimeoutError:
                    continue
                except OSError:
                    break
        finally:
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.listener.close()


@pytest.fixture
def stream_peer() -> Iterator[Callable[[Callable[[socket.socket], None]], StreamPeer]]:
    peers: list[StreamPeer] = []

    def make(behaviour: Callable[[socket.socket], None]) -> StreamPeer:
        peers.append(StreamPeer(behaviour))
        return peers[-1]

    yield make
    for peer in peers:
        peer.close()


def silent(conn: socket.socket) -> None:
    """Accept and never answer."""


def test_server_that_accepts_and_never_answers_is_an_error_not_a_timeout(stream_peer: Callable[..., StreamPeer]
                                                                         ) -> None:
    peer = stream_peer(silent)
    run = run_agent({"timeout": 0.5, "probes": [
        {"id": "http", "kind": "http", "host": LOOPBACK, "port": peer.port},
        {"id": "dns", "kind": "dns", "server": LOOPBACK, "port": peer.port, "name": "a.lab", "transport": "tcp"},
        {"id": "tcp", "kind": "tcp", "host": LOOPBACK, "port": peer.port},
    ]})
    got = run.by_id()
    for pid in ("http", "dns"):
        assert got[pid]["outcome"] == "error" and got[pid]["connected"] is True, got[pid]
        assert "no complete answer" in got[pid]["detail"]
        assert 0.5 <= got[pid]["elapsed"] < 0.8
    assert got["tcp"]["outcome"] == "ok"
    assert run.wall_s < 5


@pytest.mark.parametrize(("reply", "expected"), [
    (b"\x00\xff\xfe garbage \r\n\r\n", "not an HTTP response"),
    (b"SSH-2.0-OpenSSH_9.6\r\n\r\n", "not an HTTP response"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: banana\r\n\r\n", "malformed Content-Length"),
    (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "malformed HTTP response header"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort", "closed after 5 bytes"),
    (b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 70000, "larger than"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "malformed chunk size"),
])
def test_garbage_http_answers_are_errors(stream_peer: Callable[..., StreamPeer], reply: bytes, expected: str) -> None:
    def garbage(conn: socket.socket) -> None:
        conn.recv(65536)
        conn.sendall(reply)
        conn.shutdown(socket.SHUT_WR)

    peer = stream_peer(garbage)
    run = run_agent({"timeout": 2, "probes": [{"id": "1", "kind": "http", "host": LOOPBACK, "port": peer.port}]})
    assert run.returncode == 0
    assert run.results[0]["outcome"] == "error"
    assert expected in run.results[0]["detail"]


def test_garbage_without_end_of_head_times_out_as_an_error(stream_peer: Callable[..., StreamPeer]) -> None:
    peer = stream_peer(lambda conn: conn.sendall(b"\x00" * 100))
    run = run_agent({"timeout": 0.5, "probes": [{"id": "1", "kind": "http", "host": LOOPBACK, "port": peer.port}]})
    assert run.results[0]["outcome"] == "error" and run.results[0]["connected"] is True


def test_connection_closed_without_a_response_is_an_error(local_server: LocalServer) -> None:
    # the probe server's TCP port accepts and closes: an HTTP probe there gets no response
    run = run_agent({"timeout": 2, "probes": [{"id": "1", "kind": "http", "host": LOOPBACK, "port": local_server.tcp}]})
    assert run.results[0]["outcome"] == "error" and run.results[0]["connected"] is True
    # the server closes before or after reading the request: a FIN or an RST, both an error
    assert any(text in run.results[0]["detail"] for text in ("closed without an HTTP response", "ECONNRESET"))


def test_chunked_response_is_decoded(stream_peer: Callable[..., StreamPeer]) -> None:
    def chunked(conn: socket.socket) -> None:
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"d\r\n{\"server\":\"x\"\r\n1\r\n}\r\n0\r\n\r\n")

    peer = stream_peer(chunked)
    run = run_agent({"timeout": 2, "probes": [{"id": "1", "kind": "http", "host": LOOPBACK, "port": peer.port}]})
    assert run.results[0]["status"] == 200 and run.results[0]["server"] == "x"


class DatagramPeer:
    """A UDP socket on loopback answering each datagram with ``answer(query)`` (None: stay silent)."""

    def __init__(self, answer: Callable[[bytes], list[bytes]]) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((LOOPBACK, 0))
        self.port = self.sock.getsockname()[1]
        self.answer = answer
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                data, addr = self.sock.recvfrom(65535)
            except OSError:
                return
            for reply in self.answer(data):
                self.sock.sendto(reply, addr)


def dns_reply(query: bytes, *, id_delta: int = 0, rcode: int = 0, name: bytes | None = None) -> bytes:
    query_id = struct.unpack("!H", query[:2])[0]
    question = query[12:] if name is None else name + query[-4:]
    return struct.pack("!HHHHHH", (query_id + id_delta) & 0xFFFF, 0x8180 | rcode, 1, 0, 0, 0) + question


@pytest.mark.parametrize(("answers", "expected"), [
    (lambda q: [b"\xde\xad"], "none a valid answer"),
    (lambda q: [dns_reply(q, id_delta=1)], "does not match query id"),
    (lambda q: [dns_reply(q, name=b"\x05other\x03lab\x00")], "the answer is for question other.lab."),
    (lambda q: [q], "QR bit clear"),
])
def test_dns_answers_that_do_not_match_the_query_are_errors(answers: Callable[[bytes], list[bytes]],
                                                            expected: str) -> None:
    peer = DatagramPeer(answers)
    run = run_agent({"timeout": 0.5, "probes": [
        {"id": "1", "kind": "dns", "server": LOOPBACK, "port": peer.port, "name": "www.lab"}]})
    assert run.results[0]["outcome"] == "error"
    assert expected in run.results[0]["detail"]


def test_dns_keeps_waiting_past_a_stray_datagram_for_the_real_answer() -> None:
    peer = DatagramPeer(lambda q: [dns_reply(q, id_delta=7), dns_reply(q, rcode=3)])
    run = run_agent({"timeout": 1, "probes": [
        {"id": "1", "kind": "dns", "server": LOOPBACK, "port": peer.port, "name": "www.lab"}]})
    assert run.results[0]["outcome"] == "ok" and run.results[0]["rcode"] == "NXDOMAIN"


def test_silent_udp_peer_is_a_timeout() -> None:
    peer = DatagramPeer(lambda q: [])
    run = run_agent({"timeout": 0.3, "probes": [
        {"id": "udp", "kind": "udp", "host": LOOPBACK, "port": peer.port},
        {"id": "dns", "kind": "dns", "server": LOOPBACK, "port": peer.port, "name": "www.lab"}]})
    assert [r["outcome"] for r in run.results] == ["timeout", "timeout"]


# -- bad plans and bad probes -------------------------------------------------------------------------


@pytest.mark.parametrize(("stdin", "message"), [
    (b"", "no plan on stdin"),
    (b"not json", "not valid JSON"),
    (b"{not json", "not valid JSON: Expecting property name enclosed in double quotes"),
    (b'{"a', "not valid JSON: Unterminated string"),
    (b"{1: 2}", "not valid JSON"),
    (b"[", "not valid JSON"),
    (b'{"probes": [' + b"[" * 100000 + b"]" * 100000 + b"]}", "not valid JSON"),
    (b'{"timeout": 1' + b"0" * 5000 + b', "probes": []}', "not valid JSON"),
    (b'"just a string"', "must be a JSON object, got str"),
    (b"null", "must be a JSON object, got NoneType"),
    (b"\xff\xfe", "not UTF-8"),
    (b"[1, 2]", "must be a JSON object"),
    (b'{"probes": {}}', "'probes' must be a list"),
    (b'{"timeout": -1, "probes": []}', "'timeout' must be a number"),
    (b'{"timeout": "2", "probes": []}', "'timeout' must be a number"),
    (b'{"concurrency": 0, "probes": []}', "'concurrency' must be an integer"),
    (b'{"probes": [], "bogus": 1}', "unknown plan field(s): \"bogus\""),
    (b'{"probes": [{"kind": "tcp"}]}', "probes[0] has no usable 'id'"),
    (b'{"probes": [{"id": "a", "kind": "tcp", "host": "h", "port": 1}, {"id": "a", "kind": "tcp"}]}',
     'probes[1]: duplicate id "a"'),
    (b'{"probes": ["tcp"]}', "probes[0] must be a JSON object"),
])
def test_malformed_plan_is_exit_2_with_a_message_and_nothing_on_stdout(stdin: bytes, message: str) -> None:
    run = run_agent(stdin)
    assert run.returncode == 2
    assert run.results == []
    assert message in run.stderr


@pytest.mark.parametrize(("probe", "message"), [
    ({"kind": "icmp", "host": LOOPBACK}, 'probes[1] (id "p"): unknown probe kind "icmp"; expected one of dns, '
                                         "http, tcp, udp"),
    ({"host": LOOPBACK, "port": 80}, "probe field 'kind' is missing"),
    ({"kind": "tcp", "host": LOOPBACK}, "probe field 'port' is missing"),
    ({"kind": "tcp", "host": LOOPBACK, "port": 70000}, "must be an integer in [1, 65535], got 70000"),
    ({"kind": "tcp", "host": LOOPBACK, "port": 80, "timeout": "soon"}, "probe field 'timeout' must be a number"),
    ({"kind": "http", "host": LOOPBACK, "port": 80, "headers": {"X": 1}}, "probe field 'headers' must be an object"),
    ({"kind": "http", "host": LOOPBACK, "port": 80, "headers": {"X": "1\r\nY: 2"}}, "must not contain CR, LF or NUL"),
    ({"kind": "dns", "server": LOOPBACK}, "probe field 'name' is missing"),
    ({"kind": "dns", "server": LOOPBACK, "name": "a.lab", "qtype": "AXFR"}, "unsupported DNS qtype"),
    ({"kind": "dns", "server": LOOPBACK, "name": "a..lab"}, "has an empty label"),
])
def test_a_bad_probe_makes_the_plan_malformed_and_nothing_runs(local_server: LocalServer, probe: dict[str, Any],
                                                               message: str) -> None:
    run = run_agent({"timeout": 2, "probes": [{"id": "good", "kind": "tcp", "host": LOOPBACK,
                                               "port": local_server.tcp}, {"id": "p", **probe}]})
    assert run.returncode == 2
    assert run.results == []  # not even the good probe: the plan is refused before anything runs
    assert run.stderr.count("\n") == 1 and run.stderr.startswith("flowcheck agent: malformed plan: probes[1]")
    assert message in run.stderr


def test_empty_plan_is_fine() -> None:
    run = run_agent({"probes": []})
    assert run.returncode == 0 and run.results == []


def test_concurrency_is_bounded(stream_peer: Callable[..., StreamPeer]) -> None:
    peer = stream_peer(silent)
    run = run_agent({"timeout": 0.3, "concurrency": 2, "probes": [
        {"id": str(i), "kind": "http", "host": LOOPBACK, "port": peer.port} for i in range(6)]})
    assert len(run.results) == 6
    accepted = sorted(peer.accepted_at)
    assert len(accepted) == 6
    # three waves of two: a third connection only starts once a probe of the wave before has timed out
    assert all(accepted[i + 2] - accepted[i] >= 0.25 for i in range(4)), accepted
    assert run.wall_s >= 3 * 0.3


def test_the_whole_run_is_bounded_by_the_deadline(stream_peer: Callable[..., StreamPeer]) -> None:
    peer = stream_peer(silent)
    started = time.monotonic()
    run = run_agent({"timeout": 30, "deadline": 0.5, "probes": [
        {"id": str(i), "kind": "http", "host": LOOPBACK, "port": peer.port} for i in range(20)]})
    assert time.monotonic() - started < 5
    assert run.returncode == 0 and len(run.results) == 20
    assert {r["outcome"] for r in run.results} == {"error"}
    assert all("deadline of 0.5 s" in r["detail"] for r in run.results)


@pytest.mark.slow
def test_huge_plan_gets_one_line_per_probe(local_server: LocalServer, tmp_path: Path) -> None:
    probes = [{"id": f"p{i}", "kind": "tcp", "host": LOOPBACK, "port": local_server.tcp} for i in range(10_000)]
    run = run_agent({"timeout": 5, "concurrency": 200, "probes": probes}, timeout_s=120)
    assert run.returncode == 0, run.stderr
    assert len(run.results) == 10_000
    assert len(run.by_id()) == 10_000
    outcomes = [r["outcome"] for r in run.results]
    assert outcomes.count("ok") == 10_000, {o: outcomes.count(o) for o in set(outcomes)}
