"""The greenlet bridge: synchronous code that awaits, the way SQLAlchemy serves asyncio callers.

A library written as plain functions (``def``, no ``async``) cannot ``await``: only a
coroutine can suspend, and only at its own level. A greenlet can suspend anywhere, however
deep in plain calls, by switching away. The bridge pairs the two:

- ``await greenlet_spawn(fn, *args)`` runs ``fn`` in a new greenlet;
- deep inside ``fn``, ``await_only(awaitable)`` switches back to the coroutine, carrying the
  awaitable; the coroutine awaits it (the event loop runs other tasks meanwhile) and switches
  the result back in, or throws the exception in;
- when ``fn`` returns, its greenlet is done and ``greenlet_spawn`` returns its result.

    def count_rows(db):                  # plain, synchronous code
        rows = await_only(db.fetch())    # ... that waits for the event loop
        return len(rows)

    n = await greenlet_spawn(count_rows, db)

Every ``await_only`` is one pair of greenlet switches: lesson 02's ``switch`` carrying an
``await``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import greenlet

__all__ = ["greenlet_spawn", "await_only", "BridgeGreenlet"]

T = TypeVar("T")


class BridgeGreenlet(greenlet.greenlet):
    """The greenlet that runs the synchronous code; its parent is the awaiting coroutine's."""


async def greenlet_spawn(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run ``fn(*args, **kwargs)`` in a greenlet; await for it whatever it hands over."""
    sync = BridgeGreenlet(fn)  # its parent: the greenlet running this coroutine (the loop's)
    handed = sync.switch(*args, **kwargs)  # run fn until it returns or calls await_only
    while not sync.dead:  # fn is paused inside await_only, and handed us an awaitable
        try:
            value = await handed  # the loop runs other tasks meanwhile
        except BaseException as error:  # cancellation too: fn unwinds, its `with`s close
            handed = sync.throw(error)  # raised inside fn, where await_only was called
        else:
            handed = sync.switch(value)  # await_only returns value; fn runs on
    return handed  # fn returned: its greenlet is dead, and this is its return value


def await_only(awaitable: Awaitable[T]) -> T:
    """Wait for ``awaitable`` from plain synchronous code run by ``greenlet_spawn``."""
    current = greenlet.getcurrent()
    if not isinstance(current, BridgeGreenlet):
        if hasattr(awaitable, "close"):
            awaitable.close()  # a coroutine never awaited would warn when collected
        raise RuntimeError(
            "await_only() works only inside a function run by `await greenlet_spawn(fn)`: "
            "there is no coroutine here to do the awaiting"
        )
    return current.parent.switch(awaitable)  # pause here until greenlet_spawn switches back
