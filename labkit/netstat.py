"""What the kernel counted about TCP while something ran: refused handshakes and retries.

A server that does not ``accept`` fast enough lets its listen queue fill up; the kernel then
drops new handshakes (ListenOverflows, ListenDrops), the client sends its SYN again after 1 s
(TCPSynRetrans), and a measured run mostly times that retry, not the server. These counters
say whether that happened.

    from labkit import netstat
    with netstat.counting() as tcp:
        ...                                   # the run
    tcp.delta.listen_overflows                # 0: no handshake was refused for a full queue
    netstat.listen_limits()                   # somaxconn, tcp_max_syn_backlog, syncookies

The counters are the network namespace's (``/proc/net/netstat`` and ``/proc/net/snmp``), not the
process's: every program on the machine adds to them, so a delta is an upper bound for the run.
Linux only; elsewhere every counter reads 0 and ``available()`` is False.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path

__all__ = ["TcpCounters", "Counting", "tcp_counters", "counting", "listen_limits", "available"]

NETSTAT, SNMP = Path("/proc/net/netstat"), Path("/proc/net/snmp")
# field name here: (section, name) in /proc/net/netstat or /proc/net/snmp
SOURCES = {
    "listen_overflows": ("TcpExt", "ListenOverflows"),  # handshake done, accept queue full
    "listen_drops": ("TcpExt", "ListenDrops"),  # every SYN or ACK a listener dropped
    "syn_retrans": ("TcpExt", "TCPSynRetrans"),  # SYNs (and SYN-ACKs) sent again
    "syncookies_sent": ("TcpExt", "SyncookiesSent"),  # SYN queue full: answered with a cookie
    "retrans_segs": ("Tcp", "RetransSegs"),  # every segment sent again
}


@dataclass(frozen=True)
class TcpCounters:
    listen_overflows: int = 0
    listen_drops: int = 0
    syn_retrans: int = 0
    syncookies_sent: int = 0
    retrans_segs: int = 0

    def __sub__(self, earlier: TcpCounters) -> TcpCounters:
        return TcpCounters(
            **{f.name: getattr(self, f.name) - getattr(earlier, f.name) for f in fields(self)}
        )

    def __add__(self, other: TcpCounters) -> TcpCounters:
        return TcpCounters(
            **{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        )

    def refused(self) -> bool:
        """Did the kernel drop or retry any handshake?"""
        return bool(self.listen_overflows or self.listen_drops or self.syn_retrans)


def _sections(path: Path) -> dict[str, dict[str, int]]:
    """``Section: names`` and ``Section: values`` line pairs, as {section: {name: value}}."""
    sections: dict[str, dict[str, int]] = {}
    lines = path.read_text(encoding="ascii").splitlines()
    for names, values in zip(lines[::2], lines[1::2]):
        section, *keys = names.split()
        sections[section.rstrip(":")] = dict(zip(keys, map(int, values.split()[1:])))
    return sections


def available() -> bool:
    return NETSTAT.exists() and SNMP.exists()


def tcp_counters() -> TcpCounters:
    """The counters now (all 0 where /proc/net is missing)."""
    if not available():
        return TcpCounters()
    found = {**_sections(NETSTAT), **_sections(SNMP)}
    return TcpCounters(
        **{name: found.get(section, {}).get(key, 0) for name, (section, key) in SOURCES.items()}
    )


@dataclass
class Counting:
    before: TcpCounters
    delta: TcpCounters = field(default_factory=TcpCounters)


@contextmanager
def counting() -> Iterator[Counting]:
    """``with counting() as tcp:``: ``tcp.delta`` is what the counters grew by in the block."""
    seen = Counting(tcp_counters())
    try:
        yield seen
    finally:
        seen.delta = tcp_counters() - seen.before


def listen_limits() -> dict[str, int]:
    """The kernel's caps on a listen queue: ``somaxconn`` (the most any ``listen(backlog)``
    gets), ``tcp_max_syn_backlog`` (half-open handshakes) and ``tcp_syncookies`` (1: past
    that, answer with a cookie instead of dropping). Empty where /proc/sys is missing."""
    limits = {}
    for name, path in (
        ("somaxconn", "/proc/sys/net/core/somaxconn"),
        ("tcp_max_syn_backlog", "/proc/sys/net/ipv4/tcp_max_syn_backlog"),
        ("tcp_syncookies", "/proc/sys/net/ipv4/tcp_syncookies"),
    ):
        try:
            limits[name] = int(Path(path).read_text(encoding="ascii"))
        except (OSError, ValueError):
            continue
    return limits
