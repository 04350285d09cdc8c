"""Five greenlets each wait in time.sleep(): with or without gevent's monkey patching.

    python labkit/scripts/_run.py labkit/scripts/gevent_sleepers.py [--patch] [--tasks 5]
        [--in-c]

With ``--in-c`` they sleep in C instead (libc's ``usleep``, called through ctypes): code that
never goes through the standard library's Python modules, which is all that patching replaces.
Run in a child process by lesson 03 (patched inside a Jupyter kernel, the kernel stops
answering).
"""

import sys

if "--patch" in sys.argv:
    from gevent import monkey

    monkey.patch_all()  # first, before anything else is imported: time.sleep -> gevent.sleep

import argparse
import ctypes
import time

import gevent

from labkit.scripts import report
from labkit.timeline import Recorder


def sleeper(rec, name, seconds, sleep):
    rec.switch(name, "waiting")
    sleep(seconds)  # time.sleep unpatched, or any sleep in C: blocks the whole thread
    rec.switch(name, None)  # time.sleep patched: gevent.sleep, which yields to the hub


def sleep_in_c(seconds):
    """libc's usleep: a C function that waits by itself, out of gevent's reach."""
    ctypes.CDLL(None).usleep(int(seconds * 1_000_000))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--patch", action="store_true")
    p.add_argument("--tasks", type=int, default=5)
    p.add_argument("--seconds", type=float, default=0.1)
    p.add_argument("--in-c", action="store_true", help="sleep in libc's usleep instead")
    args = p.parse_args()
    sleep = sleep_in_c if args.in_c else time.sleep
    rec = Recorder()
    gevent.joinall(
        [
            gevent.spawn(sleeper, rec, f"Task {i}", args.seconds, sleep)
            for i in range(1, args.tasks + 1)
        ]
    )
    report(
        patched=args.patch,
        elapsed=rec.now(),
        spans=rec.close(),
        time_sleep_is=f"{time.sleep.__module__}.{time.sleep.__name__}",
        sleep_is=f"{sleep.__module__}.{sleep.__name__}",
    )


if __name__ == "__main__":
    main()
