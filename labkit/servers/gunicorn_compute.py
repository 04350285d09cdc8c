"""The real engine: gunicorn with gevent workers (``-k gevent``) serving labkit's compute app
over HTTP: ``GET /ping?token=T`` -> ``PONG T <pid>``, ``GET /work?ms=N`` -> ``DONE N <pid>``.
This is how gevent code runs in production: one master process, N workers, each one gevent
event loop (monkey-patched) on one core.

    python -m labkit.servers.gunicorn_compute --workers 2
    python -m labkit.servers.gunicorn_compute --workers 2 --reuse-port

This program does not serve: it binds, starts gunicorn as a child process in our own process
group (so a stop of the group reaches it too), its output into our log, and says READY once
gunicorn's workers answer. Two ways to share the port, as in ``prefork_compute``:

* default: we bind and listen on 127.0.0.1, port 0, and hand the socket to gunicorn
  (``--bind fd://N``). Its master and every worker inherit that one socket: ONE accept queue,
  and whichever idle worker wakes first takes the connection (gunicorn gives each gevent
  worker ``max_accept = 1`` when there are several, so one wake-up takes one client).
* ``--reuse-port``: gunicorn 27 sets ``SO_REUSEPORT`` only on sockets it creates itself. Given
  ``fd://N`` it sets the flag on the socket it was handed, already bound and listening: every
  worker still shares that one socket and its queue (no change at all). So here we only hold a
  free port (bound with ``SO_REUSEPORT``, not listening: ``launch.reserve_port``), and gunicorn
  binds ``127.0.0.1:<port>`` itself: with ``--reuse-port`` its master binds nothing and EACH
  worker binds and listens on a socket of its own. One accept queue per worker; the kernel
  picks one for each new connection by a hash of its addresses and ports.

It dies with us: gunicorn starts with ``PR_SET_PDEATHSIG`` = SIGQUIT (gunicorn's quick
shutdown), sent when the thread that started it ends: our main thread, which lives as long as
this program, so even a SIGKILL of this program stops gunicorn. The master passes SIGQUIT on to
its workers and SIGKILLs any still there after ``--graceful-timeout`` (1 s here): a gevent
worker burning CPU in a WORK request cannot run its handler until the work is done. And each
gunicorn worker checks once a second that its master is still its parent, exiting otherwise.
"""

import ctypes
import http.client
import os
import signal
import subprocess
import sys
import threading
import time

from labkit import launch
from labkit.child import PARENT_PID, exit_now

APP = "labkit.compute:wsgi_app"
START_TIMEOUT = 15.0  # seconds for gunicorn to boot and answer
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
_libc = ctypes.CDLL(None, use_errno=True)
engine: list[subprocess.Popen] = []  # the gunicorn master, once started
stopping = threading.Event()  # set once we are stopping it


def add_arguments(p):
    p.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    p.add_argument("--reuse-port", action="store_true", help="one SO_REUSEPORT socket per worker")


def start(args):
    """Bind, start gunicorn on that socket (or port), return once its workers answer."""
    if args.workers < 1:
        raise launch.SetupError("--workers must be at least 1")
    keep: tuple[int, ...] = ()  # the descriptors gunicorn inherits
    if args.reuse_port:  # gunicorn's workers bind the port themselves, each its own socket
        sock = launch.reserve_port(args)
        bind = f"{args.host}:{sock.getsockname()[1]}"
    else:  # gunicorn takes our listening socket
        sock = launch.bind(args)
        bind, keep = f"fd://{sock.fileno()}", (sock.fileno(),)
    argv = [sys.executable, "-m", "gunicorn", "-k", "gevent", "--workers", str(args.workers)]
    argv += ["--bind", bind, "--graceful-timeout", "1", "--error-logfile", "-"]
    argv += ["--no-control-socket"]  # else each gunicorn would claim ~/.gunicorn/gunicorn.ctl
    argv += ["--reuse-port"] if args.reuse_port else []
    # not our parent to follow, and no options from the environment (GUNICORN_CMD_ARGS)
    env = {k: v for k, v in os.environ.items() if k not in (PARENT_PID, "GUNICORN_CMD_ARGS")}
    launch.at_stop(stop_gunicorn)
    engine.append(
        subprocess.Popen(
            [*argv, APP],
            stdin=subprocess.DEVNULL,  # its output goes where ours goes: into our log
            pass_fds=keep,
            env=env,
            preexec_fn=die_with_parent,
        )
    )
    launch.counters.peak(gunicorn_pid=engine[0].pid)
    wait_until_answering(args.host, sock.getsockname()[1], args.workers)
    return sock


def die_with_parent():
    """In the forked child, before exec: SIGQUIT when the thread that forked us ends (Linux;
    elsewhere only the workers' own check of their parent remains)."""
    prctl = getattr(_libc, "prctl", None)
    if prctl is not None:
        prctl(PR_SET_PDEATHSIG, signal.SIGQUIT)


def ping(host, port):
    """The pid of the worker that answered one PING over HTTP, or None if none did."""
    conn = http.client.HTTPConnection(host, port, timeout=2)
    try:
        conn.request("GET", "/ping?token=ready")
        reply = conn.getresponse()
        words = reply.read().decode("ascii", "replace").split()
        return int(words[2]) if reply.status == 200 and len(words) == 3 else None
    except (OSError, http.client.HTTPException, ValueError):
        return None
    finally:
        conn.close()


def wait_until_answering(host, port, n_workers):
    """Poll PING until gunicorn answers, then a little longer until every worker has (up to 3
    s more: one worker may well take every PING of a shared socket)."""
    deadline, seen = time.monotonic() + START_TIMEOUT, set()
    while len(seen) < n_workers and time.monotonic() < deadline:
        if engine[0].poll() is not None:
            raise OSError(f"gunicorn exited with code {engine[0].returncode} (see the log)")
        pid = ping(host, port)
        if pid is not None:
            if not seen:
                deadline = min(deadline, time.monotonic() + 3.0)
            seen.add(pid)
        else:
            time.sleep(0.1)
    if not seen:
        raise OSError(f"gunicorn did not answer within {START_TIMEOUT:g} s (see the log)")


def serve(sock, args):
    """Once READY: wait for gunicorn (it serves, not us); if it ends, so do we."""
    code = engine[0].wait()
    while stopping.is_set():  # we stopped it: the thread doing that exits for us
        time.sleep(1)
    print(f"gunicorn exited with code {code}", flush=True)
    exit_now(1)


def stop_gunicorn():
    """At stop: SIGQUIT gunicorn's master (quick shutdown: it stops its workers), SIGKILL it if
    it lingers (its workers then see their parent gone within a second)."""
    stopping.set()
    if not engine or engine[0].poll() is not None:
        return
    master = engine[0]
    master.send_signal(signal.SIGQUIT)
    try:
        master.wait(3.0)
    except subprocess.TimeoutExpired:
        master.kill()
        master.wait(2.0)


if __name__ == "__main__":
    launch.run(serve, __doc__, add_arguments, binder=start)
