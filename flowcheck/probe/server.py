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

One JSON log line per request (and one ``ready`` line once every port is bound) on stderr. SIGTERM and
SIGINT stop it cleanly with exit status 0; a port that cannot be bound is exit status 1; bad arguments 2.
Every socket binds to all addresses (IPv6 dual-stack where available, else IPv4).

Robustness: it is a target for probes that may be cut off at any moment, so each connection has an idle
timeout, request heads and bodies are size-limited, and a malformed request gets a ``400`` and a closed
connection -- never a crash or a stuck event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import signal
import socket
import sys
import time
from typing import Any, Dict, List, Optional, Tuple, cast

IDLE_TIMEOUT_S = 30.0  # a client that sends nothing for this long is dropped
MAX_HEAD_BYTES = 65536
MAX_BODY_BYTES = 1 << 20
MAX_ECHO_PAYLOAD_BYTES = 8192
LISTEN_BACKLOG = 1024  # probe agents open hundreds of connections at once
HTTP_TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


class BadRequest(Exception):
    pass


def log(event: Dict[str, Any]) -> None:
    line = {"t": round(time.time(), 3)}
    line.update(event)
    try:
        sys.stderr.write(json.dumps(line, separators=(",", ":")) + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):  # a closed stderr must not take the server down
        pass


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


def _peer(writer: asyncio.StreamWriter) -> str:
    return _endpoint(writer.get_extra_info("peername"))


class Server:
    def __init__(self, name: str) -> None:
        self.name = name
        # Open HTTP connections, so a shutdown can close them: a handler then ends on its own. (Cancelling
        # handler tasks instead makes asyncio's stream protocol log a spurious traceback.)
        self.open_connections: Dict[asyncio.Task[Any], asyncio.StreamWriter] = {}

    # -- HTTP -----------------------------------------------------------------------------------------

    async def handle_http(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        port = writer.get_extra_info("sockname")[1]
        client = _peer(writer)
        self._track(writer)
        try:
            while True:
                try:
                    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), IDLE_TIMEOUT_S)
                except asyncio.IncompleteReadError as exc:
                    if exc.partial.strip():
                        await self._bad_request(writer, port, client, "connection closed mid-request")
                    return
                except asyncio.LimitOverrunError:
                    await self._bad_request(writer, port, client, "request head too large")
                    return
                except asyncio.TimeoutError:
                    log({"server": self.name, "proto": "http", "port": port, "client": client,
                         "event": "idle-timeout"})
                    return
                try:
                    method, path, version, headers = parse_request_head(head)
                    body_bytes = await self._read_body(reader, headers)
                except BadRequest as exc:
                    await self._bad_request(writer, port, client, str(exc))
                    return
                keep_alive = wants_keep_alive(version, headers) and method != "CONNECT"
                document = {"server": self.name, "method": method, "path": path, "headers": headers,
                            "client": _host(writer.get_extra_info("peername")), "body_bytes": body_bytes}
                body = json.dumps(document, separators=(",", ":")).encode("utf-8")
                response = [
                    "HTTP/1.1 200 OK",
                    "Content-Type: application/json",
                    "Content-Length: %d" % len(body),
                    "Server: flowcheck-probe-server",
                    "Connection: %s" % ("keep-alive" if keep_alive else "close"),
                ]
                # Logged before answering, so a client holding the answer can rely on the log line.
                log({"server": self.name, "proto": "http", "port": port, "client": client, "method": method,
                     "path": path, "status": 200, "headers": headers, "body_bytes": body_bytes})
                writer.write(("\r\n".join(response) + "\r\n\r\n").encode("ascii"))
                if method != "HEAD":
                    writer.write(body)
                await writer.drain()
                if not keep_alive:
                    return
        except (ConnectionError, OSError, asyncio.TimeoutError) as exc:
            log({"server": self.name, "proto": "http", "port": port, "client": client,
                 "event": "connection-error", "detail": str(exc) or type(exc).__name__})
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _read_body(self, reader: asyncio.StreamReader, headers: Dict[str, str]) -> int:
        lower = {name.lower(): value for name, value in headers.items()}
        if "chunked" in lower.get("transfer-encoding", "").lower():
            total = 0
            while True:
                line = await asyncio.wait_for(reader.readline(), IDLE_TIMEOUT_S)
                try:
                    size = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise BadRequest("malformed chunk size") from None
                total += size
                if total > MAX_BODY_BYTES:
                    raise BadRequest("request body too large")
                try:
                    await asyncio.wait_for(reader.readexactly(size + 2), IDLE_TIMEOUT_S)
                except asyncio.IncompleteReadError:
                    raise BadRequest("connection closed mid-body") from None
                if size == 0:
                    return total
        if "content-length" not in lower:
            return 0
        try:
            length = int(lower["content-length"])
        except ValueError:
            raise BadRequest("malformed Content-Length") from None
        if not 0 <= length <= MAX_BODY_BYTES:
            raise BadRequest("request body too large or negative")
        try:
            await asyncio.wait_for(reader.readexactly(length), IDLE_TIMEOUT_S)
        except asyncio.IncompleteReadError:
            raise BadRequest("connection closed mid-body") from None
        return length

    async def _bad_request(self, writer: asyncio.StreamWriter, port: int, client: str, reason: str) -> None:
        body = json.dumps({"server": self.name, "error": "bad request: " + reason}).encode("utf-8")
        head = "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: %d\r\n" \
               "Connection: close\r\n\r\n" % len(body)
        with contextlib.suppress(ConnectionError, OSError):
            writer.write(head.encode("ascii") + body)
            await asyncio.wait_for(writer.drain(), 5.0)
        log({"server": self.name, "proto": "http", "port": port, "client": client, "status": 400, "detail": reason})

    # -- TCP and UDP ----------------------------------------------------------------------------------

    async def handle_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        log({"server": self.name, "proto": "tcp", "port": writer.get_extra_info("sockname")[1],
             "client": _peer(writer), "event": "accepted"})
        with contextlib.suppress(Exception):
            writer.close()

    def _track(self, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self.open_connections[task] = writer
            task.add_done_callback(lambda done: self.open_connections.pop(done, None))

    async def close_connections(self, timeout_s: float) -> None:
        for writer in list(self.open_connections.values()):
            transport = writer.transport
            if isinstance(transport, asyncio.WriteTransport):
                transport.abort()
        if self.open_connections:
            _, pending = await asyncio.wait(list(self.open_connections), timeout=timeout_s)
            for task in pending:
                task.cancel()


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


class EchoProtocol(asyncio.DatagramProtocol):
    def __init__(self, name: str, port: int) -> None:
        self.name = name
        self.port = port
        self.transport: Optional[asyncio.DatagramTransport] = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Tuple[Any, ...]) -> None:
        payload = data[:MAX_ECHO_PAYLOAD_BYTES].decode("utf-8", "replace")
        reply = json.dumps({"server": self.name, "payload": payload}, separators=(",", ":")).encode("utf-8")
        log({"server": self.name, "proto": "udp", "port": self.port, "client": _endpoint(addr),
             "bytes": len(data)})
        if self.transport is not None:
            self.transport.sendto(reply, addr)

    def error_received(self, exc: Exception) -> None:
        log({"server": self.name, "proto": "udp", "port": self.port, "event": "error", "detail": str(exc)})


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


async def serve(args: argparse.Namespace) -> int:
    loop = asyncio.get_running_loop()
    server = Server(args.name)
    stop: asyncio.Future[int] = loop.create_future()

    def request_stop(signum: int) -> None:
        if not stop.done():
            stop.set_result(signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, request_stop, signum)
    listeners: List[asyncio.AbstractServer] = []
    transports: List[asyncio.BaseTransport] = []
    try:
        for port in args.http:
            listeners.append(await asyncio.start_server(
                server.handle_http, sock=bind_socket(port, socket.SOCK_STREAM), limit=MAX_HEAD_BYTES,
                backlog=LISTEN_BACKLOG))
        for port in args.tcp:
            listeners.append(await asyncio.start_server(
                server.handle_tcp, sock=bind_socket(port, socket.SOCK_STREAM), backlog=LISTEN_BACKLOG))
        for port in args.udp:
            endpoint, _ = await loop.create_datagram_endpoint(
                functools.partial(EchoProtocol, args.name, port), sock=bind_socket(port, socket.SOCK_DGRAM))
            transports.append(endpoint)
    except OSError as exc:
        log({"server": args.name, "event": "bind-failed", "detail": str(exc)})
        for listener in listeners:
            listener.close()
        for transport in transports:
            transport.close()
        return 1
    log({"server": args.name, "event": "ready", "http": args.http, "tcp": args.tcp, "udp": args.udp})
    stopped_by = await stop
    for listener in listeners:
        listener.close()
    for transport in transports:
        transport.close()
    await server.close_connections(timeout_s=2.0)
    log({"server": args.name, "event": "stopped", "signal": signal.Signals(stopped_by).name})
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(serve(args))
    finally:
        loop.close()


if __name__ == "__main__":
    sys.exit(main())
