"""Fixtures for the probe tests: running the real agent and server as processes, on loopback or in the lab.

Loopback tests (no root needed) run the agent against real servers on 127.0.0.1: everything that does not
need a firewall -- allowed flows, RST, ICMP port unreachable on loopback, DNS, robustness. Drops and
rejects by rule need nftables and namespaces: those tests use the ``lab`` fixture and skip with the
reason when the lab cannot run here.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.netlab import AGENT_PATH, SERVER_PATH, NetLab, netlab_unavailable_reason
from tests.ports import free_port, free_ports

PY39 = Path("/root/.pyenv/versions/3.9.18/bin/python3.9")


@dataclass
class AgentRun:
    """What one agent process did: exit status, its result lines (parsed), stderr, wall time."""

    returncode: int
    results: list[dict[str, Any]]
    stderr: str
    wall_s: float

    def by_id(self) -> dict[str, dict[str, Any]]:
        by_id = {r["id"]: r for r in self.results}
        assert len(by_id) == len(self.results), "the agent reported an id twice"
        return by_id


def run_agent(plan: Any, *, python: str = sys.executable, argv: list[str] | None = None,
              timeout_s: float = 60.0, cwd: Path | None = None) -> AgentRun:
    """Run the real agent with ``plan`` (a dict, or raw str/bytes) on stdin.

    Asserts the agent's stdout contract on the way: every stdout line is one JSON object, and the agent
    never prints a traceback.
    """
    data = plan if isinstance(plan, bytes) else (plan if isinstance(plan, str) else json.dumps(plan)).encode()
    started = time.monotonic()
    done = subprocess.run(argv or [python, str(AGENT_PATH)], input=data, capture_output=True, timeout=timeout_s,
                          check=False, cwd=cwd)
    wall = time.monotonic() - started
    stderr = done.stderr.decode("utf-8", "replace")
    assert "Traceback" not in stderr, stderr
    results = []
    for line in done.stdout.decode("utf-8").splitlines():
        obj = json.loads(line)
        assert isinstance(obj, dict), line
        results.append(obj)
    return AgentRun(done.returncode, results, stderr, wall)


@dataclass
class LocalServer:
    """The real ``server.py`` running on this host, on free ports."""

    name: str
    http: int
    tcp: int
    udp: int
    process: subprocess.Popen[bytes]
    log_path: Path

    def log_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log_path.read_text().splitlines() if line.startswith("{")]


def start_server(tmp_path: Path, name: str = "default/api", python: str = sys.executable) -> LocalServer:
    http, tcp, udp = free_ports(socket.SOCK_STREAM, socket.SOCK_STREAM, socket.SOCK_DGRAM)
    log_path = tmp_path / f"server-{http}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [python, str(SERVER_PATH), "--name", name, "--http", str(http), "--tcp", str(tcp), "--udp", str(udp)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    deadline = time.monotonic() + 15
    while '"event":"ready"' not in log_path.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"server.py did not start: {log_path.read_text()}")
        time.sleep(0.02)
    return LocalServer(name, http, tcp, udp, process, log_path)


def stop_server(server: LocalServer) -> int:
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(5)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(5)
    return server.process.returncode


@pytest.fixture
def local_server(tmp_path: Path) -> Iterator[LocalServer]:
    server = start_server(tmp_path)
    try:
        yield server
    finally:
        stop_server(server)


@pytest.fixture(scope="session")
def local_resolver_port() -> Iterator[int]:
    """The dnslib test resolver (``tests/netlab/resolver.py``) on 127.0.0.1, UDP and TCP on one port."""
    pytest.importorskip("dnslib", reason="dnslib (a dev dependency) is needed for the DNS test resolver")
    from tests.netlab.resolver import start_resolver

    for _ in range(5):
        port = free_port(socket.SOCK_DGRAM)
        try:
            servers = start_resolver(port, "127.0.0.1")
        except OSError:
            continue
        try:
            yield port
        finally:
            for server in servers:
                server.stop()
        return
    pytest.fail("could not bind the test resolver")


# -- the netns lab ------------------------------------------------------------------------------------

API = "default/api"
CLIENT = "tenant/client"
DNS = "kube-system/dns"
PROXY = "default/l7-proxy"
API_HTTP, API_TCP, API_UDP = 8080, 9000, 81


@pytest.fixture(scope="module")
def lab() -> Iterator[NetLab]:
    """A lab with an API pod (probe server), a client, a DNS resolver pod and an Envoy-like proxy pod."""
    reason = netlab_unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    with NetLab() as lab:
        lab.add_pod(API, http=[API_HTTP], tcp=[API_TCP], udp=[API_UDP], wait=False)
        lab.add_pod(CLIENT)
        lab.add_pod(DNS)
        lab.add_pod(PROXY)
        here = Path(__file__).resolve().parent.parent / "netlab"
        lab.spawn(DNS, [sys.executable, here / "resolver.py", "--port", "53"], ready='"event":"ready"')
        lab.spawn(PROXY, [sys.executable, here / "denyproxy.py", "--listen", "8080",
                          "--upstream", f"{lab.address_of(API)}:{API_HTTP}", "--allow", "GET"],
                  ready='"event":"ready"')
        lab.wait_ready()
        yield lab


@pytest.fixture
def clean_lab(lab: NetLab) -> Iterator[NetLab]:
    """The module's lab, with every nft rule removed after the test (also when it fails)."""
    try:
        yield lab
    finally:
        lab.clear_rules()


def has_py39() -> bool:
    return PY39.exists() and os.access(PY39, os.X_OK)
