"""Small measurements the lessons make, each short enough to read in full.

Every function returns seconds per operation, measured now on this machine; the lessons compare
two of them measured in the same run, never a number against a constant.
"""

from __future__ import annotations

import threading
import time

__all__ = [
    "compute",
    "generator_switch_cost",
    "greenlet_switch_cost",
    "thread_handoff_cost",
    "lock_handoff_cost",
]


def compute(seconds: float) -> None:
    """Keep the CPU busy for ``seconds`` of wall-clock time: a task's "running" part.

    It watches the clock rather than doing a fixed amount of work, so it stands for "this
    task computes for a while", not for a benchmark of the CPU.
    """
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def generator_switch_cost(n: int = 200_000) -> float:
    """Seconds for one switch into a generator coroutine and back (one ``send``)."""

    def echo():
        value = None
        while True:
            value = yield value  # control goes back to the caller here

    coro = echo()
    next(coro)  # prime it: run up to the first yield
    send = coro.send
    start = time.perf_counter()
    for i in range(n):
        send(i)
    return (time.perf_counter() - start) / n


def greenlet_switch_cost(n: int = 200_000) -> float:
    """Seconds for one switch into a greenlet and back."""
    import greenlet

    main = greenlet.getcurrent()

    def echo(value):
        while True:
            value = main.switch(value)

    g = greenlet.greenlet(echo)
    switch = g.switch
    start = time.perf_counter()
    for i in range(n):
        switch(i)
    elapsed = time.perf_counter() - start
    g.throw()  # finish it (GreenletExit)
    return elapsed / n


def thread_handoff_cost(n: int = 5_000) -> float:
    """Seconds for handing control to another OS thread and back (a ping-pong of two Events)."""
    ping, pong = threading.Event(), threading.Event()

    def partner():
        for _ in range(n):
            ping.wait()
            ping.clear()
            pong.set()  # wake the main thread

    t = threading.Thread(target=partner)
    t.start()
    start = time.perf_counter()
    for _ in range(n):
        ping.set()  # wake the partner ...
        pong.wait()  # ... and sleep until it wakes us
        pong.clear()
    elapsed = time.perf_counter() - start
    t.join()
    return elapsed / n


def lock_handoff_cost(n: int = 5_000) -> float:
    """Seconds for one round trip between two threads that wake each other with bare locks
    (what is left of a hand-off without an Event's Python code: a kernel wake-up and the GIL
    changing hands)."""
    main_turn, partner_turn = threading.Lock(), threading.Lock()
    main_turn.acquire()
    partner_turn.acquire()

    def partner():
        for _ in range(n):
            if not partner_turn.acquire(timeout=10):  # sleeps until main releases it
                return
            main_turn.release()  # wake main

    t = threading.Thread(target=partner)
    t.start()
    start = time.perf_counter()
    for _ in range(n):
        partner_turn.release()  # wake the partner ...
        if not main_turn.acquire(timeout=10):  # ... and sleep until it wakes us
            raise TimeoutError("the partner thread stopped answering")
    elapsed = time.perf_counter() - start
    t.join(timeout=10)
    return elapsed / n
