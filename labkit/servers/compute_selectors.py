"""Lesson 10's compute server (``labkit.compute``: PING, WORK) on ``selectors``.

``--offload none``: a WORK request burns the CPU inside the loop, which meanwhile does not come
back to ``select()``: every other client waits, however small its request. ``--offload pool``:
WORK goes to a process pool (``--pool-size`` workers) and the loop goes on. The pool says a job
is done from a thread of its own, which cannot touch our selector: it puts the result in a
``Mailbox`` (labkit/serving.py), which wakes the loop by one byte into a socketpair the selector
watches (asyncio's ``call_soon_threadsafe`` does the same). A client's replies stay in the order
it asked: while its WORK is out, its next lines wait. Lines are framed as in lesson 07, by
``compute.take_lines``; prefork_compute's workers each run this loop, without a pool.

    python -m labkit.servers.compute_selectors --port 0 --offload pool
"""

import collections
import os
import selectors

from labkit import accept_policy, compute, launch
from labkit.serving import Mailbox, SelectorServer, recv_now, send_now, watch

HIGH_WATER = 1 << 16  # a reply is a line of tens of bytes: 64 KiB unread is a thousand and more,
# from a client that does not read (echo servers hold 1 MiB: labkit/serving.py says why)
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
        self.finished = Mailbox(self.sel, data=self.work_done)  # (client, request, job)

    def connected(self, conn):
        self.update_interest(Client(conn))

    def receive(self, client):
        data = recv_now(client.conn)  # readable: returns at once
        if data is None:
            return
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
        """Runs in the pool's thread: hand the result to the loop, and wake it."""
        self.finished.put((client, request, job))

    def work_done(self):
        for client, request, job in self.finished.take_all():
            client.working = False
            if client.conn.fileno() == -1:  # closed while its work ran
                continue
            ok = job.exception() is None
            client.outgoing += compute.reply(request if ok else ("ERR", "work failed"), self.pid)
            self.answer_lines(client)
            self.update_interest(client)

    def send_some(self, client):
        del client.outgoing[: send_now(client.conn, client.outgoing)]
        self.update_interest(client)

    def update_interest(self, client):
        """Read while the client may send and owes us little; write while replies wait. A
        client that will send no more, with every reply sent and no work out, is done."""
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
