"""The appendix's exercise (lesson 13, what an echo costs): system calls per round trip. The
checker reads a number however it is written: a count, a measured mean, a sentence that adds
the calls up."""

from __future__ import annotations

from typing import Any

from labkit.exercises import Exercise, NotYet, close_to, readings


def _check_select_calls(answer: Any) -> str:
    values = readings(answer)  # 3, "3 calls", 3.004, "1 select + 1 recv + 1 send = 3"
    if not values:
        raise NotYet(f"{answer!r}: answer with a number of system calls per round trip.")
    if any(close_to(calls, 3.0, 0.3) for calls in values):
        return "one select(), one recv, one send per round trip: 3, as the selectors server."
    if any(close_to(calls, 6.0, 0.3) for calls in values):
        raise NotYet(
            "that is the selectors server that asks first. Does select_echo ask select() "
            "about writing before it sends?"
        )
    raise NotYet(f"{answer}. Count what one echo needs: a wait, a read, a write.")


def exercises() -> dict[int, Exercise]:
    return {
        1: Exercise(
            """
            Lesson 07's `select_echo` serves one client that sends 1 KiB messages, one at a
            time. How many system calls does it make per round trip? Predict, then measure
            with `system_calls_per_round_trip` and answer with the total.""",
            [
                "Like the selectors server, select_echo sends right after its recv, and asks "
                "select() about writing only when the kernel's buffer was full.",
                "Measure: system_calls_per_round_trip({'select': ('select_echo', {})}), then "
                "add up the counts of that one server.",
            ],
            _check_select_calls,
            answer="""
            from labkit.server_cpu import system_calls_per_round_trip

            calls = system_calls_per_round_trip({"select": ("select_echo", {})})
            check(1, round(sum(calls["select"].values())))""",
            why="""Each message wakes select() once, then one recv reads it and one send writes
            it back, which almost always fits in the kernel's buffer: 3 system calls, the same
            as the selectors server that sends at once, and half of the 6 of one that asks
            first.""",
        ),
    }
