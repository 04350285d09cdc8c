"""Lesson 05's exercises: the event-driven model."""
from __future__ import annotations

import time
from typing import Any, Callable

from labkit.exercises.core import NotYet, Exercise, close_to


def _call_later_reference(loop, delay, callback):
    async def later():
        await loop.sleep(delay)
        callback()
    return loop.create_task(later())


def _call_later_on_the_timer(loop, delay, callback):
    timer = loop.sleep(delay)                            # a Future the loop completes later
    timer.add_done_callback(lambda _: callback())
    return timer


async def _after(loop, delay, callback):
    await loop.sleep(delay)
    return callback()


def _call_later_with_arguments(loop, delay, callback):
    return loop.create_task(_after(loop, delay, callback))


def _call_later_that_blocks(loop, delay, callback):
    time.sleep(delay)                                    # stops the whole loop meanwhile
    callback()


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
        raise NotYet(f"callbacks fired: {names or 'none'}; expected early, then late. Does your "
                     "task await loop.sleep(delay) before calling the callback?")
    late_at = fired[1][1]
    if late_at < 0.05:
        raise NotYet(f"the 0.06 s callback fired after {late_at} s: it did not wait.")
    return "a timer is just a Future that the loop completes when its time comes."


PREDICTED = 0.40    # 3 x 0.05 s computing, the last wait ends at 0.35 s, then 3 x 0.05 s more
WHY_MORE = ("a task's request leaves only when the loop next checks its socket, which is after "
            "the other tasks have computed: all three waits start at about 0.15 s, end at "
            "0.35 s, and the three second halves then take turns until about 0.50 s.")


def measure_three_tasks(compute_s: float = 0.05, wait_s: float = 0.2) -> float:
    """Run the exercise's timeline now, the way the lesson's tasks run: each computes, waits
    until its socket is writable (as a request must before it is sent), waits ``wait_s``,
    computes again. Returns the seconds it took on this machine."""
    import socket

    from labkit.bench import compute
    from labkit.eventloop import futures

    async def task(sock):
        compute(compute_s)
        await loop.wait_for(sock, futures.selectors.EVENT_WRITE)   # "send the request"
        await loop.sleep(wait_s)                                   # the server's delay
        compute(compute_s)

    pairs = [socket.socketpair() for _ in range(3)]
    try:
        with futures.Loop() as loop:
            started = time.perf_counter()
            loop.run_until_complete(futures.gather(loop, [task(a) for a, _ in pairs]))
            return time.perf_counter() - started
    finally:
        for a, b in pairs:
            a.close()
            b.close()


def _check_predicted_total(answer: Any) -> str:
    answer = float(answer)
    if close_to(answer, PREDICTED, 0.1):
        return ("computing cannot overlap (one thread), waiting can: 0.15 s of computing, the "
                "last wait ends at 0.35 s, then the three second halves take turns: 0.40 s. "
                "The lesson's run measures about 0.50 s: " + WHY_MORE)
    measured = measure_three_tasks() if answer > PREDICTED else PREDICTED
    if PREDICTED < answer <= 1.1 * measured:
        return f"this machine measures {measured:.2f} s for it right now: " + WHY_MORE
    raise NotYet(f"{answer} s. The three computations cannot overlap (one thread), the waits "
                 "can. When does the last task's wait end, and what does each task still do "
                 "after its wait?")


def _check_best_fit(answer: Any) -> str:
    if str(answer).strip(" ()").lower() != "b":          # "b", "B" or "(b)"
        raise NotYet("look for many independent tasks that mostly wait; computing is not waiting.")
    return "thousands of mostly idle connections: many tasks, independent, mostly waiting."


def exercises() -> dict[int, Exercise]:
    return {
        1: Exercise("Write call_later(loop, delay, callback) for labkit.eventloop.futures.Loop: "
                    "callback() runs about delay seconds later, while other tasks go on.",
                    ["Make a small coroutine that awaits loop.sleep(delay), then calls callback.",
                     "Hand that coroutine to loop.create_task(...) and return the task."],
                    _check_call_later, lambda: _call_later_reference,
                    also_correct=[lambda: _call_later_on_the_timer,
                                  lambda: _call_later_with_arguments],
                    wrong=[lambda: (lambda loop, delay, callback: callback()),  # no timer
                           lambda: _call_later_that_blocks]),
        2: Exercise("Three tasks each compute for 0.05 s, wait 0.2 s for I/O, then compute for "
                    "0.05 s more, on one event loop. About how many seconds does the run take?",
                    ["Draw it: computing blocks the loop, waiting does not.",
                     "The last task starts waiting at 0.15 s. After their waits, the three "
                     "second halves take turns too."],
                    _check_predicted_total, lambda: 0.4,
                    also_correct=[lambda: "0.40", lambda: 0.5,          # the lesson's run
                                  lambda: 0.51],
                    wrong=[lambda: 0.35, lambda: 0.75, lambda: 0.9, lambda: 0.25]),
        3: Exercise("Which suits an event loop best? (a) resizing 1,000 images (b) a chat server "
                    "with 5,000 mostly idle connections (c) one large matrix multiplication",
                    ["The section 'When is the event-driven model the right choice?'"],
                    _check_best_fit, lambda: "b",
                    also_correct=[lambda: "B", lambda: "(b)"],
                    wrong=[lambda: "a", lambda: "c"]),
    }
