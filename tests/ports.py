"""Free local ports for tests that start real servers.

A port is chosen by binding port 0 and releasing it. Ports a test needs together are chosen while the
earlier ones are still held: the kernel may hand a just-released port out again, and a server given the
same number for two listeners refuses to start (a CI run failed on exactly that).
"""

from __future__ import annotations

import socket
from contextlib import ExitStack


def free_ports(*kinds: int) -> tuple[int, ...]:
    """One free 127.0.0.1 port per socket kind given, all different for one kind."""
    with ExitStack() as held:
        ports = []
        for kind in kinds:
            sock = held.enter_context(socket.socket(socket.AF_INET, kind))
            sock.bind(("127.0.0.1", 0))
            ports.append(int(sock.getsockname()[1]))
        return tuple(ports)


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port nothing listens on now (bound once and released)."""
    return free_ports(kind)[0]
