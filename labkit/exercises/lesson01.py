"""Lesson 01's exercises: coroutines with generators."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from labkit.exercises import (
    Exercise,
    NotYet,
    close_to,
    first_reading,
    labels_in,
    parts_of,
    worked,
)


def running_max():
    best = None
    while True:
        value = yield best  # hand back the best so far; wait here for the next send(x)
        best = value if best is None else max(best, value)


def _started(fn: Callable) -> Any:
    """Call the student's function; prime the coroutine unless it comes back primed."""
    coro = fn()
    if not hasattr(coro, "send"):
        raise NotYet(
            "running_max() should return a generator: its body needs a `yield` "
            "(a decorator such as @primed may wrap it)."
        )
    if inspect.isgenerator(coro) and inspect.getgeneratorstate(coro) == inspect.GEN_CREATED:
        next(coro)  # prime it
    return coro


# Shaped like _check_round_robin below, on purpose: each checker compares what it got with
# what it wants, then says what to look at; only the question's own data differ.
def _check_running_max(fn: Callable) -> str:
    for values in ([3, 1, 4, 1, 5, 9, 2, 6], [-5, -7, -1], [2.5]):
        coro = _started(fn)
        got = [coro.send(v) for v in values]
        want = [max(values[: i + 1]) for i in range(len(values))]
        if got != want:
            raise NotYet(
                f"sending {values} gave {got}, expected {want}. "
                "Does `value = yield best` come before you update best?"
            )
    return "Each send() resumes the generator with its locals intact: that is a coroutine."


# Shaped like _check_running_max above and lesson02's _check_left_right, on purpose: each
# checker compares, then says what to look at; the reading is labels_in's.
def _check_round_robin(answer: Any) -> str:
    expected = ["A0", "B0", "C0", "A1", "C1", "A2"]
    got = [w.upper() for w in labels_in(answer, r"\b[a-z]\d+\b")]
    if got != expected:
        raise NotYet(
            f"you said {' '.join(got) or repr(answer)}. Take one step from each task in turn; "
            "a finished task leaves the queue."
        )
    return "Round-robin: each task runs until its next yield, then goes to the back of the queue."


def _check_blocking_times(answer: Any) -> str:
    parts = parts_of(answer, 2)
    if parts is None:
        raise NotYet("answer with two numbers of seconds: (blocking, cooperative).")
    blocking, cooperative = parts
    if first_reading(blocking, lambda s: close_to(s, 0.9, 0.15), "s") is None:
        raise NotYet(
            f"blocking: {blocking} (seconds). time.sleep stops the only thread; nothing else "
            "runs meanwhile, so the waits add up."
        )
    if first_reading(cooperative, lambda s: close_to(s, 0.3, 0.25), "s") is None:
        raise NotYet(
            f"cooperative: {cooperative} (seconds). The three waits overlap when the "
            "scheduler handles the sleeping."
        )
    return (
        "Three waits of 0.3 s: 0.9 s when each blocks the thread, about 0.3 s when they "
        "overlap (a run measures a little more: each task also computes 10 ms)."
    )


def exercises() -> dict[int, Exercise]:
    return {
        1: Exercise(
            """
            Write a coroutine `running_max()` that, after priming, answers each
            `send(x)` with the largest value sent so far.""",
            [
                "Start from the averager: keep one local, `best`, instead of a total.",
                "The loop body is `value = yield best` followed by updating best.",
                "best = value if best is None else max(best, value)",
            ],
            _check_running_max,
            answer=worked(1, running_max),
            why="""`value = yield best` hands back the largest value so far and waits; the next
            `send(x)` resumes the generator right there with `value = x`, and its local `best`
            is still there: a coroutine keeps its state in its own frame between sends.""",
        ),
        2: Exercise(
            """
            `round_robin` from property 1 runs three `stepper` tasks:
            `stepper("A", 3, seen)`, `stepper("B", 1, seen)` and `stepper("C", 2, seen)`.
            Call the step that task A records first `A0`, its second `A1`, and so on. In what
            order are the steps recorded in `seen`? Answer like `"A0 B0 ..."`, then run it to
            see.""",
            [
                "stepper(name, steps, seen) records one step, then yields, steps times: "
                "A0, A1, ... for task A.",
                "Task B has one step: on its next turn, next() raises StopIteration and B "
                "leaves the queue.",
            ],
            _check_round_robin,
            answer="""
            check(2, "A0 B0 C0 A1 C1 A2")""",
            why="""round_robin runs the task at the front of the queue up to its next `yield`,
            then puts it at the back. B has nothing left after B0: on its next turn `next()`
            raises StopIteration and B leaves the queue. So the steps come A B C, then A C, then
            A alone.""",
        ),
        3: Exercise(
            """
            Three tasks each wait 0.3 s in the scheduler above. About how many seconds
            does the run take (a) with a blocking `time.sleep`, (b) with
            `yield ("sleep", 0.3)`? Answer `(a, b)`, then set `WAIT = 0.3` above and run the
            timeline cell to see if you were right.""",
            [
                "The first timeline in this lesson shows the blocking case.",
                "Answer as a pair: (0.?, 0.?)",
            ],
            _check_blocking_times,
            answer="""
            check(3, (3 * 0.3, 0.3))   # the waits add up; the waits overlap""",
            why="""`time.sleep` stops the only thread, so nothing else runs and the three waits
            add up to 0.9 s. A task that yields `("sleep", 0.3)` hands its wait to the
            scheduler, which runs the other tasks meanwhile: the three waits overlap, about
            0.3 s in all (a run measures a little more: each task also computes 10 ms).""",
        ),
    }
