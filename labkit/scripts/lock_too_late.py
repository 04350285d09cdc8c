"""A lock made before monkey patching, shared by two greenlets: the program hangs.

    python labkit/scripts/_run.py labkit/scripts/lock_too_late.py [--late] [--watch SECONDS]

Two greenlets take one lock in turn, each holding it across ``gevent.sleep(0.1)``. The two runs
differ in one thing only: whether ``threading.Lock()`` runs before or after ``patch_all()``.
Made after, it is gevent's lock: the second greenlet waits for it in the hub, which goes on
running the first. Made before, it is the operating system's lock: the second greenlet's
``acquire()`` stops the one thread, hub included, so the first never runs again to release it.

A watchdog on a real OS thread (patched ``threading`` would give a greenlet, stuck with the
rest) reports after ``--watch`` seconds which greenlets finished and where the main thread
stands, then ends the process.
"""

import sys
import threading

LATE = "--late" in sys.argv
if LATE:
    lock = threading.Lock()  # made now: the standard library's lock, which blocks the thread

from gevent import monkey  # noqa: E402  (after the late lock, on purpose)

monkey.patch_all()

if not LATE:
    lock = threading.Lock()  # made after patching: gevent's lock, which waits in the hub

import argparse  # noqa: E402
import linecache  # noqa: E402
import os  # noqa: E402

import gevent  # noqa: E402

from labkit.scripts import report  # noqa: E402

finished: list[str] = []  # the greenlets that got through, in order


def hold(name):
    with lock:
        gevent.sleep(0.1)  # hold the lock and let the other greenlet run
    finished.append(name)


def where(thread_id):
    """The source line a thread is running now (for a greenlet thread: the running greenlet)."""
    frame = sys._current_frames()[thread_id]
    return linecache.getline(frame.f_code.co_filename, frame.f_lineno).strip()


def watchdog(main_id, seconds):
    """On a real OS thread: wait, and if the greenlets have not finished, say so and exit."""
    monkey.get_original("time", "sleep")(seconds)
    report(late=LATE, lock_class=type(lock).__module__ + "." + type(lock).__name__,
           finished=list(finished), hung=True, main_thread_at=where(main_id))  # fmt: skip
    os._exit(0)  # the main thread is stuck for good: nothing else can end it


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--late", action="store_true")
    p.add_argument("--watch", type=float, default=1.0)
    args = p.parse_args()
    start_thread, get_ident = monkey.get_original("_thread", ["start_new_thread", "get_ident"])
    start_thread(watchdog, (get_ident(), args.watch))
    gevent.joinall([gevent.spawn(hold, "Task 1"), gevent.spawn(hold, "Task 2")])
    report(late=LATE, lock_class=type(lock).__module__ + "." + type(lock).__name__,
           finished=list(finished), hung=False, main_thread_at="")  # fmt: skip
    os._exit(0)  # done: do not wait for the watchdog
