"""Exec in a pod: the exit status from the error channel, stdin closing, timeouts, start failures.

The contract test at the end runs the *real* ``kubernetes.stream.stream`` and ``WSClient`` against
a fake websocket (the only fake is the socket), so the request URL, the channel framing, the v5
stdin CLOSE frame and the error-channel status are the client's own.
"""

from __future__ import annotations

import socket
from collections import deque
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from kubernetes import client, stream
from kubernetes.stream import ws_client
from websocket import ABNF

from flowcheck.cluster.kube import KubeClients
from flowcheck.cluster.podexec import (
    EXEC_TIMEOUT_RETURNCODE,
    ExecStartError,
    PodTarget,
    exec_in_pod,
    parse_exec_status,
)
from flowcheck.errors import ClusterError
from tests.cluster.fakes import ExecReply, FakeClock, FakeCluster, data

POD = PodTarget("tenant", "client", "probe")


def test_exit_status_from_recorded_error_channel_messages() -> None:
    assert parse_exec_status(data("exec-status-success.json")) == 0
    assert parse_exec_status(data("exec-status-exit-code.json")) == 2


def test_a_command_that_could_not_start_raises() -> None:
    with pytest.raises(ExecStartError, match=r'could not be run: Internal error occurred: .*"cilium-dbg": executable '
                                             r"file not found"):
        parse_exec_status(data("exec-status-start-failure.json"), "`cilium-dbg policy get`")
    with pytest.raises(ExecStartError, match="closed without an exit status"):
        parse_exec_status("")


@pytest.fixture
def cluster() -> FakeCluster:
    c = FakeCluster()
    c.add_pod("tenant", "client", {"app": "client"}, container="probe")
    return c


def test_stdin_is_written_then_closed_and_output_collected(cluster: FakeCluster) -> None:
    cluster.exec_handler = lambda ns, pod, container, argv, stdin: ExecReply(
        stdout='{"id": "1", "outcome": "ok"}\n', stderr="warning\n", status=data("exec-status-exit-code.json"))
    result = exec_in_pod(cluster.clients(), POD, ["python3", "/flowcheck/agent.py"], stdin='{"probes": []}',
                         timeout_s=10)
    assert (result.returncode, result.stdout, result.stderr) == (2, '{"id": "1", "outcome": "ok"}\n', "warning\n")
    (call,) = cluster.exec_calls
    assert call["command"] == ["python3", "/flowcheck/agent.py"] and call["container"] == "probe"
    assert call["stdin"] == '{"probes": []}' and call["stdin_closed"] and call["closed"]


def test_without_stdin_no_stdin_stream_is_requested(cluster: FakeCluster) -> None:
    cluster.exec_handler = lambda *a: ExecReply(stdout="'42'")
    result = exec_in_pod(cluster.clients(), POD, ["cilium-dbg", "policy", "get"], timeout_s=10)
    assert result.returncode == 0 and result.stdout == "'42'"
    assert cluster.exec_calls[0]["stdin_enabled"] is False


def test_the_v4_protocol_cannot_close_stdin_so_it_is_refused(cluster: FakeCluster) -> None:
    cluster.exec_subprotocol = "v4.channel.k8s.io"
    cluster.exec_handler = lambda *a: ExecReply()
    with pytest.raises(ExecStartError, match=r"negotiated the v4.channel.k8s.io exec protocol.*v5.channel.k8s.io"):
        exec_in_pod(cluster.clients(), POD, ["python3", "/flowcheck/agent.py"], stdin="{}", timeout_s=10)
    assert cluster.exec_calls[0]["closed"]


def test_a_command_outliving_the_timeout_is_abandoned_with_124(cluster: FakeCluster) -> None:
    clock = FakeClock()
    cluster.exec_handler = lambda *a: ExecReply(never_finishes=True)

    original_update = None

    def ticking_stream(*args: Any, **kwargs: Any) -> Any:
        nonlocal original_update
        resp = cluster.stream(*args, **kwargs)
        original_update = resp.update

        def update(timeout: float = 0) -> None:
            assert original_update is not None
            original_update(timeout)
            clock.advance(timeout)  # a real update() blocks up to `timeout`

        resp.update = update  # type: ignore[method-assign]
        return resp

    clients = cluster.clients()
    clients = KubeClients(clients.core, clients.apps, clients.networking, clients.custom, clients.watch, ticking_stream)
    result = exec_in_pod(clients, POD, ["python3", "/flowcheck/agent.py"], stdin="{}", timeout_s=3, clock=clock)
    assert result.returncode == EXEC_TIMEOUT_RETURNCODE
    assert "did not finish within 3 s and was abandoned" in result.stderr
    assert cluster.exec_calls[0]["closed"]


def test_exec_in_a_missing_pod_is_a_start_error(cluster: FakeCluster) -> None:
    cluster.exec_handler = lambda *a: ExecReply()
    with pytest.raises(ExecStartError, match=r'cannot exec .* in pod tenant/gone: 404 NotFound: pods "gone" not found'):
        exec_in_pod(cluster.clients(), PodTarget("tenant", "gone"), ["true"], timeout_s=1)
    assert issubclass(ExecStartError, ClusterError)


# ---------------------------------------------------------------------------------------------
# Contract test with the real kubernetes client


class FakeWebSocket:
    """The socket under ``WSClient``: frames in, frames out, readable via a real socketpair for poll()."""

    def __init__(self, url: str, headers: Any, subprotocol: str, program: Any) -> None:
        self.url = url
        self.headers = headers
        self.subprotocol = subprotocol
        self.connected = True
        self.sock, self._wake = socket.socketpair()
        self._frames: deque[tuple[int, bytes]] = deque()
        self.sent: list[tuple[int, bytes]] = []
        self._program = program

    def getheaders(self) -> dict[str, str]:
        return {}

    def push(self, opcode: int, payload: bytes) -> None:
        self._frames.append((opcode, payload))
        self._wake.send(b"x")

    def recv_data_frame(self, control_frame: bool = True) -> tuple[int, Any]:
        self.sock.recv(1)
        opcode, payload = self._frames.popleft()
        return opcode, SimpleNamespace(data=payload)

    def send(self, payload: bytes | str, opcode: int = ABNF.OPCODE_TEXT) -> None:
        raw = payload if isinstance(payload, bytes) else payload.encode()
        self.sent.append((opcode, raw))
        if raw == bytes([255, 0]):  # v5 CLOSE frame for channel 0: the program sees EOF and runs
            stdin = b"".join(p[1:] for _, p in self.sent if p[:1] == b"\x00")
            stdout, stderr, status = self._program(stdin)
            # output split across frames, as long outputs arrive
            for chunk in (stdout[: len(stdout) // 2], stdout[len(stdout) // 2:]):
                self.push(ABNF.OPCODE_BINARY, b"\x01" + chunk)
            self.push(ABNF.OPCODE_BINARY, b"\x02" + stderr)
            self.push(ABNF.OPCODE_BINARY, b"\x03" + status)
            self.push(ABNF.OPCODE_CLOSE, b"")

    def close(self, **kwargs: Any) -> None:
        self.connected = False
        self.sock.close()
        self._wake.close()


def _real_clients() -> KubeClients:
    api = client.ApiClient(client.Configuration(host="https://127.0.0.1:6443"))
    return KubeClients(core=client.CoreV1Api(api), apps=None, networking=None, custom=None, watch=lambda: None,
                       stream=stream.stream)


def test_contract_real_stream_and_wsclient(monkeypatch: pytest.MonkeyPatch) -> None:
    sockets: list[FakeWebSocket] = []

    def agent(stdin: bytes) -> tuple[bytes, bytes, bytes]:
        assert stdin == b'{"timeout": 2.0, "probes": [{"id": "1"}]}'
        lines = "".join(f'{{"id": "{i}", "outcome": "timeout", "elapsed": 2.0}}\n' for i in range(200))
        return lines.encode(), "ünïcode warning\n".encode(), data("exec-status-exit-code.json").strip().encode()

    def create_websocket(configuration: Any, url: str, headers: Any = None) -> FakeWebSocket:
        ws = FakeWebSocket(url, headers, "v5.channel.k8s.io", agent)
        sockets.append(ws)
        return ws

    monkeypatch.setattr(ws_client, "create_websocket", create_websocket)
    result = exec_in_pod(_real_clients(), POD, ["python3", "/flowcheck/agent.py"],
                         stdin='{"timeout": 2.0, "probes": [{"id": "1"}]}', timeout_s=10)
    assert result.returncode == 2
    assert result.stdout.count("\n") == 200 and result.stdout.startswith('{"id": "0", "outcome": "timeout"')
    assert result.stderr == "ünïcode warning\n"
    (ws,) = sockets
    url = urlparse(ws.url)
    assert (url.scheme, url.path) == ("wss", "/api/v1/namespaces/tenant/pods/client/exec")
    assert parse_qs(url.query) == {"command": ["python3", "/flowcheck/agent.py"], "container": ["probe"],
                                   "stdin": ["true"], "stdout": ["true"], "stderr": ["true"], "tty": ["false"]}
    assert ws.sent[-1] == (ABNF.OPCODE_BINARY, bytes([255, 0]))  # stdin closed with the v5 CLOSE frame
    assert not ws.connected


def test_contract_success_status_and_v4_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    protocol = {"name": "v5.channel.k8s.io"}

    def create_websocket(configuration: Any, url: str, headers: Any = None) -> FakeWebSocket:
        return FakeWebSocket(url, headers, protocol["name"],
                             lambda stdin: (b"ok\n", b"", data("exec-status-success.json").strip().encode()))

    monkeypatch.setattr(ws_client, "create_websocket", create_websocket)
    ok = exec_in_pod(_real_clients(), POD, ["python3", "/flowcheck/agent.py"], stdin="{}", timeout_s=10)
    assert (ok.returncode, ok.stdout) == (0, "ok\n")
    protocol["name"] = "v4.channel.k8s.io"
    with pytest.raises(ExecStartError, match=r"v4\.channel\.k8s\.io"):
        exec_in_pod(_real_clients(), POD, ["python3", "/flowcheck/agent.py"], stdin="{}", timeout_s=10)


def test_a_stream_that_breaks_midway_is_a_cluster_error(cluster: FakeCluster) -> None:
    cluster.exec_handler = lambda *a: ExecReply()
    clients = cluster.clients()

    def breaking_stream(*args: Any, **kwargs: Any) -> Any:
        resp = clients.stream(*args, **kwargs)

        def update(timeout: float = 0) -> None:
            raise ConnectionResetError("Connection reset by peer")

        resp.update = update
        return resp

    broken = KubeClients(clients.core, clients.apps, clients.networking, clients.custom, clients.watch, breaking_stream)
    with pytest.raises(ClusterError, match=r"the exec stream of .* broke: ConnectionResetError") as err:
        exec_in_pod(broken, POD, ["python3", "/flowcheck/agent.py"], stdin="{}", timeout_s=5)
    assert not isinstance(err.value, ExecStartError)  # the agent had started: not a start failure
    assert cluster.exec_calls[0]["closed"]
