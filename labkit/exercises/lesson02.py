"""Lesson 02's exercises: greenlet."""

from __future__ import annotations

from typing import Any

from labkit.exercises import (
    Exercise,
    NotYet,
    close_to,
    first_reading,
    labels_in,
    parts_of,
)
from labkit.exercises.reading import choice_advice


# Shaped like lesson01's _check_round_robin, on purpose: labels_in does the reading, and
# what stays is this question's own order, advice and praise.
def _check_left_right(answer: Any) -> str:
    got = [w.upper() for w in labels_in(answer, r"\b[lr]\d+\b")]
    if got != ["L1", "R1", "L2"]:
        hint = " R2 is never printed: why?" if "R2" in got else ""
        raise NotYet(
            f"you said {' '.join(got) or repr(answer)}.{hint} When left finishes, control "
            "goes to its parent (the main greenlet), not back to right."
        )
    return "A finished greenlet returns to its parent; nothing switches back into right."


def _check_doubler(answer: Any) -> str:
    parts = parts_of(answer, 2)
    if parts is None:
        raise NotYet("answer with two numbers: (a, b).")
    a, b = parts
    if first_reading(a, lambda x: close_to(x, 20, 1e-9)) is None:
        raise NotYet(f"a: you said {a!r}. a is what doubler first switches back (10 * 2).")
    if first_reading(b, lambda x: close_to(x, 40, 1e-9)) is None:
        raise NotYet(f"b: you said {b!r}. b is doubler's answer to the value of a.")
    return "switch(x) passes x in and returns whatever the other side switches back."


_CHOICES = {"a": "two threads", "b": "blocks the one thread", "c": "the os runs"}


# Shaped like lesson05's _check_best_fit, on purpose: choice_advice does the reading, and
# what stays is this question's own options, advice and praise.
def _check_choice_io(answer: Any) -> str:
    advice = (
        'answer "a", "b" or "c". A greenlet gives up control only where it '
        "calls switch(); a blocking recv never does."
    )
    if wrong := choice_advice(answer, _CHOICES, "b", advice):
        raise NotYet(wrong)
    return "greenlet only switches where you tell it to. gevent adds the switch at every wait."


def exercises() -> dict[int, Exercise]:
    return {
        1: Exercise(
            """
            What ends up in `out`, in order? Answer like `"L1 R1 ..."`. Predict first,
            then run it to see.

            ```python
            out = []
            def left():  out.append("L1"); r.switch(); out.append("L2")
            def right(): out.append("R1"); l.switch(); out.append("R2")
            l, r = greenlet(left), greenlet(right)
            l.switch()
            ```""",
            [
                "Follow the switches by hand: main -> left -> right -> ...",
                "Where does control go when a greenlet's function returns?",
            ],
            _check_left_right,
            answer="""
            from greenlet import greenlet

            out = []
            def left():  out.append("L1"); r.switch(); out.append("L2")
            def right(): out.append("R1"); l.switch(); out.append("R2")
            l, r = greenlet(left), greenlet(right)
            l.switch()
            check(1, out)""",
            why="""left records L1 and switches to right; right records R1 and switches back
            to left, which resumes after its switch and records L2. When left returns, control
            goes to its parent, the main greenlet, not back to right: right stays suspended and
            R2 is never recorded.""",
        ),
        2: Exercise(
            """
            What are `a` and `b`? Answer `(a, b)`.

            ```python
            main = getcurrent()
            def doubler(x):
                while True:
                    x = main.switch(x * 2)
            g = greenlet(doubler)
            a = g.switch(10)
            b = g.switch(a)
            ```""",
            [
                "The first g.switch(10) starts doubler(10).",
                "main.switch(x * 2) hands x * 2 back as the result of g.switch(...).",
            ],
            _check_doubler,
            # The answer repeats the question's code on purpose: answer(2) prints it whole,
            # ready to run, and the question must state it for the notebook.
            answer="""
            from greenlet import getcurrent, greenlet

            main = getcurrent()
            def doubler(x):
                while True:
                    x = main.switch(x * 2)
            g = greenlet(doubler)
            a = g.switch(10)
            b = g.switch(a)
            check(2, (a, b))""",
            why="""`g.switch(10)` starts doubler(10), which switches 20 back to main: a = 20.
            `g.switch(a)` resumes doubler, where `main.switch(...)` returns 20 as the new x,
            and it switches 40 back: b = 40. switch(x) passes x in and returns whatever the
            other side switches back.""",
        ),
        3: Exercise(
            """
            Two greenlets each call `sock.recv()` on a socket whose answer arrives 0.1 s
            after they ask. Why does the run take 0.2 s? (a) greenlets run on two threads that
            share a lock, (b) `recv` blocks the one thread and greenlet never switches by
            itself, (c) the OS runs greenlets one at a time. Answer `"a"`, `"b"` or `"c"`.""",
            ["This lesson's last section measured exactly this."],
            _check_choice_io,
            answer="""
            check(3, "b")""",
            why="""A greenlet gives up control only where it calls switch(), and a blocking
            `recv` is a plain call that stops the one thread until its answer arrives: the
            second greenlet starts its wait only after the first one's ends, 0.1 s + 0.1 s.
            gevent adds the switch at every wait.""",
        ),
    }
