"""Lesson 01's exercises: coroutines with generators."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from labkit.exercises import Exercise, NotYet, close_to, words_of, worked


def running_max():
    best = None
    while True:
        value = yield best  # hand back the best so far; wait here for the next send(x)
        best = value if best is None else max(best, value)


def _primed(generator_function):
    """The lesson's decorator: a coroutine that comes back already primed."""

    def start(*args, **kwargs):
        coroutine = generator_function(*args, **kwargs)
        next(coroutine)
        return coroutine

    return start


@_primed
def _running_max_primed():
    best = None
    while True:
        value = yield best
        best = value if best is None else max(best, value)


def _running_max_from_minus_infinity():
    best = float("-inf")
    while True:
        best = max(best, (yield best))


def _running_max_keeps_everything():
    seen: list[float] = []
    while True:
        seen.append((yield max(seen) if seen else None))


def _running_max_skips_values():
    best = None
    while True:
        value = yield best  # every other send() lands on the second yield
        best = value if best is None else max(best, value)
        yield best


def _running_min():
    best = None
    while True:
        value = yield best
        best = value if best is None else min(best, value)


def _started(fn: Callable):
    """Call the student's function; prime the coroutine unless it comes back primed."""
    coro = fn()
    if not inspect.isgenerator(coro):
        raise NotYet(
            "running_max() should return a generator: its body needs a `yield` "
            "(a decorator such as @primed may wrap it)."
        )
    if inspect.getgeneratorstate(coro) == inspect.GEN_CREATED:
        next(coro)  # prime it
    return coro


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


def _check_round_robin(answer: Any) -> str:
    expected = ["A0", "B0", "C0", "A1", "C1", "A2"]
    got = [w.upper() for w in words_of(answer)]
    if got != expected:
        raise NotYet(
            f"you said {' '.join(got)}. Take one step from each task in turn; "
            "a finished task leaves the queue."
        )
    return "Round-robin: each task runs until its next yield, then goes to the back of the queue."


def _check_blocking_times(answer: Any) -> str:
    try:
        blocking, cooperative = answer
    except (TypeError, ValueError):
        raise NotYet("answer with two numbers of seconds: (blocking, cooperative).") from None
    if not close_to(blocking, 0.9, 0.15):
        raise NotYet(
            f"blocking: {blocking} s. time.sleep stops the only thread; nothing else "
            "runs meanwhile, so the waits add up."
        )
    if not close_to(cooperative, 0.3, 0.25):
        raise NotYet(
            f"cooperative: {cooperative} s. The three waits overlap when the scheduler "
            "handles the sleeping."
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
            also_correct=[
                lambda: _running_max_primed,
                lambda: _running_max_from_minus_infinity,
                lambda: _running_max_keeps_everything,
            ],
            wrong=[
                lambda: lambda: iter([1, 2, 3]),  # not a generator
                lambda: _running_min,
                lambda: _running_max_skips_values,
            ],
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
                "After B0, task B is finished and leaves the queue.",
            ],
            _check_round_robin,
            answer="""
            check(2, "A0 B0 C0 A1 C1 A2")""",
            why="""round_robin runs the task at the front of the queue up to its next `yield`,
            then puts it at the back. B is finished after one step and leaves the queue, so the
            rounds are A B C, then A C, then A alone.""",
            also_correct=[
                lambda: ["A0", "B0", "C0", "A1", "C1", "A2"],
                lambda: "A0, B0, C0, A1, C1, A2",
                lambda: "a0 b0 c0 a1 c1 a2",
            ],
            wrong=[
                lambda: "A0 A1 A2 B0 C0 C1",  # one task at a time
                lambda: "A0 B0 C0 A1 B1 C1 A2",
            ],
        ),  # B runs a second step
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
            also_correct=[
                lambda: [3 * 0.3, 0.3],
                lambda: (0.93, 0.33),  # what a run measures
                lambda: ("0.9", "0.3"),
            ],
            wrong=[lambda: (0.3, 0.3), lambda: (0.9, 0.9), lambda: 0.9],
        ),
    }
