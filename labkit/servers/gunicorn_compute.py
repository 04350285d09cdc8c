"""The real engine: gunicorn with gevent workers (``-k gevent``) serving labkit's compute app
over HTTP: ``GET /ping?token=T`` -> ``PONG T <pid>``, ``GET /work?ms=N`` -> ``DONE N <pid>``.
This is how gevent code runs in production: one master process, N workers, each one gevent
event loop (monkey-patched) on one core.

    python -m labkit.servers.gunicorn_compute --workers 2 [--reuse-port]

This program does not serve: it binds, starts gunicorn as a child process (its output into
our log), and says READY once gunicorn's workers answer. Two ways to share the port, as in
``prefork_compute``:

* default: we bind and listen on 127.0.0.1, port 0, and hand the socket to gunicorn
  (``--bind fd://N``). Its master and every worker inherit that one socket: ONE accept queue,
  and whichever idle worker wakes first takes the connection (gunicorn gives each gevent
  worker ``max_accept = 1`` when there are several, so one wake-up takes one client).
* ``--reuse-port``: gunicorn 27 sets ``SO_REUSEPORT`` only on sockets it creates itself (given
  ``fd://N``, it sets the flag on a socket already listening: no change at all). So we only
  hold a free port (``launch.reserve_port``), and gunicorn binds ``127.0.0.1:<port>`` itself:
  its master binds nothing and EACH worker listens on a socket of its own, with its own queue.

It dies with us: gunicorn starts with ``PR_SET_PDEATHSIG`` = SIGQUIT (its quick shutdown), sent
when the thread that started it ends: our main thread, so even a SIGKILL of this program stops
gunicorn. The master passes SIGQUIT on to its workers and SIGKILLs any still there after
``--graceful-timeout`` (1 s here): a worker burning CPU in a WORK request cannot run its
handler until the work is done. Each gunicorn worker also exits when its master is gone.
"""

import http.client
import os
import signal
import subprocess
import sys
import time

from labkit import launch, supervisor
from labkit.child import PARENT_PID

APP = "labkit.compute:wsgi_app"
START_TIMEOUT = 15.0  # seconds for gunicorn to boot and answer
engine: list[subprocess.Popen] = []  # the gunicorn master, once started


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
            preexec_fn=supervisor.signal_when_parent_ends(signal.SIGQUIT),  # Linux
        )
    )
    launch.counters.peak(gunicorn_pid=engine[0].pid)
    wait_until_answering(args.host, sock.getsockname()[1], args.workers)
    return sock


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
    stop_gunicorn.exit_unless_stopping(f"gunicorn exited with code {code}")


@supervisor.Stop
def stop_gunicorn():
    """At stop: SIGQUIT gunicorn's master (quick shutdown: it stops its workers), SIGKILL it if
    it lingers (its workers then see their parent gone within a second)."""
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
