"""The grader's batteries for lesson 08's file protocol (``labkit/protocol.py``).

The server serves a fresh folder made here (``--root``: lyrics.txt and a seeded big.bin) and
stores uploads in another (``--upload-dir``). Every reply is checked against the disk: length
and SHA-256 of each download, the server's hash of each upload, and an ``ERR`` line for every
malformed request.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
import selectors
import shutil
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from labkit.claims import DATA
from labkit.grading.core import Check, LoadTrace, Subject, shorten
from labkit.grading.fuzz import NASTY_NAMES, NASTY_NUMBERS, junk, vanish
from labkit.protocol import End, Parser, ProtocolError, Response, request_bytes

__all__ = ["folders", "probe", "warm_up", "HINTS"]

CONCURRENT = 10
ANSWER_WITHIN = 2.0
BIG = 256 << 10  # bytes of big.bin
MEMORY_BOUND_KIB = 40 * 1024

HINTS = {
    "concurrency": "a blocking recv() serves one client until it leaves. Serve every client at "
    "once: selectors (lesson 08) or a greenlet per client (gevent_files).",
    "exact bytes": "frame every reply (OK <size> <sha256>, then exactly <size> bytes), keep "
    "what send() did not take, and read a request's body to its announced size (lesson 08).",
    "vanishing clients": "a client gone mid-upload must leave nothing under its name: write to "
    "a temporary file and rename it only when complete (lesson 08, labkit/filestore.py).",
    "slow reader": "stop reading requests from a client that is not reading its replies "
    "(lesson 08: a cap on the replies waiting), so it costs little and stalls no one.",
    "stuck on one client": "the server waited on one client that does not read its replies, "
    "and served no one else meanwhile: one client at a time, or a blocking send. Serve every "
    "client at once and send only what a writable socket takes: selectors (lesson 08) or a "
    "greenlet per client (gevent_files).",
    "garbage and fuzz": "answer every malformed request with an ERR line, then close: check "
    "sizes are ASCII digits and names are plain (labkit/protocol.py, lesson 08).",
    "back to baseline": "close every socket and file you are done with, and drop its state "
    "(lesson 08).",
    "idle CPU": "ask for EVENT_WRITE only while something waits to be sent (lesson 07); a loop "
    "that never waits burns a core.",
    "keeps answering": "one client's work must never block the loop: no blocking call, no loop "
    "without a wait (lessons 06 and 08).",
}


def folders(workdir: Path, seed: int) -> list[str]:
    """Make the server's folders in ``workdir``; return its command-line options for them."""
    root = workdir / "root"  # uploads go there too, so that GET brings them back
    root.mkdir()
    shutil.copy(DATA / "lyrics.txt", root / "lyrics.txt")
    (root / "big.bin").write_bytes(random.Random(f"{seed}:big.bin").randbytes(BIG))
    return ["--root", str(root), "--upload-dir", str(root)]


def _root(subject: Subject) -> Path:
    argv = subject.handle.argv
    return Path(argv[argv.index("--root") + 1])


def ask(
    load: LoadTrace, sock: socket.socket, raw: bytes, wait: float = 3.0
) -> tuple[Response, bytes]:
    """Send one request and read its whole reply; a silence of ``wait`` s raises TimeoutError."""
    sock.settimeout(wait)
    sock.sendall(raw)
    parser, header, body = Parser("response"), None, bytearray()
    while True:
        chunk = sock.recv(1 << 16)
        if not chunk:
            raise ConnectionError("the server closed the connection before its reply ended")
        load.got(len(chunk))
        for event in parser.feed(chunk):
            if isinstance(event, Response):
                header = event
            elif isinstance(event, End):
                assert header is not None
                return header, bytes(body)
            else:
                body += event.data


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def get_checked(load: LoadTrace, sock: socket.socket, name: str, expected: bytes) -> str:
    """GET ``name``; "" if it came back exactly, else what was wrong."""
    header, body = ask(load, sock, request_bytes("GET", name))
    if not header.ok:
        return f"GET {name} was answered ERR {header.code} {header.message}"
    if (len(body), _digest(body)) != (len(expected), _digest(expected)):
        how = "other bytes than" if len(body) == len(expected) else "not the"
        return f"GET {name} brought {how} {len(expected):,} bytes on disk"
    if (header.size, header.sha256) != (len(expected), _digest(expected)):
        return f"GET {name}: the header said {header.size:,} bytes, SHA-256 {header.sha256[:12]}…"
    return ""


def put_checked(load: LoadTrace, sock: socket.socket, name: str, data: bytes) -> str:
    header, _ = ask(load, sock, request_bytes("PUT", name, data))
    if not header.ok:
        return f"PUT {name} was answered ERR {header.code} {header.message}"
    if header.sha256 != _digest(data):
        return f"PUT {name}: the server's SHA-256 {header.sha256[:12]}… is not the upload's"
    return get_checked(load, sock, name, data)


def _safely(step, *args) -> str:
    try:
        return step(*args)
    except (OSError, ProtocolError) as err:
        return f"{type(err).__name__}: {err}"


# -- the batteries -------------------------------------------------------------------------------
def warm_up(subject: Subject) -> str:
    with subject.load.connect(subject.address, 5) as sock:
        return _safely(
            get_checked, subject.load, sock, "big.bin", (_root(subject) / "big.bin").read_bytes()
        )


def probe(subject: Subject) -> str:
    try:
        with subject.load.connect(subject.address, 5) as sock:
            header, _ = ask(subject.load, sock, b"LIST\n", ANSWER_WITHIN)
    except (OSError, ProtocolError) as err:
        return f"got no answer to LIST ({type(err).__name__}: {err})"
    return "" if header.ok else f"was answered ERR {header.code} to LIST"


def concurrency(subject: Subject, rng: random.Random) -> Check:
    """CONCURRENT clients connect, stay connected, and each asks LIST: all must be answered."""
    load = subject.load
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(load.connect(subject.address, 5)) for _ in range(CONCURRENT)]
        for sock in socks:
            sock.sendall(b"LIST\n")
        answered = _answered(socks, load)
    if answered == CONCURRENT:
        return Check(
            "concurrency", True, f"{CONCURRENT} clients connected at once were each answered"
        )
    what = "served one client at a time: " if answered == 1 else ""
    return Check(
        "concurrency",
        False,
        f"{what}of {CONCURRENT} clients connected at once, {answered} got a reply to "
        f"LIST within {ANSWER_WITHIN:g} s",
        "b'LIST\\n'",
        HINTS["concurrency"],
    )


def _answered(socks: list[socket.socket], load: LoadTrace) -> int:
    """How many of ``socks`` received one whole reply within ANSWER_WITHIN seconds."""
    parsers = {s.fileno(): Parser("response") for s in socks}
    done, deadline = 0, time.monotonic() + ANSWER_WITHIN
    with selectors.DefaultSelector() as sel:
        for s in socks:
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ)
        while sel.get_map() and (left := deadline - time.monotonic()) > 0:
            for key, _ in sel.select(min(left, 0.1)):
                sock: socket.socket = key.fileobj  # type: ignore[assignment]
                try:
                    chunk = sock.recv(1 << 16)
                    events = parsers[key.fd].feed(chunk) if chunk else None
                except BlockingIOError:
                    continue
                except (OSError, ProtocolError):  # reset, or a reply that breaks the protocol
                    events = None
                load.got(len(chunk) if events is not None else 0)
                if events is None or any(isinstance(e, End) for e in events):
                    done += events is not None
                    sel.unregister(sock)
    return done


def many_clients(clients: int):
    def exact_bytes(subject: Subject, rng: random.Random) -> Check:
        """``clients`` clients at once each GET big.bin; every fourth also PUTs random bytes
        and GETs them back: every byte checked (length and SHA-256)."""
        big = (_root(subject) / "big.bin").read_bytes()
        uploads = [
            rng.randbytes(rng.randint(1, 64 << 10)) if i % 4 == 0 else b"" for i in range(clients)
        ]
        together = threading.Barrier(clients)

        def client(i: int) -> str:
            try:
                with subject.load.connect(subject.address, 5) as sock:
                    with contextlib.suppress(threading.BrokenBarrierError):
                        together.wait(10)
                    return get_checked(subject.load, sock, "big.bin", big) or (
                        put_checked(subject.load, sock, f"up-{i + 1}.bin", uploads[i])
                        if uploads[i]
                        else ""
                    )
            except OSError:
                together.abort()  # no one waits for a client that failed
                raise

        with ThreadPoolExecutor(clients) as pool:
            problems = list(pool.map(lambda i: _safely(client, i), range(clients)))
        bad = [i for i, p in enumerate(problems) if p]
        puts = sum(1 for u in uploads if u)
        if not bad:
            return Check(
                "exact bytes",
                True,
                f"{clients} clients at once each got big.bin exactly, and {puts} uploads "
                f"came back exactly (length and SHA-256)",
            )
        i = bad[0]
        sent = (
            request_bytes("PUT", f"up-{i + 1}.bin", uploads[i]) if uploads[i] else b"GET big.bin\n"
        )
        return Check(
            "exact bytes",
            False,
            f"{len(bad)} of {clients} clients were not served exactly; client {i + 1}: "
            f"{problems[i]}",
            shorten(sent),
            HINTS["exact bytes"],
        )

    return exact_bytes


def vanishing(subject: Subject, rng: random.Random, n: int = 15) -> Check:
    """Clients that leave mid-upload, mid-download or mid-request; then an ordinary client
    is served and no unfinished upload is listed."""
    for i in range(n):
        if i % 3 == 0:
            data = f"PUT gone-{i}.bin 500000\n".encode() + rng.randbytes(rng.randint(0, 90_000))
        elif i % 3 == 1:
            data = b"GET big.bin\n"
        else:
            data = junk(rng, rng.randint(1, 4000))
        vanish(subject.load, subject.address, data, half_close=i % 2 == 0)
    if not subject.alive:
        return Check(
            "vanishing clients",
            False,
            f"{n} clients left mid-request and {subject.death()}",
            hint=HINTS["vanishing clients"],
        )
    try:
        with subject.load.connect(subject.address, 5) as sock:
            _, body = ask(subject.load, sock, b"LIST\n")
    except (OSError, ProtocolError) as err:
        return Check(
            "vanishing clients",
            False,
            f"after {n} clients left mid-request, LIST failed: {type(err).__name__}: {err}",
            "b'LIST\\n'",
            HINTS["vanishing clients"],
        )
    gone = [
        line for line in body.decode("utf-8", "replace").splitlines() if line.startswith("gone-")
    ]
    if gone:
        return Check(
            "vanishing clients",
            False,
            f"an upload cut off mid-way is listed as a file: {gone[0]!r}",
            shorten(b"PUT gone-0.bin 500000\n..."),
            HINTS["vanishing clients"],
        )
    return Check(
        "vanishing clients",
        True,
        f"{n} clients left mid-request; the next was served, no cut-off upload listed",
    )


def slow_reader(subject: Subject, rng: random.Random) -> Check:
    """Three clients pipeline 2,000 GETs each and never read; meanwhile another is served and
    the server's memory stays bounded."""
    before = subject.rss_kib()
    big = (_root(subject) / "big.bin").read_bytes()
    with contextlib.ExitStack() as stack:
        for _ in range(3):
            sock = stack.enter_context(subject.load.connect(subject.address, 5))
            sock.settimeout(1.0)
            with contextlib.suppress(OSError):
                sock.sendall(request_bytes("GET", "lyrics.txt") * 2000)
        grown = subject.rss_kib() - before if subject.alive else 0
        with subject.load.connect(subject.address, 5) as other:
            problem = _safely(get_checked, subject.load, other, "big.bin", big)
    if problem:
        stuck = problem.startswith("TimeoutError")  # no reply at all: busy with a non-reader
        return Check(
            "slow reader",
            False,
            f"while 3 clients were not reading their replies, another client: {problem}"
            + (": the server was stuck on a client that does not read" if stuck else ""),
            "b'GET big.bin\\n'",
            HINTS["stuck on one client" if stuck else "slow reader"],
        )
    if grown > MEMORY_BOUND_KIB:
        return Check(
            "slow reader",
            False,
            f"3 clients that never read made the server grow by more than "
            f"{MEMORY_BOUND_KIB // 1024} MiB (its bound)",
            hint=HINTS["slow reader"],
        )
    return Check(
        "slow reader",
        True,
        "while 3 clients never read their replies, another was served and the "
        "server's memory stayed bounded",
    )


def bad_requests(rng: random.Random) -> list[bytes]:
    """Requests that break the protocol or name no file that may be stored: each needs ERR."""
    raws = [f"PUT x {number}\n".encode() for number in NASTY_NUMBERS]
    for name in [*NASTY_NAMES, "b" * 2000]:
        raw = name.encode("utf-8", "surrogatepass")
        raws += [b"GET " + raw + b"\n", b"PUT " + raw + b" 3\nabc"]
    raws.append(b"GET \xff\xfe\n")
    raws.append(bytes(rng.randrange(32, 127) for _ in range(3000)))  # no newline in 1,024 bytes
    return raws


def first_line(load: LoadTrace, address: tuple[str, int], raw: bytes) -> bytes:
    with load.connect(address, ANSWER_WITHIN) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(raw)
            sock.shutdown(socket.SHUT_WR)
        reply = b""
        with contextlib.suppress(OSError):
            while b"\n" not in reply and (chunk := sock.recv(4096)):
                reply += chunk
                load.got(len(chunk))
    return reply.split(b"\n")[0]


def garbage(subject: Subject, rng: random.Random) -> Check:
    """Every malformed request is answered with an ERR line; fuzz does not hurt; then an
    ordinary client is served."""
    raws = bad_requests(rng)
    for raw in raws:
        line = first_line(subject.load, subject.address, raw)
        if not line.startswith(b"ERR "):
            got = f"the answer {shorten(line)}" if line else "no answer"
            return Check(
                "garbage and fuzz",
                False,
                f"a malformed request got {got}, not an ERR line",
                shorten(raw),
                HINTS["garbage and fuzz"],
            )
    for i in range(8):
        vanish(subject.load, subject.address, junk(rng, rng.randint(1, 4000)), bool(i % 2))
    problem = warm_up(subject) if subject.alive else subject.death()
    if problem:
        return Check(
            "garbage and fuzz",
            False,
            f"after fuzz, a GET of big.bin: {problem}",
            "b'GET big.bin\\n'",
            HINTS["garbage and fuzz"],
        )
    return Check(
        "garbage and fuzz",
        True,
        f"{len(raws)} malformed requests were each answered ERR; after fuzz a client was served",
    )
