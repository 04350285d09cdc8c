"""Lesson 05's exercises: the event-driven model."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from labkit.exercises import (
    Exercise,
    NotYet,
    close_to,
    first_reading,
    readings,
    worked,
)
from labkit.exercises.reading import choice_advice


def call_later(loop, delay, callback):
    async def later():
        await loop.sleep(delay)  # only this small task waits: the loop runs the others
        callback()

    return loop.create_task(later())


def _check_call_later(fn: Callable) -> str:
    from labkit.eventloop.futures import Loop

    fired = []
    start = time.perf_counter()

    def note(name):
        return lambda: fired.append((name, round(time.perf_counter() - start, 2)))

    async def main():
        fn(loop, 0.06, note("late"))
        fn(loop, 0.02, note("early"))
        await loop.sleep(0.1)

    with Loop() as loop:
        loop.run_until_complete(main())
    names = [name for name, _ in fired]
    if names != ["early", "late"]:
        raise NotYet(
            f"callbacks fired: {names or 'none'}; expected early, then late. Does your "
            "task await loop.sleep(delay) before calling the callback?"
        )
    late_at = fired[1][1]
    if late_at < 0.05:
        raise NotYet(f"the 0.06 s callback fired after {late_at} s: it did not wait.")
    return "a timer is just a Future that the loop completes when its time comes."


MEASURED = 0.50  # what the lesson's loop takes: the requests leave together at 0.15 s
DRAWN = 0.40  # the drawing in which each request leaves the moment its task stops computing
WHY = (
    "the three first halves take turns until 0.15 s; a task's request leaves only when the "
    "loop next checks its socket, after all three have computed, so all three waits run "
    "from about 0.15 s to 0.35 s, and the three second halves then take turns until about "
    "0.50 s."
)


def measure_three_tasks(compute_s: float = 0.05, wait_s: float = 0.2) -> float:
    """Run the exercise's timeline now, the way the lesson's tasks run: each computes, waits
    until its socket is writable (as a request must before it is sent), waits ``wait_s``,
    computes again. Returns the seconds it took on this machine."""
    import socket

    from labkit.eventloop import futures
    from labkit.eventloop.models import work
    from labkit.timeline import Recorder

    rec = Recorder()

    async def task(name, sock):
        work(rec, name, compute_s)
        await loop.wait_for(sock, futures.selectors.EVENT_WRITE)  # "send the request"
        await loop.sleep(wait_s)  # the server's delay
        work(rec, name, compute_s)

    pairs = [socket.socketpair() for _ in range(3)]
    try:
        with futures.Loop() as loop:
            started = time.perf_counter()
            tasks = [task(f"Task {i}", a) for i, (a, _) in enumerate(pairs, 1)]
            loop.run_until_complete(futures.gather(loop, tasks))
            return time.perf_counter() - started
    finally:
        for a, b in pairs:
            a.close()
            b.close()


def _check_predicted_total(answer: Any) -> str:
    if first_reading(answer, lambda s: close_to(s, MEASURED, 0.1), "s") is not None:
        return "the lesson's loop measures about 0.50 s: " + WHY
    if first_reading(answer, lambda s: close_to(s, DRAWN, 0.1), "s") is not None:
        return (
            "0.40 s is right for a loop that sends each request the moment its task stops "
            "computing (waits end at 0.25, 0.30 and 0.35 s). On the lesson's loop the run "
            "measures about 0.50 s: " + WHY
        )
    longer = [s for s in readings(answer, "s") if s > MEASURED]
    if longer and min(longer) <= 1.1 * measure_three_tasks():
        return "this machine measures about that right now (it is busy); unloaded: " + WHY
    unit = " (in seconds: 500 ms is 0.5)" if any(s > 10 for s in readings(answer, "s")) else ""
    raise NotYet(
        f"{answer!r}{unit}. The three computations cannot overlap (one thread), the "
        "waits can. When does the last task's wait start and end, and what does each "
        "task still do after its wait?"
    )


_CHOICES = {"a": "resizing", "b": "chat server", "c": "matrix"}


# Shaped like lesson02's _check_choice_io, on purpose: choice_advice does the reading, and
# what stays is this question's own options, advice and praise.
def _check_best_fit(answer: Any) -> str:
    advice = (
        'answer "a", "b" or "c". Look for many independent tasks that '
        "mostly wait; computing is not waiting."
    )
    if wrong := choice_advice(answer, _CHOICES, "b", advice):
        raise NotYet(wrong)
    return "thousands of mostly idle connections: many tasks, independent, mostly waiting."


def exercises() -> dict[int, Exercise]:
    return {
        1: Exercise(
            """
            Write `call_later(loop, delay, callback)` for `labkit.eventloop.futures.Loop`:
            `callback()` runs about `delay` seconds later, while other tasks go on.""",
            [
                "Make a small coroutine that awaits loop.sleep(delay), then calls callback.",
                "Hand that coroutine to loop.create_task(...) and return the task.",
            ],
            _check_call_later,
            answer=worked(1, call_later),
            why="""`await loop.sleep(delay)` suspends only the small task `later`: the loop goes
            on running the other tasks and resumes it when the timer is due, and then it calls
            callback(). A timer is just a Future that the loop completes when its time
            comes.""",
        ),
        2: Exercise(
            """
            Predict a timeline: three tasks each compute for 0.05 s, wait 0.2 s for I/O,
            then compute for 0.05 s more, on one event loop. About how many seconds does the run
            take? Then check it: in the cell that defines the tasks, set `COMPUTE = 0.05` and
            every value of `WAITS` to 0.2, run that cell and the one that runs the three models
            (its server lives in a `with` block, so running it again is safe), and print
            `totals["event loop"]`. If the run disagrees with your drawing, the checker's
            answer says why.""",
            [
                "Draw it: computing blocks the loop, waiting does not.",
                "The last task starts waiting at 0.15 s. After their waits, the three "
                "second halves take turns too.",
            ],
            _check_predicted_total,
            answer="""
            check(2, 3 * 0.05 + 0.2 + 3 * 0.05)   # first halves, the shared wait, second halves""",
            why="About 0.50 s: " + WHY,
        ),
        3: Exercise(
            """
            Which suits an event loop best? (a) resizing 1,000 images, (b) a chat server
            with 5,000 mostly idle connections, (c) one large matrix multiplication. Answer
            `"a"`, `"b"` or `"c"`.""",
            ["The section 'When is the event-driven model the right choice?'"],
            _check_best_fit,
            answer="""
            check(3, "b")""",
            why="""An event loop shines with many independent tasks that mostly wait: 5,000
            idle connections cost it one thread and a little memory each. Resizing images and
            multiplying matrices compute, and on one thread computing does not overlap.""",
        ),
    }
