"""Exercises at the end of each lesson: ``hint(n)`` nudges, ``check(n, answer)`` says if you have it.

    from labkit.exercises import lesson
    hint, check = lesson(1)
    hint(1)                  # the first hint; call again for the next one
    check(1, running_max)    # True when right; a message that helps when not

Each exercise's checker runs your answer on fresh inputs, so it cannot be fooled by a constant,
and it never crashes on a wrong answer: it explains what went wrong.
"""
from __future__ import annotations

import inspect
import time
from dataclasses import dataclass, field
from typing import Any, Callable

__all__ = ["lesson", "Exercise", "NotYet"]


class NotYet(Exception):
    """Raised by a checker with the message the student should read."""


@dataclass
class Exercise:
    question: str
    hints: list[str]
    checker: Callable[[Any], str]        # returns the praise, raises NotYet with advice
    solution: Callable[[], Any]          # a correct answer (used by the course's own tests)
    shown_hints: int = field(default=0, repr=False)


def _no_answer(answer: Any) -> bool:
    return answer is ... or answer is None or (callable(answer) and _returns_nothing(answer))


def _returns_nothing(fn: Callable) -> bool:
    """A placeholder function whose body is only ``...`` or ``pass``."""
    try:
        lines = [ln.strip() for ln in inspect.getsource(fn).splitlines()[1:]]
    except (OSError, TypeError):
        return False
    body = [ln for ln in lines if ln and not ln.startswith(("#", '"""', "'''"))]
    return bool(body) and all(ln in ("...", "pass") or ln.startswith("...") for ln in body)


class Lesson:
    def __init__(self, number: int, exercises: dict[int, Exercise]) -> None:
        self.number = number
        self.exercises = exercises

    def _get(self, n: int) -> Exercise:
        if n not in self.exercises:
            raise ValueError(f"lesson {self.number:02d} has exercises "
                             f"{', '.join(map(str, self.exercises))}, not {n}")
        return self.exercises[n]

    def hint(self, n: int) -> None:
        """Print the next hint for exercise ``n`` (the last one repeats)."""
        ex = self._get(n)
        i = min(ex.shown_hints, len(ex.hints) - 1)
        ex.shown_hints += 1
        print(f"Hint {i + 1}/{len(ex.hints)} for exercise {n}: {ex.hints[i]}")

    def check(self, n: int, answer: Any) -> None:
        """Check an answer; print why it is right, or what to look at."""
        self.passed(n, answer)

    def passed(self, n: int, answer: Any) -> bool:
        """Like check, and return True when the answer is right."""
        ex = self._get(n)
        if _no_answer(answer):
            print(f"Exercise {n}: no answer yet. Replace the ... with yours; hint({n}) helps.")
            return False
        try:
            praise = ex.checker(answer)
        except NotYet as advice:
            print(f"Exercise {n}: not yet. {advice}")
            return False
        except Exception as exc:          # the student's code raised: say so, don't crash
            print(f"Exercise {n}: not yet. Your answer raised {type(exc).__name__}: {exc}")
            return False
        print(f"Exercise {n}: correct! {praise}")
        return True


def lesson(number: int) -> tuple[Callable[[int], None], Callable[[int, Any], None]]:
    """``hint`` and ``check`` for one lesson's exercises."""
    if number not in LESSONS:
        raise ValueError(f"no exercises for lesson {number}; lessons with exercises: "
                         f"{', '.join(map(str, LESSONS))}")
    chosen = Lesson(number, LESSONS[number]())
    return chosen.hint, chosen.check


def exercises_of(number: int) -> dict[int, Exercise]:
    """The exercises of one lesson (fresh objects), for tests and instructors."""
    return LESSONS[number]()


# -- shared checking helpers -------------------------------------------------------------------
def _expect_equal(answer: Any, expected: Any, what: str) -> None:
    if answer != expected:
        raise NotYet(f"{what}: you said {answer!r}.")


def _words(answer: Any) -> list[str]:
    """Accept "A0 B0 A1" or ["A0", "B0", "A1"]."""
    if isinstance(answer, str):
        return answer.replace(",", " ").split()
    return [str(a) for a in answer]


def _close(answer: float, expected: float, tolerance: float) -> bool:
    return abs(float(answer) - expected) <= tolerance * expected


# -- lesson 01: coroutines with generators -----------------------------------------------------
def _running_max_reference():
    best = None
    while True:
        value = yield best
        best = value if best is None else max(best, value)


def _check_running_max(fn: Callable) -> str:
    if not inspect.isgeneratorfunction(fn):
        raise NotYet("running_max should be a generator function: it needs a `yield`.")
    for values in ([3, 1, 4, 1, 5, 9, 2, 6], [-5, -7, -1], [2.5]):
        coro = fn()
        next(coro)                                   # prime it
        got = [coro.send(v) for v in values]
        want = [max(values[:i + 1]) for i in range(len(values))]
        if got != want:
            raise NotYet(f"sending {values} gave {got}, expected {want}. "
                         "Does `value = yield best` come before you update best?")
    return "Each send() resumes the generator with its locals intact: that is a coroutine."


def _check_round_robin(answer: Any) -> str:
    expected = ["A0", "B0", "C0", "A1", "C1", "A2"]
    got = _words(answer)
    if got != expected:
        raise NotYet(f"you said {' '.join(got)}. Take one step from each task in turn; "
                     "a finished task leaves the queue.")
    return "Round-robin: each task runs until its next yield, then goes to the back of the queue."


def _check_blocking_times(answer: Any) -> str:
    try:
        blocking, cooperative = answer
    except (TypeError, ValueError):
        raise NotYet("answer with two numbers of seconds: (blocking, cooperative).") from None
    if not _close(blocking, 0.6, 0.15):
        raise NotYet(f"blocking: {blocking} s. time.sleep stops the only thread; nothing else "
                     "runs meanwhile, so the waits add up.")
    if not _close(cooperative, 0.2, 0.25):
        raise NotYet(f"cooperative: {cooperative} s. The three waits overlap when the scheduler "
                     "handles the sleeping.")
    return "Three waits of 0.2 s: 0.6 s when each blocks the thread, about 0.2 s when they overlap."


def _lesson_01() -> dict[int, Exercise]:
    return {
        1: Exercise("Write a coroutine running_max() that, after priming, answers each "
                    "send(x) with the largest value sent so far.",
                    ["Start from the averager: keep one local, `best`, instead of a total.",
                     "The loop body is `value = yield best` followed by updating best.",
                     "best = value if best is None else max(best, value)"],
                    _check_running_max, lambda: _running_max_reference),
        2: Exercise("The round-robin scheduler runs count('A', 3), count('B', 1) and "
                    "count('C', 2). In what order are the steps printed?",
                    ["count(name, n) yields n times, printing name0, name1, ...",
                     "After B0, task B is finished and leaves the queue."],
                    _check_round_robin, lambda: "A0 B0 C0 A1 C1 A2"),
        3: Exercise("Three tasks each wait 0.2 s. How many seconds does the whole run take "
                    "(a) when they wait with time.sleep, (b) when they yield ('sleep', 0.2)?",
                    ["The first timeline in this lesson shows the blocking case.",
                     "Answer as a pair: (0.?, 0.?)"],
                    _check_blocking_times, lambda: (0.6, 0.2)),
    }


# -- lesson 02: greenlet ------------------------------------------------------------------------
def _check_left_right(answer: Any) -> str:
    got = _words(answer)
    if got != ["L1", "R1", "L2"]:
        hint = " R2 is never printed: why?" if "R2" in got else ""
        raise NotYet(f"you said {' '.join(got)}.{hint} When left finishes, control goes to its "
                     "parent (the main greenlet), not back to right.")
    return "A finished greenlet returns to its parent; right stays suspended forever."


def _check_doubler(answer: Any) -> str:
    _expect_equal(tuple(answer), (20, 40), "a is what doubler first switches back (10 * 2); "
                  "b is doubler's answer to the value of a")
    return "switch(x) passes x in and returns whatever the other side switches back."


def _check_choice_io(answer: Any) -> str:
    if str(answer).strip().lower() != "b":
        raise NotYet("a greenlet gives up control only where it calls switch(); a blocking recv "
                     "never does.")
    return "greenlet only switches where you tell it to. gevent adds the switch at every wait."


def _lesson_02() -> dict[int, Exercise]:
    return {
        1: Exercise("What does the left/right program print, in order?",
                    ["Follow the switches by hand: main -> left -> right -> ...",
                     "Where does control go when a greenlet's function returns?"],
                    _check_left_right, lambda: ["L1", "R1", "L2"]),
        2: Exercise("What are a and b in the doubler program? Answer (a, b).",
                    ["The first g.switch(10) starts doubler(10).",
                     "main.switch(x * 2) hands x * 2 back as the result of g.switch(...)."],
                    _check_doubler, lambda: (20, 40)),
        3: Exercise("Two greenlets each call sock.recv() on a socket whose data arrives after "
                    "0.1 s. Why does the run take 0.2 s? (a) greenlets run on two threads that "
                    "share a lock, (b) recv blocks the one thread and greenlet never switches "
                    "by itself, (c) the OS runs greenlets one at a time",
                    ["Lesson 02 measured exactly this."],
                    _check_choice_io, lambda: "b"),
    }


# -- lesson 03: gevent basics -------------------------------------------------------------------
def _check_wakeup_order(answer: Any) -> str:
    _expect_equal(_words(answer), ["toast", "eggs", "tea"],
                  "they finish in the order their sleeps end")
    return "gevent.sleep hands control to the hub, which wakes each greenlet when its timer fires."


def _check_pool_time(answer: Any) -> str:
    if not _close(answer, 150, 0.2):
        raise NotYet(f"{answer} ms. Six tasks, two at a time: how many rounds of 50 ms?")
    return "Pool(2) runs 6 tasks in 3 rounds of 50 ms: about 150 ms."


def _nap_reference(seconds):
    import gevent
    gevent.sleep(seconds)


def _check_nap(fn: Callable) -> str:
    import gevent
    start = time.perf_counter()
    gevent.joinall([gevent.spawn(fn, 0.05) for _ in range(5)], timeout=2)
    elapsed = time.perf_counter() - start
    if elapsed < 0.045:
        raise NotYet(f"five naps of 0.05 s took {elapsed * 1000:.0f} ms: does nap wait at all?")
    if elapsed > 0.15:
        raise NotYet(f"five naps of 0.05 s took {elapsed * 1000:.0f} ms: they ran one after the "
                     "other. Which sleep lets other greenlets run?")
    return f"five naps overlapped: {elapsed * 1000:.0f} ms for 5 x 50 ms."


def _lesson_03() -> dict[int, Exercise]:
    return {
        1: Exercise("Greenlets tea (sleeps 0.03 s), toast (0.01 s) and eggs (0.02 s) are spawned "
                    "in that order and each prints its name after sleeping. Output order?",
                    ["All three start sleeping at about the same moment."],
                    _check_wakeup_order, lambda: ["toast", "eggs", "tea"]),
        2: Exercise("A Pool(2) runs 6 tasks that each gevent.sleep(0.05). About how many "
                    "milliseconds does pool.map take?",
                    ["At most 2 run at once; the timeline of the Pool section shows rounds."],
                    _check_pool_time, lambda: 150),
        3: Exercise("Write nap(seconds) so that five greenlets napping 0.05 s at once finish "
                    "in about 0.05 s, not 0.25 s.",
                    ["time.sleep blocks the whole thread.", "gevent has its own sleep."],
                    _check_nap, lambda: _nap_reference),
    }


# -- lesson 04: synchronous vs asynchronous I/O --------------------------------------------------
def _check_sequential_time(answer: Any) -> str:
    if not _close(answer, 3.0, 0.15):
        raise NotYet(f"{answer} s. One after the other, each request waits its full 0.1 s.")
    return "30 x 0.1 s = 3 s: sequential time is the sum of the latencies."


def _check_gevent_time(answer: Any) -> str:
    if not 0.09 <= float(answer) <= 0.2:
        raise NotYet(f"{answer} s. All 30 requests are sent at once and wait together.")
    return "about one latency (0.1 s) plus a little overhead: the waits overlap."


def _check_patch_first(answer: Any) -> str:
    text = str(answer).replace(" ", "")
    if "monkey.patch_all()" not in text and "patch_all()" not in text:
        raise NotYet("which call makes the standard library's blocking calls cooperative?")
    return "patch_all() first, before anything imports socket, ssl, time or threading."


def _check_overlap(answer: Any) -> str:
    if not _close(answer, 50, 0.1):
        raise NotYet(f"{answer}. Overlap is seconds of waiting per second of wall time: 50 "
                     "requests of 0.2 s waiting together for about 0.2 s.")
    return "50 requests x 0.2 s of waiting in about 0.2 s of wall time: an overlap of about 50."


def _lesson_04() -> dict[int, Exercise]:
    return {
        1: Exercise("30 requests, each answered after 0.1 s, fetched one after another: about "
                    "how many seconds?",
                    ["The first timeline of this lesson shows the sequential case."],
                    _check_sequential_time, lambda: 3.0),
        2: Exercise("The same 30 requests with gevent: about how many seconds?",
                    ["How long does the slowest single request take?"],
                    _check_gevent_time, lambda: 0.11),
        3: Exercise("Which line must come first in a program that uses gevent with ordinary "
                    "blocking libraries? Answer with the line of code.",
                    ["The patch_too_late script shows what happens otherwise."],
                    _check_patch_first, lambda: "from gevent import monkey; monkey.patch_all()"),
        4: Exercise("A run's overlap is its total waiting time divided by its wall time. What "
                    "overlap does gevent reach for 50 requests of 0.2 s? Try it with the panel.",
                    ["Sequential: overlap 1. Perfectly concurrent: overlap N."],
                    _check_overlap, lambda: 48),
    }


# -- lesson 05: the event-driven model ------------------------------------------------------------
def _call_later_reference(loop, delay, callback):
    async def later():
        await loop.sleep(delay)
        callback()
    return loop.create_task(later())


def _check_call_later(fn: Callable) -> str:
    from labkit.eventloop.futures import Loop
    loop, fired = Loop(), []
    start = time.perf_counter()

    def note(name):
        return lambda: fired.append((name, round(time.perf_counter() - start, 2)))

    async def main():
        fn(loop, 0.06, note("late"))
        fn(loop, 0.02, note("early"))
        await loop.sleep(0.1)

    loop.run_until_complete(main())
    names = [name for name, _ in fired]
    if names != ["early", "late"]:
        raise NotYet(f"callbacks fired: {names or 'none'}; expected early, then late. Does your "
                     "task await loop.sleep(delay) before calling the callback?")
    late_at = fired[1][1]
    if late_at < 0.05:
        raise NotYet(f"the 0.06 s callback fired after {late_at} s: it did not wait.")
    return "a timer is just a Future that the loop completes when its time comes."


def _check_predicted_total(answer: Any) -> str:
    if not _close(answer, 0.35, 0.1):
        raise NotYet(f"{answer} s. The three computations cannot overlap (one thread), the waits "
                     "can: when does the last task start waiting?")
    return "3 x 0.05 s of computing one after another, then the last 0.2 s wait: 0.35 s."


def _check_best_fit(answer: Any) -> str:
    if str(answer).strip().lower() != "b":
        raise NotYet("look for many independent tasks that mostly wait; computing is not waiting.")
    return "thousands of mostly idle connections: many tasks, independent, mostly waiting."


def _lesson_05() -> dict[int, Exercise]:
    return {
        1: Exercise("Write call_later(loop, delay, callback) for labkit.eventloop.futures.Loop: "
                    "callback() runs about delay seconds later, while other tasks go on.",
                    ["Make a small coroutine that awaits loop.sleep(delay), then calls callback.",
                     "Hand that coroutine to loop.create_task(...) and return the task."],
                    _check_call_later, lambda: _call_later_reference),
        2: Exercise("Three tasks each compute for 0.05 s and then wait 0.2 s for I/O, on one event "
                    "loop. About how many seconds does the run take?",
                    ["Draw it: computing blocks the loop, waiting does not."],
                    _check_predicted_total, lambda: 0.35),
        3: Exercise("Which suits an event loop best? (a) resizing 1,000 images (b) a chat server "
                    "with 5,000 mostly idle connections (c) one large matrix multiplication",
                    ["The section 'When is the event-driven model the right choice?'"],
                    _check_best_fit, lambda: "b"),
    }


# -- lesson 06: a gevent socket server ------------------------------------------------------------
def _handle_reference(conn):
    with conn:
        while data := conn.recv(65536):
            conn.sendall(data)


def _check_handle(fn: Callable) -> str:
    import socket
    import threading
    server_side, client = socket.socketpair()
    client.settimeout(2)

    def run():
        try:
            fn(server_side)
        except OSError:                      # we close its socket if it spins: that ends it
            pass

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    try:
        client.sendall(b"ping")
        echoed = client.recv(100)
    except OSError as err:
        raise NotYet(f"no echo came back ({type(err).__name__}).") from None
    finally:
        client.shutdown(socket.SHUT_WR)               # the client is done
    worker.join(1.0)
    if worker.is_alive():
        server_side.close()                  # stop the spinning thread
        raise NotYet("after the client closed, handle() kept running: it spins on b''. "
                     "Stop when recv returns b''.")
    client.close()
    if echoed != b"ping":
        raise NotYet(f"sent b'ping', got back {echoed!r}.")
    return "it echoes, and returns as soon as recv() says the client has closed."


def _check_pool_rounds(answer: Any) -> str:
    if not _close(answer, 1.0, 0.1):
        raise NotYet(f"{answer} s. At most 10 at a time, each 0.1 s: how many rounds?")
    return "100 clients, 10 at a time, 0.1 s each: 10 rounds, about 1 s."


def _check_eof_value(answer: Any) -> str:
    if answer != b"":
        raise NotYet(f"{answer!r}? Look at the test in gevent_echo's handler.")
    return "b'' (empty bytes) means the peer closed; it is returned at once, every time."


def _lesson_06() -> dict[int, Exercise]:
    return {
        1: Exercise("Write handle(conn): echo everything the client sends, and return when the "
                    "client closes. (It is tested with a plain thread and a socketpair.)",
                    ["recv returns b'' once the other side has closed.",
                     "while data := conn.recv(65536): conn.sendall(data)"],
                    _check_handle, lambda: _handle_reference),
        2: Exercise("A StreamServer with spawn=Pool(10) gets 100 clients at once; each keeps its "
                    "handler busy 0.1 s. About how many seconds until all are served?",
                    ["Pool(10): an 11th handler starts only when one of the 10 ends."],
                    _check_pool_rounds, lambda: 1.0),
        3: Exercise("What does sock.recv(1024) return once the other side has closed the "
                    "connection (and everything it sent has been read)?",
                    ["Try it: a, b = socket.socketpair(); b.close(); a.recv(1024)"],
                    _check_eof_value, lambda: b""),
    }


# -- lesson 07: select, poll and epoll -------------------------------------------------------------
def _send_some_reference(sock, buffer):
    try:
        sent = sock.send(buffer)
    except BlockingIOError:
        return 0
    del buffer[:sent]
    return sent


def _check_send_some(fn: Callable) -> str:
    import os
    import socket
    a, b = socket.socketpair()
    with a, b:
        a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        a.setblocking(False)
        original = os.urandom(1 << 20)
        buffer, received, rounds = bytearray(original), bytearray(), 0
        while buffer and rounds < 10_000:
            before = len(buffer)
            sent = fn(a, buffer)
            if sent is None or before - len(buffer) != sent:
                raise NotYet(f"send_some returned {sent!r} but the buffer shrank by "
                             f"{before - len(buffer)}: return what was sent, and remove "
                             "exactly that from the front of the buffer.")
            b.setblocking(False)
            try:
                while chunk := b.recv(65536):
                    received += chunk
            except BlockingIOError:
                pass
            rounds += 1
        if rounds == 1:
            raise NotYet("everything went in one send: it should not, with a 4 KiB buffer.")
        if bytes(received) != original[:len(received)] or buffer:
            raise NotYet("bytes were lost or reordered: keep buffer[sent:] for the next call.")
    return f"1 MiB went through a small socket buffer in {rounds} partial sends, nothing lost."


def _check_flat_cost(answer: Any) -> str:
    if str(answer).strip().lower() != "epoll":
        raise NotYet("look at the log-log plot: which line stays flat?")
    return "epoll keeps the watched set in the kernel and returns only ready sockets."


def _check_edge(answer: Any) -> str:
    if answer not in (False, "no", "No"):
        raise NotYet("edge-triggered reports changes; with no new data, what changed?")
    return "no new edge, no event: with EPOLLET, read until EAGAIN or the rest waits forever."


def _check_windows(answer: Any) -> str:
    if str(answer).strip().lower() != "a":
        raise NotYet("the error message was 'too many file descriptors in select()'.")
    return "Python's Windows build sets FD_SETSIZE to 512; Linux's select stops at fd 1024."


def _lesson_07() -> dict[int, Exercise]:
    return {
        1: Exercise("Which call's cost stays flat as the number of watched sockets grows: select, "
                    "poll or epoll?", ["The figure of the cost section."],
                    _check_flat_cost, lambda: "epoll"),
        2: Exercise("Write send_some(sock, buffer) for a non-blocking socket: send what the "
                    "kernel takes, remove exactly that from the front of the bytearray, return "
                    "the count (0 if it would block).",
                    ["sent = sock.send(buffer); del buffer[:sent]",
                     "send raises BlockingIOError when nothing fits."],
                    _check_send_some, lambda: _send_some_reference),
        3: Exercise("Edge-triggered epoll reported EPOLLIN for 10 bytes; you read 4. If nothing "
                    "new arrives, does the next poll() report the socket again? (True/False)",
                    ["The edge- vs level-triggered section has this exact experiment."],
                    _check_edge, lambda: False),
        4: Exercise("Why did the original course's select server fail at about 500 clients on "
                    "Windows? (a) Python's Windows select takes at most 512 sockets, (b) the "
                    "machine ran out of ports, (c) 500 threads were too many for Windows",
                    ["Read the error message of the select section again."],
                    _check_windows, lambda: "a"),
    }


# -- lesson 08: the selectors file server ---------------------------------------------------------
def _check_data_in_first_recv(answer: Any) -> str:
    if answer != 951:
        raise NotYet(f"{answer}. Count the header: 'OK', a space, '1989', a space, 64 hex "
                     "digits, and the newline.")
    return "73 bytes of header, so 951 bytes of the file came with it: never assume they don't."


def _split_replies_reference(stream: bytes) -> list[bytes]:
    bodies = []
    while stream:
        header, _, rest = stream.partition(b"\n")
        size = int(header.split()[1])
        bodies.append(rest[:size])
        stream = rest[size:]
    return bodies


def _check_split_replies(fn: Callable) -> str:
    import hashlib
    import random
    rng = random.Random(8)
    for _ in range(20):
        bodies = [rng.randbytes(rng.randint(0, 300)) + b"\n OK 5 " for _ in range(rng.randint(1, 5))]
        stream = b"".join(f"OK {len(b)} {hashlib.sha256(b).hexdigest()}\n".encode() + b
                          for b in bodies)
        got = fn(stream)
        if got != bodies:
            raise NotYet("the bodies came out wrong. A body may contain newlines and even 'OK': "
                         "after a header, take exactly <size> bytes, whatever they are.")
    return "the length in the header, not the content, says where each body ends."


def _check_refused_name(answer: Any) -> str:
    if str(answer).strip().lower() != "b":
        raise NotYet("two of them are plain names, Chinese characters included.")
    return "a name with a path in it could reach outside the served folder: refused with 403."


def _check_fds(answer: Any) -> str:
    if not 10_000 <= int(answer) <= 10_100:
        raise NotYet(f"{answer}. Each connected client is one socket, and a socket is a file "
                     "descriptor, in the server's process.")
    return "10,000 sockets plus a handful (the listener, the selector, stdin...): ulimit -n matters."


def _lesson_08() -> dict[int, Exercise]:
    return {
        1: Exercise("A GET reply's header is 'OK 1989 <64 hex digits>\\n'. The client's first "
                    "recv(1024) returned 1024 bytes. How many of them are file data?",
                    ["Add up the header's characters, newline included."],
                    _check_data_in_first_recv, lambda: 951),
        2: Exercise("Write split_replies(stream) -> list of bodies, for a byte string holding "
                    "several 'OK <size> <sha256>\\n<body>' replies back to back.",
                    ["header, _, rest = stream.partition(b'\\n')",
                     "size = int(header.split()[1]); the body is rest[:size]"],
                    _check_split_replies, lambda: _split_replies_reference),
        3: Exercise("Which name does the server refuse? (a) 歌词.txt (b) ../secret "
                    "(c) notes-2024.txt", ["labkit.protocol.check_name decides."],
                    _check_refused_name, lambda: "b"),
        4: Exercise("At least how many file descriptors does the server process need to hold "
                    "10,000 clients connected at once?",
                    ["What is a socket, to the operating system?"], _check_fds, lambda: 10_005),
    }


LESSONS: dict[int, Callable[[], dict[int, Exercise]]] = {1: _lesson_01, 2: _lesson_02,
                                                         3: _lesson_03, 4: _lesson_04,
                                                         5: _lesson_05, 6: _lesson_06,
                                                         7: _lesson_07, 8: _lesson_08}
