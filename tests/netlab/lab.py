"""A network-namespace lab: "pods" that are network namespaces on one bridge, for real-socket probe tests.

Why: the probe agent's whole job is to tell a silent drop from an RST from an L7 denial on real packets,
so its tests need real kernels doing real drops -- not mocks. This lab gives each "pod" its own network
namespace, wires it to a shared bridge, starts the real ``server.py`` in it, and applies real nftables
rules (drop, reject with tcp reset, reject with ICMP unreachable) on the destination's input hook, the
way a network policy acts on a pod's ingress.

Layout (nothing is created in the caller's own network namespace, so the host is never touched and
parallel labs cannot collide on interface names or addresses)::

    <prefix>-hub     bridge br0, one port p<i> per pod (no address: the hub only switches)
    <prefix>-p<i>    the pod: lo + eth0 (veth to p<i>) with 198.18.1.<i+1>/16 (then 198.18.2.x, ...) and
                     MAC 02:66:63:00:<i>, no route beyond the lab subnet; nft table ``inet flowcheck_lab``
                     with chain ``ingress``

Addresses: 198.18.0.0/16, out of the RFC 2544 benchmarking range (198.18.0.0/15) -- reserved for network
test labs, never routed, and clear of the ranges kind/Cilium/Docker use (10.244/16, 10.96/12, 172.17/16,
192.168/16). Since every lab has its own hub namespace, parallel labs reuse the same addresses safely.
Names: ``fcl<pid>x<4 hex>-...``; the pid lets a later lab sweep namespaces left by a dead process.

Large labs: pods find each other by ARP, and the kernel's neighbour table is *shared by every network
namespace* (``net.ipv4.neigh.default.gc_thresh3``, 1024 entries by default, host-wide). A lab of N pods
that all talk to each other needs N x (N - 1) entries: at 50 pods (2,450) the table overflows, the kernel
logs "neighbor table overflow!" and silently drops the packets of new flows -- which looks exactly like a
policy drop. ``pin_neighbours`` gives every pod a permanent entry for every other pod (permanent entries
are exempt from that limit) and so also spares a large lab the ARP broadcast storm of its first probes; a
cluster has no such storm either (Cilium answers ARP for the gateway, and pods route through it).

Always tear down: use it as a context manager (``with NetLab() as lab:``); teardown runs on normal exit,
on test failure and on KeyboardInterrupt, kills every process started in the lab's namespaces and deletes
the namespaces (which deletes their veths and the bridge). An ``atexit`` hook backs that up, and
``sweep_leftovers`` (run when a lab starts) removes what a killed run left behind.
"""

from __future__ import annotations

import atexit
import contextlib
import ipaddress
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import IO

REPO_ROOT = Path(__file__).resolve().parents[2]
AGENT_PATH = REPO_ROOT / "flowcheck" / "probe" / "agent.py"
SERVER_PATH = REPO_ROOT / "flowcheck" / "probe" / "server.py"

LAB_NETWORK = ipaddress.IPv4Network("198.18.0.0/16")  # RFC 2544 benchmarking range, see the module docstring
NAME_PREFIX = "fcl"
_NAME_RE = re.compile(rf"^{NAME_PREFIX}(\d+)x[0-9a-f]{{4}}-")
NFT_TABLE = "flowcheck_lab"
MAC_PREFIX = "02:66:63"  # locally administered, "fc": pod i's eth0 is 02:66:63:00:<i, 2 bytes> (unique per lab)
READY_TIMEOUT_S = 15.0  # a python server starting on a loaded 2-core machine
MAX_TEARDOWN_INTERRUPTIONS = 20  # Ctrl-Cs a teardown absorbs before it leaves the rest to sweep_leftovers
STOP_GRACE_S = 3.0

RULE_ACTIONS = {
    "drop": "drop",
    "tcp-reset": "reject with tcp reset",
    "icmp-port-unreachable": "reject with icmpx type port-unreachable",
    "icmp-host-unreachable": "reject with icmpx type host-unreachable",
    "icmp-admin-prohibited": "reject with icmpx type admin-prohibited",
}


class LabError(RuntimeError):
    """The lab could not be set up (a command failed, a process did not become ready)."""


def _run(argv: Sequence[str], *, input: str | None = None, check: bool = True,
         timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(argv), input=input, capture_output=True, text=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise LabError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


@lru_cache(maxsize=1)
def netlab_unavailable_reason() -> str | None:
    """Why the lab cannot run here (for ``pytest.skip``), or None when it can.

    Checks what the lab needs, in order: Linux, root, ``ip`` (iproute2), ``nft`` (nftables), and that a
    network namespace with an nft table can actually be created (containers without CAP_SYS_ADMIN or
    CAP_NET_ADMIN cannot).
    """
    if not sys.platform.startswith("linux"):
        return "the netns lab needs Linux network namespaces"
    if os.geteuid() != 0:
        return "the netns lab needs root (network namespaces, veth, nftables); run as root, as CI does"
    for tool, package in (("ip", "iproute2"), ("nft", "nftables")):
        if shutil.which(tool) is None:
            return f"the netns lab needs `{tool}`: apt-get install -y {package} (.ci/run installs it)"
    name = f"{NAME_PREFIX}{os.getpid()}x{secrets.token_hex(2)}-check"
    try:
        created = _run(["ip", "netns", "add", name], check=False)
        if created.returncode != 0:
            return f"cannot create a network namespace here: {created.stderr.strip()}"
        nft = _run(["ip", "netns", "exec", name, "nft", "add", "table", "inet", NFT_TABLE], check=False)
        if nft.returncode != 0:
            return f"nftables does not work in a network namespace here: {nft.stderr.strip()}"
    finally:
        _run(["ip", "netns", "del", name], check=False)
    return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _netns_names() -> list[str]:
    listing = _run(["ip", "netns", "list"], check=False).stdout
    return [line.split()[0] for line in listing.splitlines() if line.strip()]


def _kill_netns_processes(netns: str) -> None:
    """SIGKILL whatever still runs in a lab namespace (only ever processes a lab started there)."""
    pids = _run(["ip", "netns", "pids", netns], check=False).stdout.split()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)


def sweep_leftovers() -> list[str]:
    """Delete lab namespaces whose creating process is gone (a lab killed before its teardown ran)."""
    removed = []
    for name in _netns_names():
        match = _NAME_RE.match(name)
        if match is None or _pid_alive(int(match.group(1))):
            continue
        _kill_netns_processes(name)
        if _run(["ip", "netns", "del", name], check=False).returncode == 0:
            removed.append(name)
    return removed


@dataclass
class LabProcess:
    """A process started inside a lab pod; ``log_path`` holds its stderr (and stdout)."""

    pod: str
    argv: list[str]
    popen: subprocess.Popen[bytes]
    log_path: Path
    _log: IO[bytes]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, text: str, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Wait until ``text`` shows up in the process's output; fail if it dies or takes too long."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if text in self.log():
                return
            if self.popen.poll() is not None:
                raise LabError(f"{' '.join(self.argv)} in {self.pod} exited {self.popen.returncode}: {self.log()}")
            time.sleep(0.02)
        raise LabError(f"{' '.join(self.argv)} in {self.pod} not ready after {timeout_s} s: {self.log()}")

    def stop(self, grace_s: float = STOP_GRACE_S) -> int | None:
        """SIGTERM, then SIGKILL after ``grace_s``; returns the exit status."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(grace_s)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(grace_s)
        self._log.close()
        return self.popen.returncode


@dataclass
class LabPod:
    """A lab "pod": a network namespace with one address, optionally running the probe server."""

    name: str  # "namespace/name", as workloads are referred to in the topology (docs/contracts.md, "Topology file")
    index: int
    netns: str
    address: str
    http: tuple[int, ...] = ()
    tcp: tuple[int, ...] = ()
    udp: tuple[int, ...] = ()
    server: LabProcess | None = None
    nft_ready: bool = field(default=False, repr=False)

    @property
    def mac(self) -> str:
        return f"{MAC_PREFIX}:00:{self.index >> 8 & 0xFF:02x}:{self.index & 0xFF:02x}"


class NetLab:
    """Network namespaces joined by a bridge, with the real probe server and real nftables rules.

    ::

        with NetLab() as lab:
            api = lab.add_pod("default/api", http=[8080], tcp=[9000], udp=[81])
            client = lab.add_pod("tenant/client")
            lab.block("default/api", src="tenant/client", port=8080, action="drop")
            result = lab.exec("tenant/client", [sys.executable, AGENT_PATH], input=plan_json)

    ``python`` is the interpreter used for the server (and, by ``LabExecutor``, for the agent); it
    defaults to the one running the tests.
    """

    def __init__(self, *, python: str = sys.executable, server_path: Path = SERVER_PATH) -> None:
        self.python = python
        self.server_path = server_path
        self.prefix = f"{NAME_PREFIX}{os.getpid()}x{secrets.token_hex(2)}"
        self.hub = f"{self.prefix}-hub"
        self.pods: dict[str, LabPod] = {}
        self.processes: list[LabProcess] = []
        self._namespaces: list[str] = []
        self._workdir: Path | None = None
        self._closed = False
        self._interruptions = 0
        self._neighbours_pinned = False

    # -- lifecycle ------------------------------------------------------------------------------------

    def __enter__(self) -> NetLab:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def start(self) -> None:
        reason = netlab_unavailable_reason()
        if reason is not None:
            raise LabError(reason)
        sweep_leftovers()
        atexit.register(self.close)
        self._workdir = Path(tempfile.mkdtemp(prefix=f"{self.prefix}-"))
        self._add_netns(self.hub)
        self._ip(self.hub, "link", "add", "br0", "type", "bridge")
        self._ip(self.hub, "link", "set", "br0", "up")

    def close(self) -> None:
        """Stop every process, delete every namespace. Idempotent.

        Never raises, except that a Ctrl-C arriving during the teardown (the second one of a user who
        pressed it to stop the run) is held back until everything is gone, then re-raised: each step
        is retried (they are idempotent) and the lab counts as closed only once it is empty, so an
        interrupted teardown -- or the ``atexit`` hook after one -- can finish the job.
        """
        if self._closed:
            return
        interrupted: KeyboardInterrupt | None = None
        while self.processes or self._namespaces or self._workdir is not None:
            try:
                self._teardown_step()
            except KeyboardInterrupt as exc:
                interrupted = interrupted or exc
                self._interruptions += 1
                if self._interruptions > MAX_TEARDOWN_INTERRUPTIONS:
                    break  # someone insists: leave what is left to sweep_leftovers
        self._closed = True
        with contextlib.suppress(Exception):
            atexit.unregister(self.close)
        if interrupted is not None:
            raise interrupted

    def _teardown_step(self) -> None:
        """Remove one thing (the last process, else the last namespace, else the work directory)."""
        if self.processes:
            with contextlib.suppress(Exception):
                self.processes[-1].stop()
            self.processes.pop()
        elif self._namespaces:
            netns = self._namespaces[-1]
            with contextlib.suppress(Exception):
                _kill_netns_processes(netns)
            with contextlib.suppress(Exception):
                _run(["ip", "netns", "del", netns], check=False)
            self._namespaces.pop()
        elif self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def leftovers(self) -> list[str]:
        """Namespaces of this lab that still exist (empty after ``close``)."""
        return [name for name in _netns_names() if name.startswith(self.prefix + "-")]

    # -- pods -----------------------------------------------------------------------------------------

    def add_pod(self, name: str, *, http: Iterable[int] = (), tcp: Iterable[int] = (), udp: Iterable[int] = (),
                wait: bool = True) -> LabPod:
        """Create a pod ``namespace/name``; start the probe server (identity = ``name``) if it serves ports.

        With ``wait=False`` the server's readiness is not awaited (call ``wait_ready`` after adding many
        pods, so their servers start in parallel).
        """
        if self._closed or self._workdir is None:
            raise LabError("the lab is not running (use it as a context manager)")
        if "/" not in name or name in self.pods:
            raise LabError(f"pod names are unique 'namespace/name' strings, got {name!r}")
        index = len(self.pods)
        address = str(LAB_NETWORK.network_address + 256 + index + 1)  # 198.18.1.1, 198.18.1.2, ...
        if ipaddress.IPv4Address(address) not in LAB_NETWORK or address == str(LAB_NETWORK.broadcast_address):
            raise LabError("the lab subnet is full")
        netns = f"{self.prefix}-p{index}"
        self._add_netns(netns)
        pod = LabPod(name=name, index=index, netns=netns, address=address,
                     http=tuple(http), tcp=tuple(tcp), udp=tuple(udp))
        _run(["ip", "link", "add", "eth0", "netns", netns, "address", pod.mac, "type", "veth", "peer", "name",
              f"p{index}", "netns", self.hub])
        self._ip(self.hub, "link", "set", f"p{index}", "master", "br0", "up")
        self._ip(netns, "addr", "add", f"{address}/{LAB_NETWORK.prefixlen}", "dev", "eth0")
        self._ip(netns, "link", "set", "eth0", "up")
        self._ip(netns, "link", "set", "lo", "up")
        # Reject rules answer with ICMP; the kernel's default rate limit (1/s per peer) would turn most
        # of a burst of rejected probes into silent timeouts and make the tests flaky.
        _run(["ip", "netns", "exec", netns, "sysctl", "-qw", "net.ipv4.icmp_ratelimit=0"])
        others = list(self.pods.values())
        self.pods[name] = pod
        if self._neighbours_pinned:
            self._pin(pod, others)
            for other in others:
                self._pin(other, [pod])
        if pod.http or pod.tcp or pod.udp:
            argv = [self.python, str(self.server_path), "--name", name]
            for flag, ports in (("--http", pod.http), ("--tcp", pod.tcp), ("--udp", pod.udp)):
                if ports:
                    argv += [flag, ",".join(str(p) for p in ports)]
            pod.server = self.spawn(name, argv)
            if wait:
                pod.server.wait_for('"event":"ready"')
        return pod

    def pin_neighbours(self) -> None:
        """Give every pod a permanent neighbour entry for every other pod, now and for pods added later.

        Needed for labs of more than ~30 pods that all talk to each other (see the module docstring: the
        host-wide neighbour table overflows and new flows' packets are dropped silently); one ``ip -batch``
        per pod.
        """
        self._neighbours_pinned = True
        pods = list(self.pods.values())
        for pod in pods:
            self._pin(pod, [other for other in pods if other is not pod])

    def _pin(self, pod: LabPod, others: Sequence[LabPod]) -> None:
        if others:
            _run(["ip", "-n", pod.netns, "-batch", "-"],
                 input="".join(f"neigh replace {other.address} lladdr {other.mac} dev eth0 nud permanent\n"
                               for other in others))

    def wait_ready(self) -> None:
        for pod in self.pods.values():
            if pod.server is not None:
                pod.server.wait_for('"event":"ready"')

    def pod(self, name: str) -> LabPod:
        try:
            return self.pods[name]
        except KeyError:
            raise LabError(f"no lab pod {name!r}; pods: {', '.join(self.pods) or 'none'}") from None

    def address_of(self, name: str) -> str:
        return self.pod(name).address

    def tmp_dir(self, name: str) -> Path:
        """The pod's own writable scratch directory (what ``/tmp``, an emptyDir, is in a probe pod)."""
        assert self._workdir is not None
        path = self._workdir / f"{self.pod(name).netns}-tmp"
        path.mkdir(mode=0o700, exist_ok=True)
        return path

    # -- running things in pods -----------------------------------------------------------------------

    def command(self, pod: str, argv: Sequence[str | os.PathLike[str]]) -> list[str]:
        """The argv that runs ``argv`` inside ``pod``'s network namespace."""
        return ["ip", "netns", "exec", self.pod(pod).netns, *[str(arg) for arg in argv]]

    def exec(self, pod: str, argv: Sequence[str | os.PathLike[str]], *, input: str | None = None,
             timeout_s: float = 60.0) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside ``pod`` and wait for it (like ``subprocess.run``, never raising on exit status)."""
        return subprocess.run(self.command(pod, argv), input=input, capture_output=True, text=True,
                              timeout=timeout_s, check=False)

    def spawn(self, pod: str, argv: Sequence[str | os.PathLike[str]], *, ready: str | None = None) -> LabProcess:
        """Start a long-running process inside ``pod`` (stopped at teardown); wait for ``ready`` in its output."""
        assert self._workdir is not None
        log_path = self._workdir / f"proc{len(self.processes)}.log"
        log = log_path.open("wb")
        command = self.command(pod, argv)
        popen = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                 start_new_session=True)
        process = LabProcess(pod=pod, argv=command, popen=popen, log_path=log_path, _log=log)
        self.processes.append(process)
        if ready is not None:
            process.wait_for(ready)
        return process

    # -- nftables -------------------------------------------------------------------------------------

    def block(self, dst: str, *, src: str | None = None, port: int | None = None, protocol: str = "tcp",
              action: str = "drop") -> str:
        """Add an nft rule on ``dst``'s ingress (input hook) for traffic from ``src`` (any if None) to
        ``port`` (any if None) over ``protocol`` (tcp or udp); returns the rule as applied.

        ``action``: ``drop`` (silent, like Cilium's policy drop), ``tcp-reset`` (RST), and
        ``icmp-port-unreachable`` / ``icmp-host-unreachable`` / ``icmp-admin-prohibited`` (ICMP reject).
        """
        if action not in RULE_ACTIONS:
            raise LabError(f"unknown action {action!r}; expected one of {', '.join(RULE_ACTIONS)}")
        if protocol not in ("tcp", "udp"):
            raise LabError(f"protocol must be tcp or udp, got {protocol!r}")
        if action == "tcp-reset" and protocol != "tcp":
            raise LabError("reject with tcp reset only applies to tcp")
        match = []
        if src is not None:
            match.append(f"ip saddr {self.address_of(src)}")
        match.append(f"meta l4proto {protocol}" if port is None else f"{protocol} dport {port}")
        rule = " ".join([*match, "counter", RULE_ACTIONS[action]])
        self.nft(dst, f"add rule inet {NFT_TABLE} ingress {rule}")
        return rule

    def nft(self, pod: str, commands: str) -> None:
        """Run nft commands (``nft -f`` syntax) in ``pod``'s namespace, after creating the lab table there."""
        target = self.pod(pod)
        if not target.nft_ready:
            self._nft_apply(target, f"add table inet {NFT_TABLE}\n"
                                    f"add chain inet {NFT_TABLE} ingress "
                                    "{ type filter hook input priority 0 ; policy accept ; }\n")
            target.nft_ready = True
        self._nft_apply(target, commands + "\n")

    def rules(self, pod: str) -> str:
        """The pod's nft ruleset, as ``nft list ruleset`` prints it (with counters)."""
        return _run(["ip", "netns", "exec", self.pod(pod).netns, "nft", "list", "ruleset"]).stdout

    def clear_rules(self, pod: str | None = None) -> None:
        """Remove every lab rule from ``pod`` (or from every pod)."""
        for target in [self.pod(pod)] if pod is not None else list(self.pods.values()):
            if target.nft_ready:
                self._nft_apply(target, f"flush chain inet {NFT_TABLE} ingress\n")

    # -- helpers --------------------------------------------------------------------------------------

    def _nft_apply(self, pod: LabPod, text: str) -> None:
        _run(["ip", "netns", "exec", pod.netns, "nft", "-f", "-"], input=text)

    def _add_netns(self, netns: str) -> None:
        _run(["ip", "netns", "add", netns])
        self._namespaces.append(netns)

    def _ip(self, netns: str, *args: str) -> None:
        _run(["ip", "-n", netns, *args])
