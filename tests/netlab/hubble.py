"""A Hubble for the netns lab: the verdicts nftables gave real packets, as ``hubble observe -o json`` lines.

Hubble reports what Cilium's datapath did to each packet; in the lab the datapath is nftables, and
nftables can say the same through packet tracing: every pod gets a small table whose prerouting
chain (after conntrack, so it knows a packet's direction) marks connection-opening packets for
tracing -- TCP SYNs and SYN-ACKs, every UDP datagram, loopback excluded -- and ``nft monitor trace``,
running in the pod's namespace, prints each marked packet with the rule that decided it. Each trace
becomes one flow record in Hubble's JSON shape (``tests.harness.fakes.hubble_line``): a drop by the
lab's policy rules is ``DROPPED`` with ``drop_reason_desc: POLICY_DENIED`` (and, as Hubble does for
drops, no ``is_reply``); a packet let through is ``FORWARDED``, with ``is_reply`` from conntrack's
direction. Records are observed at the receiving pod, the way Cilium reports an ingress verdict on the
destination's node. The real parser (``flowcheck.cluster.hubble``) reads them, so the harness's
evidence matching and judging run unchanged on real packets.

``inject`` adds a record nothing observed -- the way a test makes Hubble contradict a probe.
"""

from __future__ import annotations

import re
import subprocess
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from flowcheck.cluster.hubble import FlowRecord, parse_flow_line
from tests.harness.fakes import hubble_line
from tests.netlab.lab import NetLab

TRACE_TABLE = "flowcheck_lab_trace"
POLICY_TABLE = "flowcheck_lab"
_TRACE_RULES = (
    f"add table inet {TRACE_TABLE}\n"
    f"add chain inet {TRACE_TABLE} pre {{ type filter hook prerouting priority -150 ; }}\n"
    f'add rule inet {TRACE_TABLE} pre iifname "lo" return\n'
    f"add rule inet {TRACE_TABLE} pre ct direction original tcp flags & (syn|ack) == syn meta nftrace set 1\n"
    f"add rule inet {TRACE_TABLE} pre ct direction reply tcp flags & (syn|ack) == syn|ack meta nftrace set 1\n"
    f"add rule inet {TRACE_TABLE} pre meta l4proto udp meta nftrace set 1\n")
_TRACE = re.compile(r"^trace id (\w+) inet (\S+) (\S+) (.*)$")
_ADDRESSES = re.compile(r"ip saddr (\S+) ip daddr (\S+)")
_PORTS = re.compile(r"(tcp|udp) sport (\d+) \1 dport (\d+)")
_FLAGS = re.compile(r"tcp flags == (\S+)")


@dataclass
class _Trace:
    pod: str
    packet: str
    when: datetime
    lines: list[str] = field(default_factory=list)


class LabHubble:
    """``nft monitor trace`` in every pod of a lab, turned into Hubble flow records (see the module docstring)."""

    def __init__(self, lab: NetLab) -> None:
        self.lab = lab
        self._traces: list[_Trace] = []
        self._injected: list[FlowRecord] = []
        self._lock = threading.Lock()
        self._monitors: list[subprocess.Popen[str]] = []

    def start(self) -> None:
        for name in self.lab.pods:
            self.lab.nft(name, "")  # every pod gets the policy table's ingress chain, so each trace ends in it
            subprocess.run(["ip", "netns", "exec", self.lab.pod(name).netns, "nft", "-f", "-"], input=_TRACE_RULES,
                           text=True, check=True, capture_output=True)
            monitor = subprocess.Popen(self.lab.command(name, ["nft", "monitor", "trace"]), stdout=subprocess.PIPE,
                                       stderr=subprocess.DEVNULL, text=True, start_new_session=True)
            self._monitors.append(monitor)
            threading.Thread(target=self._read, args=(name, monitor), daemon=True).start()

    def stop(self) -> None:
        for monitor in self._monitors:
            monitor.kill()
            monitor.wait(5)

    def inject(self, record: FlowRecord) -> None:
        with self._lock:
            self._injected.append(record)

    def _read(self, pod: str, monitor: subprocess.Popen[str]) -> None:
        assert monitor.stdout is not None
        open_traces: dict[str, _Trace] = {}
        for line in monitor.stdout:
            found = _TRACE.match(line.strip())
            if found is None:
                continue
            trace_id, table, _chain, rest = found.groups()
            if table == TRACE_TABLE and rest.startswith("packet:"):  # a new packet (ids are reused)
                trace = open_traces[trace_id] = _Trace(pod, rest, datetime.now(UTC))
                with self._lock:
                    self._traces.append(trace)
            elif trace_id in open_traces:
                open_traces[trace_id].lines.append(f"{table} {rest}")

    def flows(self) -> list[FlowRecord]:
        """Every record so far (observed and injected), in time order."""
        with self._lock:
            traces = list(self._traces)
            injected = list(self._injected)
        records = [r for r in (self._record(t) for t in traces) if r is not None]
        return sorted([*records, *injected], key=lambda r: r.time)

    def _record(self, trace: _Trace) -> FlowRecord | None:
        addresses = _ADDRESSES.search(trace.packet)
        ports = _PORTS.search(trace.packet)
        if addresses is None or ports is None:
            return None
        src_ip, dst_ip = addresses.groups()
        protocol, sport, dport = ports.group(1).upper(), int(ports.group(2)), int(ports.group(3))
        flags = _flags(_FLAGS.search(trace.packet))
        dropped = any(line.startswith(POLICY_TABLE) and line.endswith("(verdict drop)") for line in trace.lines)
        reply = any("ct direction reply" in line for line in trace.lines)
        names = {pod.address: name for name, pod in self.lab.pods.items()}
        src = (names.get(src_ip, ""), src_ip, sport)
        dst = (names.get(dst_ip, ""), dst_ip, dport)
        if dropped:
            line = hubble_line(verdict="DROPPED", src=src, dst=dst, protocol=protocol, when=trace.when,
                               drop_reason="POLICY_DENIED", flags=flags, event_type=1, node=f"netlab/{trace.pod}")
        else:
            line = hubble_line(verdict="FORWARDED", src=src, dst=dst, protocol=protocol, when=trace.when, flags=flags,
                               is_reply=reply, event_type=5 if not reply else 4, node=f"netlab/{trace.pod}")
        return parse_flow_line(line)


def _flags(found: re.Match[str] | None) -> Sequence[str]:
    if found is None:
        return ()
    text = found.group(1)
    if text == "syn":
        return ("SYN",)
    if text == "0x12" or ("syn" in text and "ack" in text):
        return ("SYN", "ACK")
    return ()
