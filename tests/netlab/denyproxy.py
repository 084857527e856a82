"""A tiny stand-in for Cilium's Envoy L7 policy: forwards allowed HTTP methods, answers the rest with
Envoy's 403.

Run as ``python denyproxy.py --listen 8080 --upstream HOST:PORT [--allow GET,HEAD]`` inside a lab pod.
A request whose method is allowed is forwarded to the upstream (the real probe server) and its answer
relayed back unchanged; any other method gets exactly what Cilium's proxy sends on an L7 denial:
``HTTP/1.1 403 Forbidden`` with ``content-length: 15``, ``content-type: text/plain``, ``server: envoy``
and the body ``Access denied\\r\\n`` (cilium/proxy ``cilium/l7policy.cc``: ``denied_403_body`` defaults
to "Access denied" and CRLF is appended; header set as shown in Cilium's docs, "default-deny ingress
policy" service-mesh page). So the probe tests see the same bytes a pod behind Cilium would.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

DENIED = (
    b"HTTP/1.1 403 Forbidden\r\n"
    b"content-length: 15\r\n"
    b"content-type: text/plain\r\n"
    b"date: Thu, 01 Jan 2026 00:00:00 GMT\r\n"
    b"server: envoy\r\n"
    b"connection: close\r\n"
    b"\r\n"
    b"Access denied\r\n"
)


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, upstream: tuple[str, int],
                 allow: set[str]) -> None:
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        method = head.split(b" ", 1)[0].decode("latin-1")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        body = await reader.readexactly(length) if length else b""
        if method not in allow:
            writer.write(DENIED)
            await writer.drain()
            return
        up_reader, up_writer = await asyncio.open_connection(*upstream)
        up_writer.write(head + body)
        await up_writer.drain()
        writer.write(await up_reader.read())  # the agent asks for Connection: close, so read to EOF
        await writer.drain()
        up_writer.close()
    except (TimeoutError, OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def serve(listen: int, upstream: tuple[str, int], allow: set[str]) -> None:
    server = await asyncio.start_server(lambda r, w: handle(r, w, upstream, allow), "0.0.0.0", listen)
    stop = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, lambda: stop.done() or stop.set_result(None))
    print('{"event":"ready"}', file=sys.stderr, flush=True)
    await stop
    server.close()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="HOST:PORT of the real server")
    parser.add_argument("--allow", default="GET", help="comma-separated methods forwarded to the upstream")
    args = parser.parse_args()
    host, _, port = args.upstream.rpartition(":")
    asyncio.run(serve(args.listen, (host, int(port)), set(args.allow.split(","))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
