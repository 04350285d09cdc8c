"""Lesson 05 (the event-driven model): answers in other styles, and wrong ones."""

import time


def call_later_on_the_timer(loop, delay, callback):
    timer = loop.sleep(delay)  # a Future the loop completes later
    timer.add_done_callback(lambda _: callback())
    return timer


async def _after(loop, delay, callback):
    await loop.sleep(delay)
    return callback()


def call_later_with_arguments(loop, delay, callback):
    return loop.create_task(_after(loop, delay, callback))


def call_later_that_blocks(loop, delay, callback):
    time.sleep(delay)  # stops the whole loop meanwhile
    callback()


CORRECT = {
    1: {
        "a callback on the timer's Future": lambda: call_later_on_the_timer,
        "a module-level coroutine": lambda: call_later_with_arguments,
        "a lambda": lambda: lambda loop, delay, cb: loop.create_task(_after(loop, delay, cb)),
    },
    2: {
        "the drawing (explained)": lambda: 0.4,
        "milliseconds, with the unit": lambda: "500 ms",
        "with the unit": lambda: "0.51 s",
        "worked out": lambda: "3 × 0.05 + 0.2 + 3 × 0.05 = 0.5 s",
    },
    3: {
        "a capital in brackets": lambda: "(B)",
        "a letter and its words": lambda: "b: the chat server",
        "the option's words": lambda: "the chat server with 5,000 mostly idle connections",
    },
}

WRONG = {
    1: {
        "no timer": lambda: lambda loop, delay, callback: callback(),
        "blocks the loop": lambda: call_later_that_blocks,
    },
    2: {
        "waits in a row after the computing": lambda: 0.35,
        "too short": lambda: 0.25,
        "computing overlaps": lambda: 0.3,
        "far too long": lambda: 3.0,
        "milliseconds without the unit": lambda: 350,
    },
    3: {
        "images": lambda: "a",
        "a matrix": lambda: "c",
        "the words of (a)": lambda: "resizing 1,000 images",
    },
}
