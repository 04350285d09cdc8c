"""The grader's batteries for the echo protocol: every byte a client sends comes back, in order.

Each battery takes the ``Subject`` (the server under test) and a seeded ``random.Random`` and
returns a ``Check``. The client here watches its socket for reading and writing at once (an echo
server answers while we send), counts every byte into the ``LoadTrace``, and gives up when
nothing moves for a while: a hanging server is detected by that, never waited on.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
import selectors
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from labkit.clients.echo import LateReader, push_without_reading
from labkit.grading.core import Check, LoadTrace, Subject, shorten
from labkit.grading.fuzz import junk, vanish

__all__ = ["Exchange", "exchange", "HINTS", "probe", "warm_up"]

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
CONCURRENT = 10  # clients connected at once in the concurrency battery
ANSWER_WITHIN = 2.0  # seconds a waiting client gives the server before it counts as stalled
MEMORY_BOUND_KIB = 40 * 1024  # what two clients that never read may cost the server, at most
STALLED = "then nothing for"  # how an exchange that stalled ends its problem: "... 3 s"


def _late_size() -> int:
    """What the slow reader sends: three times what the server's send buffer may grow to (the
    tcp_wmem maximum; 12 MiB at least). While the reader dawdles, one buffer's worth waits in the
    kernel and the rest in the server; a server that sends all it kept in one ``send`` and
    forgets the remainder then keeps more than one ``send`` can take, however fast the reader
    drains the kernel's buffer first, and must lose bytes."""
    try:
        with open("/proc/sys/net/ipv4/tcp_wmem") as f:
            most = int(f.read().split()[2])
    except (OSError, ValueError, IndexError):
        most = 0
    return max(12 << 20, 3 * most)


LATE = _late_size()

HINTS = {
    "concurrency": "a blocking recv() serves one client until it leaves. Serve every client at "
    "once: an event loop (lessons 05 and 07), a greenlet per client (lesson 06) or a task per "
    "client (lesson 09).",
    "exact bytes": "send() on a non-blocking socket takes only what fits: keep the rest "
    "(buffer[sent:]) and send it when the socket is writable again (lesson 07, select_echo "
    "beside select_echo_naive).",
    "vanishing clients": "a reset (ConnectionResetError) or an empty recv() ends that one "
    "client: close it and forget it, and go on serving the others (lessons 06 and 07).",
    "slow reader": "a client that does not read must neither fill your memory nor stall the "
    "others: stop reading from that client alone once it is far behind (select_echo's "
    "HIGH_WATER, lesson 07; await writer.drain(), lesson 09).",
    "stuck on one client": "the server waited on one client that does not read, and served no "
    "one else meanwhile: one client at a time, or a blocking send. Serve every client at once "
    "and send only what a writable socket takes: an event loop (lessons 05 and 07), a greenlet "
    "per client (lesson 06) or a task per client (lesson 09).",
    "garbage and fuzz": "an echo server treats bytes as bytes: never decode them, never look "
    "for lines (lesson 07).",
    "back to baseline": "close every socket you are done with and drop what you kept for it "
    "(lessons 07 and 08).",
    "idle CPU": "a loop that never waits burns a core: an empty recv() means the client closed "
    "(stop there, lesson 06), and ask for EVENT_WRITE only while bytes wait (lesson 07).",
    "keeps answering": "one handler loops without ever waiting, so nothing else runs: an empty "
    "recv() (b'') means the client closed, stop there (lesson 06, gevent_echo_hang).",
}


@dataclass
class Exchange:
    """One client's echo: what it sent, what came back, and what went wrong ("" if nothing)."""

    payload: bytes
    received: bytearray = field(default_factory=bytearray)
    problem: str = ""

    @property
    def exact(self) -> bool:
        return not self.problem and _digest(self.received) == _digest(self.payload)

    def describe(self) -> str:
        """What went wrong, in one phrase. How much came back is said as nothing, part, all
        or more: the exact count depends on timing and the kernel's buffers, the report not."""
        got, sent = len(self.received), len(self.payload)
        back = (
            "nothing" if got == 0
            else "only part of them" if got < sent
            else "more than that" if got > sent
            else "all of them"
        )  # fmt: skip
        if got == 0 and self.problem.startswith(STALLED):  # silence from the start
            return f"sent {sent:,} bytes and got nothing back in{self.problem[len(STALLED) :]}"
        if self.problem:
            return f"sent {sent:,} bytes and got {back} back, {self.problem}"
        if got != sent:
            return f"sent {sent:,} bytes and got {back} back"
        return f"got back {sent:,} bytes, but different ones"


def _digest(data: bytes | bytearray) -> tuple[int, str]:
    return len(data), hashlib.sha256(data).hexdigest()


def exchange(
    load: LoadTrace,
    address: tuple[str, int],
    payload: bytes,
    rng: random.Random | None = None,
    *,
    stall: float = ANSWER_WITHIN,
    limit: float = 15.0,
    half_close: bool = False,
    late: LateReader | None = None,
    together: threading.Barrier | None = None,
) -> Exchange:
    """Send ``payload`` (in random pieces if ``rng``) while reading its echo. Gives up when
    nothing moves for ``stall`` seconds or the whole exchange passes ``limit``. ``half_close``
    shuts our side once all is sent; ``late`` makes a slow reader, by its rule; ``together``
    makes every client of a battery connect before any sends."""
    ex = Exchange(payload)
    try:
        with load.connect(address, timeout=5, rcvbuf=late.RCVBUF if late else 0) as sock:
            if together is not None:
                with contextlib.suppress(threading.BrokenBarrierError):
                    together.wait(10)
            _talk(sock, ex, load, rng, stall, limit, half_close, late or LateReader(0.0))
    except OSError as err:
        ex.problem = f"then {type(err).__name__}: {err}"
        if together is not None and not together.broken:
            together.abort()  # the others go ahead rather than wait for this one
    return ex


def _talk(sock, ex, load, rng, stall, limit, half_close, late: LateReader) -> None:
    sock.setblocking(False)
    started = moved = took = time.monotonic()
    reading = False
    pieces = _pieces(len(ex.payload), rng)
    view, sent = memoryview(ex.payload), 0
    with selectors.DefaultSelector() as sel:
        sel.register(sock, WRITE)
        while len(ex.received) < len(ex.payload):
            now = time.monotonic()
            if now - started > limit:
                ex.problem = f"and the exchange took longer than {limit:g} s"
                return
            if now - moved > stall:
                ex.problem = f"{STALLED} {stall:g} s"
                return
            reading = reading or late.time_to_read(
                now - started, sent == len(ex.payload), now - took
            )
            wanted = (WRITE if sent < len(ex.payload) else 0) | (READ if reading else 0)
            if not wanted:  # all sent, and not reading yet: a slow reader dawdles
                time.sleep(0.02)
                continue
            if sel.get_key(sock).events != wanted:
                sel.modify(sock, wanted)
            for _, events in sel.select(0.05):
                if events & WRITE:
                    with contextlib.suppress(BlockingIOError):
                        sent += sock.send(view[sent : sent + next(pieces)])
                        moved = took = time.monotonic()
                    if sent == len(ex.payload) and half_close:
                        sock.shutdown(socket.SHUT_WR)
                if events & READ:
                    try:
                        chunk = sock.recv(1 << 16)
                    except BlockingIOError:
                        continue
                    if not chunk:
                        ex.problem = "then the server closed the connection"
                        return
                    ex.received += chunk
                    load.got(len(chunk))
                    moved = time.monotonic()


def _pieces(total: int, rng: random.Random | None):
    while True:
        yield rng.randint(1, 8192) if rng else max(total, 1)


# -- the batteries -------------------------------------------------------------------------------
def warm_up(subject: Subject) -> Exchange:
    """One ordinary client, before the baseline is taken (imports, buffers, caches)."""
    return exchange(subject.load, subject.address, random.Random(0).randbytes(64 << 10))


def probe(subject: Subject) -> str:
    """Nothing ("") if a new client's short echo comes back; else what happened to it."""
    ex = exchange(subject.load, subject.address, b"ping\n", stall=ANSWER_WITHIN, limit=5)
    return "" if ex.exact else ex.describe()


def concurrency(subject: Subject, rng: random.Random) -> Check:
    """CONCURRENT clients connect, all stay connected, each sends a line: every one must get
    its echo while the others are still there."""
    load, lines = subject.load, [f"client {i + 1} says hello\n".encode() for i in range(CONCURRENT)]
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(load.connect(subject.address, 5)) for _ in lines]
        for sock, line in zip(socks, lines):
            sock.sendall(line)
        got = _read_all(socks, lines, load)
    answered = [i for i, line in enumerate(lines) if got[i] == line]
    wrong = [i for i, line in enumerate(lines) if got[i] and not line.startswith(bytes(got[i]))]
    if len(answered) == len(lines):
        return Check(
            "concurrency", True, f"{CONCURRENT} clients connected at once each got their echo"
        )
    first = wrong[0] if wrong else next(i for i in range(len(lines)) if i not in answered)
    if wrong:
        detail = f"client {wrong[0] + 1} got back {shorten(bytes(got[wrong[0]]))}"
    elif len(answered) == 1:
        detail = (
            f"served one client at a time: of {CONCURRENT} clients connected at once, 1 got "
            f"its echo within {ANSWER_WITHIN:g} s (the others waited for it to leave)"
        )
    elif not answered:
        detail = (
            f"of {CONCURRENT} clients connected at once, none got its echo within "
            f"{ANSWER_WITHIN:g} s"
        )
    else:
        detail = (
            f"of {CONCURRENT} clients connected at once, {len(answered)} got their echo "
            f"within {ANSWER_WITHIN:g} s"
        )
    return Check("concurrency", False, detail, shorten(lines[first]), HINTS["concurrency"])


def _read_all(socks: list[socket.socket], want: list[bytes], load: LoadTrace) -> list[bytearray]:
    got = [bytearray() for _ in socks]
    deadline = time.monotonic() + ANSWER_WITHIN
    with selectors.DefaultSelector() as sel:
        for i, sock in enumerate(socks):
            sock.setblocking(False)
            sel.register(sock, READ, i)
        while sel.get_map() and (left := deadline - time.monotonic()) > 0:
            for key, _ in sel.select(min(left, 0.1)):
                try:
                    chunk = key.fileobj.recv(4096)  # type: ignore[union-attr]
                except BlockingIOError:
                    continue
                except OSError:
                    chunk = b""
                got[key.data] += chunk
                load.got(len(chunk))
                if not chunk or len(got[key.data]) >= len(want[key.data]):
                    sel.unregister(key.fileobj)
    return got


def many_clients(clients: int):
    def exact_bytes(subject: Subject, rng: random.Random) -> Check:
        """``clients`` clients connect, then all send random bytes in random pieces at once;
        each must get back exactly what it sent (length and SHA-256)."""
        payloads = [rng.randbytes(rng.randint(1, 64 << 10)) for _ in range(clients)]
        seeds = [rng.random() for _ in payloads]
        together = threading.Barrier(clients)

        def one(payload: bytes, seed: float) -> Exchange:
            pieces, address = random.Random(seed), subject.address
            return exchange(subject.load, address, payload, pieces, stall=3.0, together=together)

        with ThreadPoolExecutor(clients) as pool:
            done = list(pool.map(one, payloads, seeds))
        total = sum(map(len, payloads))
        bad = [i for i, ex in enumerate(done) if not ex.exact]
        if not bad:
            return Check(
                "exact bytes",
                True,
                f"{clients} clients at once each got back exactly what they sent "
                f"({total:,} bytes in all; length and SHA-256)",
            )
        i = bad[0]
        return Check(
            "exact bytes",
            False,
            f"{len(bad)} of {clients} clients did not get their bytes back; client {i + 1} "
            f"{done[i].describe()}",
            shorten(payloads[i]),
            HINTS["exact bytes"],
        )

    return exact_bytes


def vanishing(subject: Subject, rng: random.Random, n: int = 16) -> Check:
    """Clients that send part of a message and leave (a reset, or a half-close then close);
    then an ordinary client must still be served."""
    for i in range(n):
        vanish(subject.load, subject.address, junk(rng, rng.randint(1, 200_000)), bool(i % 2))
    if not subject.alive:
        return Check(
            "vanishing clients",
            False,
            f"{n} clients left mid-message and {subject.death()}",
            hint=HINTS["vanishing clients"],
        )
    after = exchange(subject.load, subject.address, rng.randbytes(32 << 10), rng)
    if after.exact:
        return Check(
            "vanishing clients", True, f"{n} clients left mid-message; the next client was served"
        )
    return Check(
        "vanishing clients",
        False,
        f"after {n} clients left mid-message, the next client {after.describe()}",
        shorten(after.payload),
        HINTS["vanishing clients"],
    )


def slow_reader(subject: Subject, rng: random.Random) -> Check:
    """A client that reads its echo late gets all of it; while two clients never read, another
    is served and the server's memory stays bounded."""
    late = exchange(
        subject.load,
        subject.address,
        rng.randbytes(LATE),
        late=LateReader(read_after=0.5, server_pid=subject.pid),
        stall=3.0,
    )
    if not late.exact:
        lost = len(late.received) < len(late.payload) and late.problem.startswith(STALLED)
        said = f"a client that read its echo only once the server had gone quiet {late.describe()}"
        if lost:
            return _slow_reader_failed(said + ": the server lost bytes", late, "exact bytes")
        return _slow_reader_failed(said, late)
    before = subject.rss_kib()
    with contextlib.ExitStack() as stack:
        hogs = [stack.enter_context(subject.load.connect(subject.address, 5)) for _ in range(2)]

        def push(hog: socket.socket) -> int:
            return push_without_reading(hog, offer=32 << 20, stuck_after=0.3, longest=1.5)

        with ThreadPoolExecutor(2) as pool:
            list(pool.map(push, hogs))
        grown = subject.rss_kib() - before if subject.alive else 0
        other = exchange(subject.load, subject.address, rng.randbytes(4096), stall=3.0)
    if not other.exact:
        said = f"while 2 clients were not reading their echo, another client {other.describe()}"
        if not other.received:  # not one byte: the server was busy with a non-reader
            stuck = ": the server was stuck on a client that does not read"
            return _slow_reader_failed(said + stuck, other, "stuck on one client")
        return _slow_reader_failed(said, other)
    if grown > MEMORY_BOUND_KIB:
        bound = f"{MEMORY_BOUND_KIB // 1024} MiB (its bound)"
        return _slow_reader_failed(
            f"2 clients that never read made the server grow by more than {bound}"
        )
    return Check(
        "slow reader",
        True,
        f"a late reader got all {LATE >> 20} MiB back; while 2 clients never read, another was "
        "served and the server's memory stayed bounded",
    )


def _slow_reader_failed(
    detail: str, ex: Exchange | None = None, hint: str = "slow reader"
) -> Check:
    """The slow-reader battery failed: ``detail`` says how, ``ex`` is the exchange that did."""
    return Check("slow reader", False, detail, shorten(ex.payload) if ex else "", HINTS[hint])


def garbage(subject: Subject, rng: random.Random, n: int = 8) -> Check:
    """Random bytes, odd words and non-UTF-8 come back exactly, also to a client that
    half-closes once it has sent them."""
    for i in range(n):
        payload = junk(rng, rng.randint(1, 120_000))
        ex = exchange(subject.load, subject.address, payload, rng, half_close=bool(i % 2))
        if not ex.exact:
            how = "half-closed after sending and " if i % 2 else ""
            return Check(
                "garbage and fuzz",
                False,
                f"a client that {how}sent fuzz {ex.describe()}",
                shorten(payload),
                HINTS["garbage and fuzz"],
            )
    return Check("garbage and fuzz", True, f"{n} clients' fuzz came back exactly")
