"""The real probe server (design §6), as a process on loopback: any method → 200 with its identity, TCP
accept-and-close, UDP echo, one log line per request, robust to garbage and slow clients, clean exit."""

from __future__ import annotations

import http.client
import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.netlab import SERVER_PATH
from tests.probe.conftest import LocalServer, start_server, stop_server

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
