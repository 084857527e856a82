"""The probe server: the stand-in application every probe pod runs, so a probe can tell *who* answered.

Shipped into probe pods next to the agent and started as
``python3 server.py --name NAME [--http 8080,9090] [--tcp 9000] [--udp 81,5353]`` (contract:
docs/contracts.md, "The probe server"), so it is
**standard library only and runs under any Python >= 3.9**.

- HTTP, on every ``--http`` port: **any** method and path gets ``200`` and a JSON body
  ``{"server": NAME, "method": ..., "path": ..., "headers": {...}, "client": ...}``. The server never
  answers anything but 200 to a well-formed request, so a 403 (or any other status) can only come from
  something in between -- Cilium's Envoy -- and the ``server`` key proves the real application answered.
  ``headers`` are the request headers as received (names as sent; repeated names joined with ", "),
  which lets tests prove that headers arrive as the probe sent them.
- TCP, on every ``--tcp`` port: accept and close (a plain L4 target).
- UDP, on every ``--udp`` port: echo ``{"server": NAME, "payload": ...}`` back to the sender.

One JSON log line per request (and one ``ready`` line once every port is bound) on stderr, naming the
peer as ``"client": "ip:port"`` -- the source address and port the probe agent reports (``saddr``,
``sport``), so a request can be matched to the probe that made it. A request is logged before it is
answered, so a client holding the answer can rely on the log line. SIGTERM and SIGINT stop it cleanly
with exit status 0; a port that cannot be bound is exit status 1; bad arguments 2. Every socket binds to
all addresses (IPv6 dual-stack where available, else IPv4).

Robustness: it is a target for probes that may be cut off at any moment, so each connection has an idle
timeout, request heads and bodies are size-limited, and a malformed request gets a ``400`` and a closed
connection -- never a crash or a stuck event loop.

Why one ``select.poll`` loop over non-blocking sockets and not asyncio: a probe round sends every server
a burst of connections at once (in the netns lab and on a kind node, all servers share the same few
cores with the agents probing them), and asyncio's streams cost ~250 µs of CPU per HTTP request here
(a task, a stream reader and writer, ``wait_for`` timers and socket enum conversions per connection);
this loop does the same work in a fraction of that (``benchmarks/probe_matrix.py``). Log lines of the
requests handled in one loop turn are written together, then the answers go out.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import select
import signal
import socket
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

IDLE_TIMEOUT_S = 30.0  # a client that sends nothing (or reads nothing) for this long is dropped
IDLE_SWEEP_S = 1.0  # how often idle connections are looked for
MAX_HEAD_BYTES = 65536
MAX_BODY_BYTES = 1 << 20
MAX_CHUNK_LINE_BYTES = 1024
MAX_ECHO_PAYLOAD_BYTES = 8192
LISTEN_BACKLOG = 1024  # probe agents open hundreds of connections at once
RECV_BYTES = 65536
HTTP_TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
READABLE = select.POLLIN | select.POLLPRI | select.POLLHUP | select.POLLERR
WRITABLE = select.POLLOUT | select.POLLHUP | select.POLLERR


class BadRequest(Exception):
    pass


_json = json.JSONEncoder(separators=(",", ":")).encode  # built once: json.dumps builds one per call


def bind_socket(port: int, socktype: int) -> socket.socket:
    """A socket bound to every address: IPv6 dual-stack if the host has IPv6, else IPv4."""
    if socket.has_ipv6:
        sock = socket.socket(socket.AF_INET6, socktype)
        try:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("::", port))
        except OSError:
            sock.close()  # IPv6 disabled here (or the port is taken: the IPv4 bind will say so)
        else:
            return sock
    sock = socket.socket(socket.AF_INET, socktype)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("0.0.0.0", port))
    except OSError:
        sock.close()
        raise
    return sock


def _host(address: Any) -> str:
    """The client's IP as text; IPv4 clients of a dual-stack socket show as plain IPv4."""
    host = str(address[0]) if address else "?"
    return host[7:] if host.startswith("::ffff:") else host


def _endpoint(address: Any) -> str:
    host = _host(address)
    port = address[1] if address else "?"
    return "[%s]:%s" % (host, port) if ":" in host else "%s:%s" % (host, port)


def parse_request_head(head: bytes) -> Tuple[str, str, str, Dict[str, str]]:
    try:
        text = head.decode("latin-1")
    except UnicodeDecodeError:  # latin-1 decodes every byte; kept for clarity
        raise BadRequest("undecodable request head") from None
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        raise BadRequest("malformed request line")
    method, path, version = parts
    if not method or not set(method) <= HTTP_TOKEN_CHARS:
        raise BadRequest("malformed method")
    if not path or not version.startswith("HTTP/1."):
        raise BadRequest("malformed request line")
    headers: Dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or not set(name) <= HTTP_TOKEN_CHARS:
            raise BadRequest("malformed header line")
        value = value.strip()
        headers[name] = headers[name] + ", " + value if name in headers else value
    return method, path, version, headers


def wants_keep_alive(version: str, headers: Dict[str, str]) -> bool:
    connection = ""
    for name, value in headers.items():
        if name.lower() == "connection":
            connection = value.lower()
    if version == "HTTP/1.0":
        return "keep-alive" in connection
    return "close" not in connection


class HttpRequest:
    """A request whose head has been read; its body is being counted (and discarded)."""

    __slots__ = ("body_bytes", "chunk_left", "chunked", "headers", "keep_alive", "last_chunk", "length_left",
                 "method", "path")

    def __init__(self, method: str, path: str, version: str, headers: Dict[str, str]) -> None:
        self.method = method
        self.path = path
        self.headers = headers
        self.keep_alive = wants_keep_alive(version, headers) and method != "CONNECT"
        lower = {name.lower(): value for name, value in headers.items()}
        self.chunked = "chunked" in lower.get("transfer-encoding", "").lower()
        self.body_bytes = 0
        self.chunk_left = -1  # chunked: bytes of the current chunk (+ its CRLF) still to come; -1: a size line
        self.last_chunk = False
        self.length_left = 0  # not chunked: body bytes still to come
        if not self.chunked and "content-length" in lower:
            try:
                self.length_left = int(lower["content-length"])
            except ValueError:
                raise BadRequest("malformed Content-Length") from None
            if not 0 <= self.length_left <= MAX_BODY_BYTES:
                raise BadRequest("request body too large or negative")
            self.body_bytes = self.length_left

    def consume_body(self, buffer: bytearray) -> bool:
        """Take body bytes from the front of ``buffer``; True once the whole body is in."""
        if not self.chunked:
            taken = min(self.length_left, len(buffer))
            del buffer[:taken]
            self.length_left -= taken
            return self.length_left == 0
        while True:
            if self.chunk_left < 0:
                end = buffer.find(b"\n")
                if end < 0:
                    if len(buffer) > MAX_CHUNK_LINE_BYTES:
                        raise BadRequest("malformed chunk size")
                    return False
                try:
                    size = int(bytes(buffer[:end]).split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise BadRequest("malformed chunk size") from None
                del buffer[:end + 1]
                if size < 0:
                    raise BadRequest("malformed chunk size")
                self.body_bytes += size
                if self.body_bytes > MAX_BODY_BYTES:
                    raise BadRequest("request body too large")
                self.chunk_left = size + 2  # the chunk and its CRLF (the last chunk: just the final CRLF)
                self.last_chunk = size == 0
            taken = min(self.chunk_left, len(buffer))
            del buffer[:taken]
            self.chunk_left -= taken
            if self.chunk_left:
                return False
            self.chunk_left = -1
            if self.last_chunk:
                return True


class Connection:
    """One accepted HTTP connection: what has been read, what is still to be written."""

    __slots__ = ("client", "client_host", "eof", "fd", "idle_since", "inbox", "outbox", "port", "request",
                 "sock", "then_close", "watching")

    def __init__(self, sock: socket.socket, address: Any, port: int) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.port = port
        self.client = _endpoint(address)
        self.client_host = _host(address)
        self.inbox = bytearray()
        self.outbox = bytearray()
        self.request: Optional[HttpRequest] = None
        self.eof = False
        self.then_close = False
        self.idle_since = time.monotonic()
        self.watching = 0


class Server:
    """Every listening socket and open connection of one server process, driven by one poll loop."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.poller = select.poll()
        self.handlers: Dict[int, Callable[[int], None]] = {}  # fd -> what to do when it is ready
        self.connections: Dict[int, Connection] = {}
        self.listeners: List[socket.socket] = []
        self.log_lines: List[str] = []  # written together once per loop turn, before the answers go out
        self.after_log: List[Callable[[], None]] = []  # answers (and closes) waiting for their log lines
        self.stop_signal = 0

    # -- logging --------------------------------------------------------------------------------------

    def log(self, event: Dict[str, Any]) -> None:
        line: Dict[str, Any] = {"t": round(time.time(), 3), "server": self.name}
        line.update(event)
        self.log_lines.append(_json(line) + "\n")

    def flush_log(self) -> None:
        if self.log_lines:
            text = "".join(self.log_lines)
            del self.log_lines[:]
            try:
                sys.stderr.write(text)
                sys.stderr.flush()
            except (OSError, ValueError):  # a closed stderr must not take the server down
                pass

    # -- set-up ---------------------------------------------------------------------------------------

    def _watch(self, fd: int, events: int, handler: Callable[[int], None]) -> None:
        self.poller.register(fd, events)
        self.handlers[fd] = handler

    def _forget(self, fd: int) -> None:
        if self.handlers.pop(fd, None) is not None:
            self.poller.unregister(fd)

    def listen(self, port: int, proto: str) -> None:
        """Bind ``port`` for ``proto`` (http, tcp or udp); raises OSError when it cannot be bound."""
        if proto == "udp":
            sock = bind_socket(port, socket.SOCK_DGRAM)
            sock.setblocking(False)
            self.listeners.append(sock)
            self._watch(sock.fileno(), READABLE, lambda _events: self._udp_ready(sock, port))
            return
        sock = bind_socket(port, socket.SOCK_STREAM)
        self.listeners.append(sock)
        sock.listen(LISTEN_BACKLOG)
        sock.setblocking(False)
        if proto == "http":
            self._watch(sock.fileno(), READABLE, lambda _events: self._accept(sock, port, self._open_http))
        else:
            self._watch(sock.fileno(), READABLE, lambda _events: self._accept(sock, port, self._accepted_tcp))

    def watch_wakeup(self, fd: int) -> None:
        self._watch(fd, READABLE, lambda _events: self._drain_wakeup(fd))

    def _drain_wakeup(self, fd: int) -> None:
        try:
            while os.read(fd, 512):
                pass
        except OSError:
            pass

    # -- TCP and UDP ----------------------------------------------------------------------------------

    def _accept(self, listener: socket.socket, port: int, opened: Callable[[socket.socket, Any, int], None]) -> None:
        while True:
            try:
                sock, address = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. EMFILE: the others still get served; this one is logged
                self.log({"proto": "tcp", "port": port, "event": "accept-error", "detail": str(exc)})
                return
            opened(sock, address, port)

    def _accepted_tcp(self, sock: socket.socket, address: Any, port: int) -> None:
        self.log({"proto": "tcp", "port": port, "client": _endpoint(address), "event": "accepted"})
        self.after_log.append(sock.close)

    def _udp_ready(self, sock: socket.socket, port: int) -> None:
        while True:
            try:
                data, address = sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # an ICMP error for an earlier reply
                self.log({"proto": "udp", "port": port, "event": "error", "detail": str(exc)})
                continue
            payload = data[:MAX_ECHO_PAYLOAD_BYTES].decode("utf-8", "replace")
            reply = _json({"server": self.name, "payload": payload}).encode("utf-8")
            self.log({"proto": "udp", "port": port, "client": _endpoint(address), "bytes": len(data)})
            self.after_log.append(functools.partial(self._send_datagram, sock, port, reply, address))

    def _send_datagram(self, sock: socket.socket, port: int, reply: bytes, address: Any) -> None:
        try:
            sock.sendto(reply, address)
        except OSError as exc:  # UDP: a reply that cannot go out now is lost, as on any network
            self.log({"proto": "udp", "port": port, "event": "error", "detail": str(exc)})

    # -- HTTP -----------------------------------------------------------------------------------------

    def _open_http(self, sock: socket.socket, address: Any, port: int) -> None:
        sock.setblocking(False)
        conn = Connection(sock, address, port)
        self.connections[conn.fd] = conn
        self._set_watch(conn, READABLE)
        self.handlers[conn.fd] = lambda events: self._http_ready(conn, events)
        self._http_ready(conn, 0)  # a client sends its request right away: it is often here already

    def _set_watch(self, conn: Connection, events: int) -> None:
        if conn.watching != events:
            if conn.watching:
                self.poller.modify(conn.fd, events)
            else:
                self.poller.register(conn.fd, events)
            conn.watching = events

    def _http_ready(self, conn: Connection, events: int) -> None:
        if conn.outbox:
            self._write(conn)
            return
        try:
            data = conn.sock.recv(RECV_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._connection_error(conn, exc)
            return
        conn.idle_since = time.monotonic()
        if data:
            conn.inbox.extend(data)
        else:
            conn.eof = True
        self._serve(conn)

    def _serve(self, conn: Connection) -> None:
        """Answer every complete request in the connection's inbox (pipelining), then wait for more."""
        while not conn.outbox and not conn.then_close:
            try:
                if conn.request is None:
                    end = conn.inbox.find(b"\r\n\r\n")
                    if end < 0:
                        if len(conn.inbox) > MAX_HEAD_BYTES:
                            raise BadRequest("request head too large")
                        if conn.eof:
                            if bytes(conn.inbox).strip():
                                raise BadRequest("connection closed mid-request")
                            self._close(conn)
                        return
                    head = bytes(conn.inbox[:end + 4])
                    del conn.inbox[:end + 4]
                    conn.request = HttpRequest(*parse_request_head(head))
                if not conn.request.consume_body(conn.inbox):
                    if conn.eof:
                        raise BadRequest("connection closed mid-body")
                    return
            except BadRequest as exc:
                self._bad_request(conn, str(exc))
                return
            request, conn.request = conn.request, None
            self._answer(conn, request)

    def _answer(self, conn: Connection, request: HttpRequest) -> None:
        document = {"server": self.name, "method": request.method, "path": request.path,
                    "headers": request.headers, "client": conn.client_host, "body_bytes": request.body_bytes}
        body = _json(document).encode("utf-8")
        head = ("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                "Server: flowcheck-probe-server\r\nConnection: %s\r\n\r\n"
                % (len(body), "keep-alive" if request.keep_alive else "close"))
        self.log({"proto": "http", "port": conn.port, "client": conn.client, "method": request.method,
                  "path": request.path, "status": 200, "headers": request.headers,
                  "body_bytes": request.body_bytes})
        conn.outbox.extend(head.encode("ascii"))
        if request.method != "HEAD":
            conn.outbox.extend(body)
        conn.then_close = not request.keep_alive
        self.after_log.append(lambda: self._write(conn))

    def _bad_request(self, conn: Connection, reason: str) -> None:
        body = json.dumps({"server": self.name, "error": "bad request: " + reason}).encode("utf-8")
        head = "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: %d\r\n" \
               "Connection: close\r\n\r\n" % len(body)
        self.log({"proto": "http", "port": conn.port, "client": conn.client, "status": 400, "detail": reason})
        conn.outbox.extend(head.encode("ascii") + body)
        conn.then_close = True
        self.after_log.append(lambda: self._write(conn))

    def _write(self, conn: Connection) -> None:
        if self.connections.get(conn.fd) is not conn:  # closed meanwhile (its fd may be another's by now)
            return
        try:
            while conn.outbox:
                sent = conn.sock.send(conn.outbox)
                del conn.outbox[:sent]
                conn.idle_since = time.monotonic()
        except (BlockingIOError, InterruptedError):
            self._set_watch(conn, WRITABLE)
            return
        except OSError as exc:
            self._connection_error(conn, exc)
            return
        if conn.then_close:
            self._close(conn)
            return
        self._set_watch(conn, READABLE)
        self._serve(conn)  # a pipelined request may already be waiting in the inbox

    def _connection_error(self, conn: Connection, exc: OSError) -> None:
        self.log({"proto": "http", "port": conn.port, "client": conn.client, "event": "connection-error",
                  "detail": str(exc) or type(exc).__name__})
        self._close(conn)

    def _close(self, conn: Connection) -> None:
        if self.connections.get(conn.fd) is not conn:
            return
        del self.connections[conn.fd]
        self.handlers.pop(conn.fd, None)
        if conn.watching:
            self.poller.unregister(conn.fd)
        with contextlib.suppress(OSError):
            conn.sock.close()

    def _sweep_idle(self, now: float) -> None:
        for conn in list(self.connections.values()):
            if now - conn.idle_since > IDLE_TIMEOUT_S:
                self.log({"proto": "http", "port": conn.port, "client": conn.client, "event": "idle-timeout"})
                self._close(conn)

    # -- the loop -------------------------------------------------------------------------------------

    def run(self) -> None:
        """Serve until ``stop_signal`` is set (by a signal handler; the wake-up fd interrupts the poll)."""
        next_sweep = time.monotonic() + IDLE_SWEEP_S
        while not self.stop_signal:
            for fd, events in self.poller.poll(IDLE_SWEEP_S * 1000):
                handler = self.handlers.get(fd)
                if handler is not None:
                    handler(events)
            now = time.monotonic()
            if now >= next_sweep:
                self._sweep_idle(now)
                next_sweep = now + IDLE_SWEEP_S
            self.flush_log()
            while self.after_log:
                actions, self.after_log = self.after_log, []
                for action in actions:
                    action()
                self.flush_log()  # what those actions logged (errors, pipelined answers) before their answers

    def close(self) -> None:
        for conn in list(self.connections.values()):
            self._close(conn)
        for sock in self.listeners:
            self._forget(sock.fileno())
            sock.close()


def parse_ports(text: str) -> List[int]:
    ports = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        if not item.isdigit() or not 1 <= int(item) <= 65535:
            raise argparse.ArgumentTypeError("not a port number: %r" % item)
        ports.append(int(item))
    return ports


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="server.py",
                                     description="flowcheck probe server (docs/contracts.md, 'The probe server')")
    parser.add_argument("--name", required=True, help="the identity reported in every answer")
    parser.add_argument("--http", type=parse_ports, default=[], help="comma-separated HTTP ports")
    parser.add_argument("--tcp", type=parse_ports, default=[], help="comma-separated accept-and-close TCP ports")
    parser.add_argument("--udp", type=parse_ports, default=[], help="comma-separated UDP echo ports")
    args = parser.parse_args(argv)
    stream_ports = list(args.http) + list(args.tcp)
    if len(set(stream_ports)) != len(stream_ports):
        parser.error("a TCP port may serve either --http or --tcp, once")
    if len(set(args.udp)) != len(args.udp):
        parser.error("a UDP port is listed twice")
    if not stream_ports and not args.udp:
        parser.error("nothing to serve: give --http, --tcp and/or --udp ports")
    return args


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    server = Server(args.name)
    wakeup_read, wakeup_write = os.pipe()
    for fd in (wakeup_read, wakeup_write):
        os.set_blocking(fd, False)
    signal.set_wakeup_fd(wakeup_write)  # the signal's byte makes the poll return at once

    def request_stop(signum: int, _frame: Any) -> None:
        server.stop_signal = server.stop_signal or signum

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, request_stop)
    server.watch_wakeup(wakeup_read)
    try:
        for ports, proto in ((args.http, "http"), (args.tcp, "tcp"), (args.udp, "udp")):
            for port in ports:
                server.listen(port, proto)
    except OSError as exc:
        server.log({"event": "bind-failed", "detail": str(exc)})
        server.flush_log()
        server.close()
        return 1
    server.log({"event": "ready", "http": args.http, "tcp": args.tcp, "udp": args.udp})
    server.flush_log()
    try:
        server.run()
    finally:
        server.close()
    server.log({"event": "stopped", "signal": signal.Signals(server.stop_signal).name})
    server.flush_log()
    return 0


if __name__ == "__main__":
    sys.exit(main())
