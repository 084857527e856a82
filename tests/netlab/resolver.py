"""A small DNS server for the probe tests, answering with the rcode its query name asks for.

Run as ``python resolver.py [--port 53] [--address 0.0.0.0]`` (UDP and TCP on the same port) inside a
lab pod, or in-process with ``start_resolver``. Built on ``dnslib`` (a dev dependency), so the agent's
hand-written DNS client is checked against an independent implementation.

The first label of the query name picks the answer, so one resolver covers every case a probe must
report exactly:

- ``refused.*``  → REFUSED (what Cilium's DNS proxy answers a denied query)
- ``nxdomain.*`` → NXDOMAIN
- ``servfail.*`` → SERVFAIL
- anything else  → NOERROR with an A (192.0.2.10), AAAA (2001:db8::10) or TXT ("flowcheck") answer

Run as a program it logs one JSON line per query on stderr, with the client's address and port
(``{"event": "query", "transport": "udp", "client": "198.18.1.2:40100", "name": "api.lab."}``), like the
probe server does, so tests can check the source port a DNS probe reports against what the server saw.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

from dnslib import AAAA, QTYPE, RCODE, RR, TXT, A, DNSRecord
from dnslib.server import BaseResolver, DNSLogger, DNSServer

ANSWER_A = "192.0.2.10"  # RFC 5737 documentation address: data only, never contacted
ANSWER_AAAA = "2001:db8::10"  # RFC 3849 documentation prefix
ANSWER_TXT = "flowcheck"
RCODE_BY_LABEL = {"refused": RCODE.REFUSED, "nxdomain": RCODE.NXDOMAIN, "servfail": RCODE.SERVFAIL}


class RcodeByNameResolver(BaseResolver):
    def resolve(self, request: DNSRecord, handler: Any) -> DNSRecord:
        reply = request.reply()
        qname = request.q.qname
        first = str(qname).split(".", 1)[0].lower()
        if first in RCODE_BY_LABEL:
            reply.header.rcode = RCODE_BY_LABEL[first]
            return reply
        qtype = QTYPE[request.q.qtype]
        if qtype == "A":
            reply.add_answer(RR(qname, QTYPE.A, rdata=A(ANSWER_A), ttl=30))
        elif qtype == "AAAA":
            reply.add_answer(RR(qname, QTYPE.AAAA, rdata=AAAA(ANSWER_AAAA), ttl=30))
        elif qtype == "TXT":
            reply.add_answer(RR(qname, QTYPE.TXT, rdata=TXT(ANSWER_TXT), ttl=30))
        return reply


class QueryLogger(DNSLogger):
    """Hands one dict per query (transport, client ``ip:port``, name) to ``write``; logs nothing else."""

    def __init__(self, write: Callable[[dict[str, Any]], None]) -> None:
        super().__init__(log="request", prefix=False)  # every other hook becomes a no-op
        self.write = write

    def log_request(self, handler: Any, request: DNSRecord) -> None:
        host, port = handler.client_address[:2]
        self.write({"event": "query", "transport": handler.protocol, "client": f"{host}:{port}",
                    "name": str(request.q.qname)})


_STDERR_LOCK = threading.Lock()  # the UDP and TCP servers log from two threads: one whole line at a time


def _print_json(entry: dict[str, Any]) -> None:
    with _STDERR_LOCK:
        sys.stderr.write(json.dumps(entry, separators=(",", ":")) + "\n")
        sys.stderr.flush()


def start_resolver(port: int, address: str = "0.0.0.0",
                   log: Callable[[dict[str, Any]], None] | None = None) -> list[DNSServer]:
    """Start UDP and TCP servers in background threads; stop them with ``server.stop()``.

    ``log`` gets one dict per query (see ``QueryLogger``); without it nothing is logged.
    """
    logger = QueryLogger(log) if log is not None else DNSLogger(
        log="-request,-reply,-truncated,-error,-recv,-send,-data", prefix=False)
    servers = [DNSServer(RcodeByNameResolver(), address=address, port=port, tcp=tcp, logger=logger)
               for tcp in (False, True)]
    for server in servers:
        server.start_thread()
    return servers


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=53)
    parser.add_argument("--address", default="0.0.0.0")
    args = parser.parse_args()
    servers = start_resolver(args.port, args.address, log=_print_json)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print('{"event":"ready"}', file=sys.stderr, flush=True)
    stop.wait()
    for server in servers:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
