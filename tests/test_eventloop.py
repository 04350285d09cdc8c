"""The event loop steps of lesson 05: correct bytes, real concurrency (from the server's own
log, not from timings), a loop that never hangs, and the command lines."""

import hashlib
import json
import os
import resource
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from storm import fd_count

import labkit
from labkit.eventloop import callbacks, futures, generators
from labkit.timeline import Span, max_concurrent

PAGE = Path(__file__).resolve().parent.parent / "data" / "pages" / "page-479k.html"


@pytest.fixture(scope="module")
def server():
    with labkit.serve("latency_http", delay=0.2) as srv:
        yield srv


def server_concurrency(srv):
    """How many requests the server was serving at once, from its access log (then cleared)."""
    with urllib.request.urlopen(f"http://{srv.host}:{srv.port}/_log?clear=1", timeout=10) as r:
        log = json.loads(r.read())
    return max_concurrent(Span(str(i), "waiting", e["start"], e["end"]) for i, e in enumerate(log))


@pytest.mark.parametrize("step", [callbacks, generators, futures], ids=lambda m: m.__name__)
def test_each_step_fetches_exact_pages_concurrently(server, step):
    server_concurrency(server)  # start from an empty log
    urls = [f"http://{server.host}:{server.port}/pages/{PAGE.name}?id={i}" for i in range(25)]
    bodies = step.fetch_many(urls)
    want = hashlib.sha256(PAGE.read_bytes()).hexdigest()
    assert [hashlib.sha256(b).hexdigest() for b in bodies] == [want] * 25
    assert server_concurrency(server) == 25  # all 25 in flight at once


def refused_url():
    """A URL on a loopback port where nobody listens: connecting fails at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/pages/{PAGE.name}"


@pytest.mark.parametrize("step", [callbacks, generators, futures], ids=lambda m: m.__name__)
def test_a_failed_fetch_closes_every_socket(server, step):
    """One download fails while 20 are in flight: the error arrives, and no socket stays open
    (checked at once, while the traceback still holds every frame: no help from the GC)."""
    urls = [f"http://{server.host}:{server.port}/pages/{PAGE.name}?id={i}" for i in range(20)]
    before = fd_count(os.getpid())
    with pytest.raises(ConnectionError) as failure:
        step.fetch_many(urls + [refused_url()])
    assert fd_count(os.getpid()) == before, failure.value


def test_a_run_that_runs_out_of_descriptors_closes_every_socket():
    """Under a low open-file limit the echo run fails with EMFILE, and gives every socket back."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    before = fd_count(os.getpid())
    resource.setrlimit(resource.RLIMIT_NOFILE, (before + 100, hard))
    try:
        with pytest.raises(OSError, match="Too many open files") as failure:
            futures.serve_clients(200, b"x" * 1024, pause=0.05)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert fd_count(os.getpid()) == before, failure.value


def test_futures_echo_server_serves_many_clients_on_one_loop():
    ok, echoed, _ = futures.serve_clients(300, bytes(range(256)) * 40, pause=0.05)
    assert ok == 300 and echoed == 300 * 10240


def test_timers_fire_in_order_and_tasks_await_each_other():
    loop, order = futures.Loop(), []

    async def after(seconds, name):
        await loop.sleep(seconds)
        order.append(name)
        return name

    async def main():
        slow = loop.create_task(after(0.05, "slow"))
        fast = loop.create_task(after(0.01, "fast"))
        return [await slow, await fast]

    assert loop.run_until_complete(main()) == ["slow", "fast"]
    assert order == ["fast", "slow"]


def test_a_task_waiting_forever_raises_instead_of_hanging():
    loop = futures.Loop(idle_timeout=0.2)
    a, b = socket.socketpair()  # nobody ever writes to b

    async def stuck():
        await loop.wait_for(a, futures.selectors.EVENT_READ)

    with pytest.raises(TimeoutError, match="never comes"):
        loop.run_until_complete(stuck())
    a.close()
    b.close()


def test_a_task_sees_its_futures_exception_and_can_catch_it():
    loop = futures.Loop()
    failing = futures.Future()
    loop.call_soon(failing.set_exception, ConnectionResetError("peer left"))

    async def careful():
        try:
            await failing
        except ConnectionResetError as error:
            return f"caught: {error}"

    assert loop.run_until_complete(careful()) == "caught: peer left"
    assert isinstance(failing.exception(), ConnectionResetError)
    with pytest.raises(ConnectionResetError):
        failing.result()  # re-raised every time it is asked for


def test_an_uncaught_failure_stops_the_loop_with_the_error():
    loop = futures.Loop()
    failing = futures.Future()
    loop.call_soon(failing.set_exception, ValueError("bad page"))

    async def careless():
        await failing

    with pytest.raises(ValueError, match="bad page"):
        loop.run_until_complete(careless())


def test_a_cancelled_task_stops_and_its_result_raises():
    loop, reached = futures.Loop(), []

    async def sleeper():
        await loop.sleep(10)
        reached.append("after the sleep")  # never: the sleep was cancelled

    async def main():
        task = loop.create_task(sleeper())
        await loop.sleep(0.01)  # let it start and wait
        assert task.cancel()
        try:
            await task
        except futures.CancelledError:
            return task

    started = time.perf_counter()
    task = loop.run_until_complete(main())
    assert time.perf_counter() - started < 5  # it did not sit out its 10 s sleep
    assert task.done() and task.cancelled() and not reached
    assert task.waits_for.cancelled()  # what Task.cancel cancelled: the Future it waited for
    with pytest.raises(futures.CancelledError):
        task.result()
    with pytest.raises(futures.CancelledError):
        task.exception()
    assert not task.cancel()  # already done


def test_a_task_not_started_yet_never_starts():
    loop, ran = futures.Loop(), []

    async def never():
        ran.append(True)

    async def main():
        task = loop.create_task(never())
        task.cancel()
        await loop.sleep(0.01)
        return task

    task = loop.run_until_complete(main())
    assert task.cancelled() and not ran


def test_a_task_that_catches_cancellation_finishes_cleanly():
    loop, a, b = futures.Loop(), *socket.socketpair()

    async def reader():
        try:
            await loop.wait_for(a, futures.selectors.EVENT_READ)  # nobody ever writes
        except futures.CancelledError:
            return "cleaned up"

    async def main():
        task = loop.create_task(reader())
        await loop.sleep(0.01)
        task.cancel()
        return await task, task

    with a, b:
        result, task = loop.run_until_complete(main())
        assert loop.selector.get_map() == {}  # the cancelled wait left the selector
    assert result == "cleaned up" and task.done() and not task.cancelled()
    assert task.exception() is None


def test_callbacks_run_once_and_a_future_finishes_once():
    calls = []
    future = futures.Future()
    future.add_done_callback(calls.append)
    assert not future.done() and future.cancel() and future.cancelled()
    assert not future.cancel()  # already done: nothing happens
    with pytest.raises(RuntimeError, match="already cancelled"):
        future.set_result(1)
    assert calls == [future]
    future.add_done_callback(calls.append)  # added when done: runs at once, once
    assert calls == [future, future]


def test_except_exception_does_not_swallow_cancellation():
    assert not issubclass(futures.CancelledError, Exception)


@pytest.mark.parametrize("step", ["callbacks", "generators", "futures"])
def test_each_step_runs_from_the_command_line(step):
    out = subprocess.run(
        [sys.executable, "-m", f"labkit.eventloop.{step}", "-n", "5", "--delay", "0.05"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("5 pages of [48708] bytes")


def test_cpu_trials_measure_the_three_models_on_cpu_only_tasks():
    """Lesson 05's counter-example: threads get no more CPU than one core, the loop runs the
    tasks one after another, and the quietest round is one of the rounds."""
    import time

    from labkit.claims import Timing
    from labkit.eventloop.cpu_trials import alive_and_cpu, model_ways, one_after_another, quietest
    from labkit.eventloop.models import work

    def cpu_task(rec, name):
        start = time.thread_time()
        work(rec, name, 0.02)
        return time.thread_time() - start

    async def cpu_coroutine(loop, rec, name):
        return cpu_task(rec, name)

    names = ["Task 1", "Task 2", "Task 3"]
    ways, runs = model_ways(cpu_task, cpu_coroutine, names)
    timing = Timing(ways, rounds=2)
    timing.run_round()
    assert set(runs) == {"sequential", "threads", "event loop"}
    assert all(len(model_runs) == 2 for model_runs in runs.values())
    assert all(len(cpu) == 3 and all(c > 0 for c in cpu) for rs in runs.values() for _, cpu in rs)
    assert all(one_after_another(spans, names) for spans, _ in runs["sequential"])
    assert all(one_after_another(spans, names) for spans, _ in runs["event loop"])
    assert timing.most("threads", "cores") < 1.5  # the GIL: one core at most
    assert timing.best("event loop", "duration") / timing.best("sequential", "thread cpu") > 0.5
    shown = quietest(runs)
    assert any(shown["threads"] is run for run in runs["threads"])
    alive, cpu = alive_and_cpu(shown["threads"], names)
    assert len(alive) == len(cpu) == 3 and all(a > 0 for a in alive)
    overlapping = [Span("Task 1", "running", 0, 2), Span("Task 2", "running", 1, 3)]
    assert not one_after_another(overlapping, ["Task 1", "Task 2"])
    assert one_after_another(
        overlapping[:1] + [Span("Task 2", "running", 2, 3)], ["Task 1", "Task 2"]
    )
