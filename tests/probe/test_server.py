"""The real probe server (docs/contracts.md, "The probe server"), as a process on loopback: any method → 200 with
its identity, TCP accept-and-close, UDP echo, one log line per request, robust to garbage and slow clients,
clean exit."""

from __future__ import annotations

import http.client
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from flowcheck.probe import server as probe_server
from tests.netlab import SERVER_PATH
from tests.probe.conftest import LocalServer, free_port, start_server, stop_server

LOOPBACK = "127.0.0.1"


def request(server: LocalServer, method: str, path: str, body: bytes | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(LOOPBACK, server.http, timeout=5)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "PURGE"])
def test_any_method_and_path_gets_200_with_identity(local_server: LocalServer, method: str) -> None:
    status, body = request(local_server, method, "/any/path?x=1", body=b"abc" if method == "POST" else None,
                           headers={"X-Token": "42"})
    assert status == 200
    document = json.loads(body)
    assert document["server"] == "default/api"
    assert document["method"] == method and document["path"] == "/any/path?x=1"
    assert document["headers"]["X-Token"] == "42"
    assert document["client"] == LOOPBACK


def test_head_gets_headers_only(local_server: LocalServer) -> None:
    status, body = request(local_server, "HEAD", "/")
    assert status == 200 and body == b""


def test_keep_alive_serves_several_requests_on_one_connection(local_server: LocalServer) -> None:
    conn = http.client.HTTPConnection(LOOPBACK, local_server.http, timeout=5)
    try:
        for path in ("/one", "/two"):
            conn.request("GET", path)
            response = conn.getresponse()
            assert json.loads(response.read())["path"] == path
    finally:
        conn.close()


def test_garbage_gets_400_and_the_server_keeps_serving(local_server: LocalServer) -> None:
    with socket.create_connection((LOOPBACK, local_server.http), timeout=5) as sock:
        sock.sendall(b"\x16\x03\x01 not http at all\r\n\r\n")
        reply = sock.recv(4096)
    assert reply.startswith(b"HTTP/1.1 400 ")
    assert request(local_server, "GET", "/")[0] == 200


def test_slow_client_does_not_block_others(local_server: LocalServer) -> None:
    with socket.create_connection((LOOPBACK, local_server.http), timeout=5) as slow:
        slow.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # and then nothing
        started = time.monotonic()
        assert request(local_server, "GET", "/")[0] == 200
        assert time.monotonic() - started < 1


def exchange(server: LocalServer, data: bytes) -> bytes:
    """Send ``data`` on one connection, half-close it, and read everything the server answers."""
    with socket.create_connection((LOOPBACK, server.http), timeout=5) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    return reply


def bodies(reply: bytes) -> list[dict[str, object]]:
    """The JSON documents of every response in ``reply`` (the server always sends Content-Length)."""
    documents = []
    while reply:
        head, _, rest = reply.partition(b"\r\n\r\n")
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:")))
        documents.append(json.loads(rest[:length]))
        reply = rest[length:]
    return documents


def test_request_bodies_are_read_whole_and_counted(local_server: LocalServer) -> None:
    chunked = (b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n")
    sized = b"PUT /s HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nabcd"
    answers = bodies(exchange(local_server, chunked + sized))  # pipelined: both on one connection
    assert [(a["path"], a["body_bytes"]) for a in answers] == [("/c", 11), ("/s", 4)]


@pytest.mark.parametrize(("data", "reason"), [
    (b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 70000, "request head too large"),
    (b"POST / HTTP/1.1\r\nContent-Length: 2000000\r\n\r\n", "request body too large or negative"),
    (b"POST / HTTP/1.1\r\nContent-Length: many\r\n\r\n", "malformed Content-Length"),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "malformed chunk size"),
    (b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc", "connection closed mid-body"),
    (b"GET / HTTP/1.1\r\nHost: x\r\n", "connection closed mid-request"),
])
def test_bad_or_cut_off_requests_get_400_and_a_log_line(local_server: LocalServer, data: bytes,
                                                          reason: str) -> None:
    reply = exchange(local_server, data)
    assert reply.startswith(b"HTTP/1.1 400 ") and reason.encode() in reply
    time.sleep(0.2)
    assert any(entry.get("status") == 400 and entry.get("detail") == reason for entry in local_server.log_lines())
    assert request(local_server, "GET", "/")[0] == 200


def test_a_connection_closed_without_a_request_is_not_an_error(local_server: LocalServer) -> None:
    assert exchange(local_server, b"") == b""
    assert request(local_server, "GET", "/after")[0] == 200
    time.sleep(0.2)
    assert not any(entry.get("status") == 400 for entry in local_server.log_lines())


def test_tcp_port_accepts_and_closes(local_server: LocalServer) -> None:
    with socket.create_connection((LOOPBACK, local_server.tcp), timeout=5) as sock:
        assert sock.recv(100) == b""


def test_udp_port_echoes_with_identity(local_server: LocalServer) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(b"hello", (LOOPBACK, local_server.udp))
        reply = json.loads(sock.recv(65535))
    assert reply == {"server": "default/api", "payload": "hello"}


def test_one_log_line_per_request(local_server: LocalServer) -> None:
    for _ in range(3):
        request(local_server, "GET", "/logged")
    with socket.create_connection((LOOPBACK, local_server.tcp), timeout=5) as sock:
        sock.recv(10)
    time.sleep(0.2)
    lines = local_server.log_lines()
    assert sum(1 for entry in lines if entry.get("path") == "/logged") == 3
    assert sum(1 for entry in lines if entry.get("proto") == "tcp") == 1
    assert lines[0]["event"] == "ready"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_it_cleanly_even_with_open_connections(tmp_path: Path, signum: int) -> None:
    server = start_server(tmp_path)
    with socket.create_connection((LOOPBACK, server.http), timeout=5):
        time.sleep(0.1)
        server.process.send_signal(signum)
        assert server.process.wait(5) == 0
    log = server.log_path.read_text()
    assert "Traceback" not in log
    assert server.log_lines()[-1]["event"] == "stopped"


def test_port_in_use_is_exit_1(local_server: LocalServer) -> None:
    done = subprocess.run([sys.executable, str(SERVER_PATH), "--name", "x", "--http", str(local_server.http)],
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 1
    assert "bind-failed" in done.stderr


@pytest.mark.parametrize("argv", [[], ["--name", "x"], ["--name", "x", "--http", "80,abc"],
                                  ["--name", "x", "--http", "80", "--tcp", "80"]])
def test_bad_arguments_are_exit_2(argv: list[str]) -> None:
    done = subprocess.run([sys.executable, str(SERVER_PATH), *argv], capture_output=True, text=True, timeout=30,
                          check=False)
    assert done.returncode == 2


def test_server_can_be_stopped_after_many_connections(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    for _ in range(50):
        with socket.create_connection((LOOPBACK, server.tcp), timeout=5):
            pass
    assert stop_server(server) == 0


def test_an_idle_connection_is_dropped_and_logged(monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """In-process, with the idle timeout shortened: a client that connects and sends nothing is closed."""
    monkeypatch.setattr(probe_server, "IDLE_TIMEOUT_S", 0.5)
    monkeypatch.setattr(probe_server, "IDLE_SWEEP_S", 0.1)
    port = free_port()
    instance = probe_server.Server("default/idle")
    instance.listen(port, "http")
    runner = threading.Thread(target=instance.run)
    runner.start()
    try:
        with socket.create_connection((LOOPBACK, port), timeout=5) as sock:
            started = time.monotonic()
            assert sock.recv(10) == b""  # closed by the server ...
            assert 0.4 < time.monotonic() - started < 3  # ... after about the idle timeout
    finally:
        instance.stop_signal = signal.SIGTERM
        runner.join(5)
        instance.close()
    logged = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [entry["event"] for entry in logged] == ["idle-timeout"]
    assert logged[0]["client"].startswith(f"{LOOPBACK}:")
