"""Lesson 10's compute server (``labkit.compute``: PING, WORK) on ``selectors``.

``--offload none``: a WORK request burns the CPU inside the loop, which meanwhile does not come
back to ``select()``: every other client waits, however small its request. ``--offload pool``:
WORK goes to a process pool (``--pool-size`` workers) and the loop goes on. The pool says a job
is done from a thread of its own, which may not touch our selector: ``wake`` queues the result
and sends one byte into a socketpair the selector watches (asyncio's ``call_soon_threadsafe``
does the same). A client's replies stay in the order it asked: while its WORK is out, its next
lines wait. Lines are framed as in lesson 07, by ``compute.take_lines``; prefork_compute's
workers each run this loop, without a pool.

    python -m labkit.servers.compute_selectors --port 0 --offload pool
"""

import collections
import contextlib
import os
import selectors
import socket

from labkit import accept_policy, compute, launch
from labkit.serving import CHUNK, SelectorServer, counts, watch

HIGH_WATER = 1 << 16  # replies are lines of tens of bytes: 64 KiB unread is a thousand and more
READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE


class Client:
    """What the server remembers about one connection."""

    def __init__(self, conn):
        self.conn = conn
        self.incoming = bytearray()  # the start of a line not yet complete
        self.lines = collections.deque()  # complete lines not answered yet; None: too long
        self.outgoing = bytearray()  # replies the client has not taken yet
        self.reading = True  # False once it closed its side, or sent a line too long
        self.working = False  # a WORK of its is in the pool
        self.events = 0  # what the selector watches for it (0: not registered)


class Server(SelectorServer):
    """The selectors loop of labkit/serving.py; what is this server's own is below."""

    def __init__(self, listener, pool):
        super().__init__(listener, accept_policy.Door())  # a client only while descriptors last
        self.pool, self.pid = pool, os.getpid()
        if pool:  # the pool's thread hands results here, and wakes the loop by one byte
            self.finished = collections.deque()  # (client, request, job), appended whole
            self.wake_r, self.wake_w = socket.socketpair()
            self.sel.register(self.wake_r, READ, data=self.work_done)  # called when readable

    def connected(self, conn):
        self.update_interest(Client(conn))

    def receive(self, client):
        data = client.conn.recv(CHUNK)  # readable, and only we read it: returns at once
        counts["bytes_in"] += len(data)
        client.incoming += data
        lines, too_long = compute.take_lines(client.incoming)
        client.lines.extend([*lines, None] if too_long else lines)  # None: a line too long
        client.reading = bool(data) and not too_long  # b"": the client closed its side
        self.answer_lines(client)
        self.update_interest(client)

    def answer_lines(self, client):
        """Answer the client's lines in order, up to one that goes to the pool."""
        while client.lines and not client.working:
            line = client.lines.popleft()
            if line is None:  # too long: say so, and close once it has gone out
                client.outgoing += compute.TOO_LONG
                client.lines.clear()
                return
            request = compute.parse(line)
            if request[0] == "WORK" and self.pool:
                try:
                    job = self.pool.submit(compute.burn, int(request[1]))
                except RuntimeError:  # a worker died (killed?): the pool is broken
                    client.outgoing += compute.reply(("ERR", "work failed"), self.pid)
                    continue
                client.working = True
                job.add_done_callback(lambda job, c=client, r=request: self.wake(c, r, job))
            else:
                client.outgoing += compute.answer(line, self.pid)  # WORK here: nobody else runs

    def wake(self, client, request, job):
        """Runs in the pool's thread, which may not touch the selector: queue, and wake it."""
        self.finished.append((client, request, job))
        with contextlib.suppress(BlockingIOError):  # full of wake-ups already: it is awake
            self.wake_w.send(b"!", socket.MSG_DONTWAIT)  # never waits

    def work_done(self):
        self.wake_r.recv(4096)  # readable: returns at once (wake-ups left? it wakes again)
        while self.finished:
            client, request, job = self.finished.popleft()
            client.working = False
            if client.conn.fileno() == -1:  # closed while its work ran
                continue
            ok = job.exception() is None
            client.outgoing += compute.reply(request if ok else ("ERR", "work failed"), self.pid)
            self.answer_lines(client)
            self.update_interest(client)

    def send_some(self, client):
        try:
            sent = client.conn.send(client.outgoing)  # non-blocking: takes what fits
        except BlockingIOError:  # the kernel's buffer is full: wait until writable
            return
        counts["bytes_out"] += sent
        del client.outgoing[:sent]  # keep exactly what was not sent yet
        self.update_interest(client)

    def update_interest(self, client):
        """Read while it may send and owes us little; write while replies wait; or it is done."""
        reading = client.reading and not client.working and len(client.outgoing) < HIGH_WATER
        wanted = (READ if reading else 0) | (WRITE if client.outgoing else 0)
        if not wanted and not client.working and not client.lines:
            return self.close(client)
        watch(self.sel, client, wanted)  # 0 while its work is out: nothing to watch till done

    def close_idle(self, conn):
        """The door's way to make room: close a client with nothing asked and nothing owed."""
        key = self.sel.get_map().get(conn)  # None: not watched, its work is in the pool
        client = key.data if key else None
        if not client or client.working or client.lines or client.incoming or client.outgoing:
            return False
        self.close(client)
        return True


def serve(listener, args):
    Server(listener, args.pool).run()


def add_arguments(p):
    p.add_argument("--offload", choices=["none", "pool"], default="none", help="where WORK runs")
    p.add_argument("--pool-size", type=int, default=2, help="worker processes with --offload pool")


if __name__ == "__main__":
    launch.run(serve, __doc__, add_arguments, setup=compute.start_pool)
