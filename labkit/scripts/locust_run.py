"""Run Locust headless in this process, for labkit.locust_lab, which starts it as a child.

    python labkit/scripts/_run.py labkit/scripts/locust_run.py --workdir DIR -- LOCUST ARGS...

Locust monkey-patches with gevent as it is imported, which is why it never runs inside a Jupyter
kernel: here it gets a process of its own. This wrapper adds what labkit's children all do:

* it dies with its parent. ``_run.py`` has already started the lifeline (stdin) and the parent
  watch; the workers that ``--processes`` forks get a parent watch of their own, and when this
  process stops, however it stops, it kills what it forked first;
* it reads no settings but ours: it works in ``--workdir`` (where the CSV files go) with HOME
  pointing there, so neither ``~/.locust.conf`` nor a ``locust.conf`` or ``pyproject.toml`` of
  the folder it was started in is read, and every ``LOCUST_*`` variable is dropped;
* it tells the parent how the run goes: a ``PROGRESS`` line twice a second (seconds run, users,
  each worker's users), one ``RESULT`` line at the end from the process that writes the stats
  (the CPU time it used while the test ran, and the requests it made), one ``WORKER`` line from
  each worker (its users and requests).

Locust itself talks to nothing but the host under test and its own master: it has no update
check and sends no telemetry (OpenTelemetry only with ``--otel``, which we never pass).
"""

import argparse
import os
import resource
import shutil
import sys
import threading
import time

import gevent

from labkit.child import at_stop, emit, watch_parent

PROGRESS_EVERY = 0.5  # seconds
FINAL_REPORT_WAIT = 5.0  # seconds the master waits for its workers' last stats


def parse():
    p = argparse.ArgumentParser(description="Locust, headless, for labkit")
    p.add_argument("--workdir", required=True, help="where Locust works and writes its CSV")
    p.add_argument("--window", type=int, default=2, help="seconds of the p50/p95 window")
    p.add_argument("locust_args", nargs=argparse.REMAINDER, help="-- then Locust's arguments")
    args = p.parse_args()
    args.locust_args = [a for a in args.locust_args if a != "--"] if args.locust_args else []
    return args


def isolate(workdir):
    """Settings come from our command line only (see the module's docstring)."""
    for name in [n for n in os.environ if n.startswith("LOCUST_")]:
        del os.environ[name]
    os.environ["HOME"] = workdir
    os.chdir(workdir)


def kill_forked_workers():
    """What this process forked (``--processes``) dies with it: stopped by a signal, by the
    end of its lifeline (the kernel died), or at the end of the run."""
    import psutil

    for worker in psutil.Process().children(recursive=True):
        try:
            worker.kill()
        except psutil.NoSuchProcess:
            pass


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Watcher:
    """Locust's own events, turned into our protocol lines."""

    def __init__(self):
        self.requests, self.peak_users = 0, 0
        self.cpu_start = self.cpu_end = self.started = self.ended = 0.0
        self.worker_peaks = {}

    def attach(self, events):
        events.init.add_listener(self.on_init)
        events.request.add_listener(self.on_request)
        events.spawning_complete.add_listener(self.on_spawned)
        events.test_start.add_listener(self.on_start)
        events.test_stop.add_listener(self.on_stop)
        events.quit.add_listener(self.on_quit)

    def on_request(self, **_):
        self.requests += 1

    def on_spawned(self, user_count, **_):
        # A worker's event carries the master's total (runners.py, WorkerRunner's
        # spawning_complete): count the users this process runs itself.
        if getattr(self, "environment", None) is not None and self.is_worker():
            user_count = self.environment.runner.user_count
        self.peak_users = max(self.peak_users, user_count)

    def on_init(self, environment, **_):
        self.environment = environment
        if self.is_worker():  # a forked worker keeps the master's options: the master alone
            environment.parsed_options.json_file = None  # writes the stats file
        else:
            gevent.spawn(self.report_progress)
        if type(environment.runner).__name__ == "MasterRunner":
            wait_for_final_reports(environment.runner)

    def is_worker(self):
        return type(self.environment.runner).__name__ == "WorkerRunner"

    def on_start(self, **_):
        self.started, self.cpu_start = time.monotonic(), cpu_seconds()

    def on_stop(self, **_):
        self.ended, self.cpu_end = time.monotonic(), cpu_seconds()

    def report_progress(self):
        total = self.environment.parsed_options.run_time or 0
        while True:
            gevent.sleep(PROGRESS_EVERY)
            runner = self.environment.runner
            workers = {w.id: w.user_count for w in getattr(runner, "clients", {}).values()}
            for wid, users in workers.items():
                self.worker_peaks[wid] = max(self.worker_peaks.get(wid, 0), users)
            self.peak_users = max(self.peak_users, runner.user_count)
            done = time.monotonic() - self.started if self.started else 0.0
            emit(
                "PROGRESS",
                {
                    "done": round(min(done, total) * 10),
                    "total": total * 10,
                    "users": runner.user_count,
                    "workers": workers,
                },
            )

    def on_quit(self, **_):
        """Locust's last event, after its final stats are in (and written to its JSON file)."""
        runner = self.environment.runner
        self.peak_users = max(self.peak_users, runner.user_count)
        mine = {
            "pid": os.getpid(),
            "requests": self.requests,
            "peak_users": self.peak_users,
            "cpu_seconds": (self.cpu_end or cpu_seconds()) - self.cpu_start,
            "seconds": (self.ended or time.monotonic()) - self.started,
        }
        if self.is_worker():
            emit("WORKER", mine)
        else:
            errors = [failure_row(e) for e in runner.stats.errors.values()]
            emit("RESULT", {**mine, "worker_peak_users": self.worker_peaks, "errors": errors})


def wait_for_final_reports(runner):
    """Locust's master, told to quit, tells its workers so and waits 0.5 s for their last
    stats: on a busy machine that is too short, and a worker's last seconds went missing from
    the totals in our runs. Here it waits until every worker has said that it quits, which a
    worker says after its last report (one connection keeps them in order), 5 s at most."""
    from locust.rpc import Message

    quit_now = runner.quit
    asked = threading.Event()  # set at the first call: Locust calls quit again as it ends

    def quit_after_reports():
        if not asked.is_set():
            asked.set()
            runner.stop(send_stop_to_client=False)  # no new users are handed out meanwhile
            for worker in list(runner.clients.values()):
                runner.server.send_to_client(Message("quit", None, worker.id))
            deadline = time.monotonic() + FINAL_REPORT_WAIT
            while len(runner.clients) and time.monotonic() < deadline:
                gevent.sleep(0.05)  # each worker leaves runner.clients when it says "quit"
        quit_now()

    runner.quit = quit_after_reports


def count_from_now(module):
    """Make ``gevent.spawn_later`` count its delay from the real time now.

    gevent's loop times a timer from its own cached notion of the time, which it updates only
    when it runs (``ILoop.now`` and ``ILoop.update_now`` in gevent/_interfaces.py). Locust arms
    its ``-t`` timer with ``gevent.spawn_later`` (locust/main.py,
    ``spawn_run_time_quit_greenlet``) after its start-up, during which the loop has not run:
    imports, the locustfile, the runner. On a busy machine that start-up takes seconds, and the
    timer fired that much early: measured at a load average of 12, 0.9 to 1.9 s early, so a 2 s
    run stopped after 0.1 to 1.1 s, or before a single request."""
    spawn_later = module.spawn_later

    def spawn_later_from_now(seconds, *args, **kwargs):
        module.get_hub().loop.update_now()
        return spawn_later(seconds, *args, **kwargs)

    module.spawn_later = spawn_later_from_now


def failure_row(error):
    """One row of Locust's failures table, as its ``_failures.csv`` has it. (That file is
    written once a second while the test runs: its last second may be missing.)"""
    from locust.stats import StatsError

    return {
        "Method": error.method,
        "Name": error.name,
        "Error": StatsError.parse_error(error.error),
        "Occurrences": error.occurrences,
    }


def main():
    args = parse()
    isolate(args.workdir)
    import locust  # monkey-patches this process: after this, socket and threading are gevent's
    import locust.stats
    from locust.main import main as locust_main

    # p50/p95 "now" are over the last few seconds (Locust's default is 10), to see them move
    locust.stats.CURRENT_RESPONSE_TIME_PERCENTILE_WINDOW = args.window
    master = os.getpid()
    # A worker that --processes forks has none of our threads (fork copies the calling thread
    # only): give it a parent watch, so it exits when this process is gone, however it died.
    os.register_at_fork(after_in_child=lambda: watch_parent(master))
    at_stop(kill_forked_workers)  # and kill them ourselves whenever we stop first
    if "--worker" not in args.locust_args:  # the master (or only) process: stopped before the
        # end (the parent gone, or a timeout), it removes the folder the parent cannot
        at_stop(lambda: shutil.rmtree(args.workdir, ignore_errors=True))
    Watcher().attach(locust.events)
    count_from_now(gevent)
    sys.argv = ["locust", *args.locust_args]
    locust_main()


if __name__ == "__main__":
    main()
