"""A lesson's claims, stated once: the sentence the student reads is the one that is checked.

    labkit.claim("the event loop used less than a tenth of the CPU of polling",
                 event_cpu < 0.1 * poll_cpu, measured=f"{event_cpu:.3f} s vs {poll_cpu:.3f} s")

prints ``✔ the event loop used ...`` when it holds. When it does not, it prints ``✘ ...`` with
the measured numbers and raises ``ClaimFailed``, so ``pytest --nbval`` fails on that cell. The
printed line never contains the numbers when the claim holds: stored outputs stay stable.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["claim", "ClaimFailed", "DATA"]

#: the course's data folder (pages, lyrics), wherever the lesson runs from
DATA = Path(__file__).resolve().parent.parent / "data"


class ClaimFailed(AssertionError):
    """A lesson's claim did not hold on this run. The message says what was measured."""


def claim(text: str, condition: object, measured: str = "") -> None:
    """Print ``✔ text`` if ``condition`` is true; else print ``✘ text`` and raise ClaimFailed.

    ``measured`` (the numbers behind the claim) is shown only when the claim fails.
    """
    if condition:
        print(f"✔ {text}")
        return
    detail = f" (measured: {measured})" if measured else ""
    print(f"✘ {text}{detail}")
    raise ClaimFailed(f"this lesson's claim did not hold on this run: {text}{detail}")
