"""Five greenlets each wait in time.sleep(): with or without gevent's monkey patching.

    python labkit/scripts/_run.py labkit/scripts/gevent_sleepers.py [--patch] [--tasks 5]

Run in a child process by lesson 03 (patching inside a Jupyter kernel breaks the kernel).
"""

import sys

if "--patch" in sys.argv:
    from gevent import monkey

    monkey.patch_all()  # first, before anything else is imported: time.sleep -> gevent.sleep

import argparse
import time

import gevent

from labkit.scripts import report
from labkit.timeline import Recorder


def sleeper(rec, name, seconds):
    rec.switch(name, "waiting")
    time.sleep(seconds)  # unpatched: blocks the whole thread; patched: yields to the hub
    rec.switch(name, None)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--patch", action="store_true")
    p.add_argument("--tasks", type=int, default=5)
    p.add_argument("--seconds", type=float, default=0.1)
    args = p.parse_args()
    rec = Recorder()
    gevent.joinall(
        [gevent.spawn(sleeper, rec, f"Task {i}", args.seconds) for i in range(1, args.tasks + 1)]
    )
    report(
        patched=args.patch,
        elapsed=rec.now(),
        spans=rec.close(),
        time_sleep_is=f"{time.sleep.__module__}.{time.sleep.__name__}",
    )


if __name__ == "__main__":
    main()
