"""Lesson 10's compute server (``labkit.compute``: PING, WORK) on ``selectors``.

``--offload none``: a WORK request burns the CPU inside the loop. While it burns, the loop does
not come back to ``select()``: every other client waits, however small its request.
``--offload pool``: WORK goes to a process pool (``--pool-size`` workers) and the loop goes on.
The pool tells us a job is done from a thread of its own, which cannot touch our selector: it
writes one byte into a socketpair that the selector watches (the classic wake-up trick; asyncio's
``call_soon_threadsafe`` does the same). A client's replies stay in the order it asked: while its
WORK is out, its next lines wait.

Like selectors_echo: lines are framed in a receive buffer (``compute.take_lines``; a line over
``compute.MAX_LINE`` bytes gets ``ERR line too long`` and a close), a client that owes us
``HIGH_WATER`` bytes of replies is not read from, and clients come in through a ``Door``
(labkit/accept_policy.py): near the open-file limit it closes the client idle longest, or
stays shut for a moment.

    python -m labkit.servers.compute_selectors --port 0 --offload pool
"""

import collections
import os
import selectors
import socket

from labkit import accept_policy, compute, launch

HIGH_WATER = 1 << 16  # stop reading from a client that is this far behind in reading replies
READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE


class Client:
    """What the server remembers about one connection."""

    def __init__(self, conn):
        self.conn = conn
        self.inbox = bytearray()  # the start of a line not yet complete
        self.lines = collections.deque()  # complete lines not answered yet; None: too long
        self.outgoing = bytearray()  # replies the client has not taken yet
        self.reading = True  # False once it closed its side, or sent a line too long
        self.working = False  # a WORK of its is in the pool
        self.events = 0  # what the selector watches for it (0: not registered)


class Server:
    def __init__(self, listener, pool):
        self.listener, self.pool, self.pid = listener, pool, os.getpid()
        self.sel = selectors.DefaultSelector()
        self.sel.register(listener, READ, data="accept")
        self.wake_r, self.wake_w = socket.socketpair()  # the pool's thread -> our loop
        for s in (self.wake_r, self.wake_w):
            s.setblocking(False)
        self.sel.register(self.wake_r, READ, data="wake")
        self.finished = collections.deque()  # (client, request, future), from the pool's thread
        self.door = accept_policy.Door()  # lets a client in only while descriptors are to spare

    def run(self):
        while True:
            for key, events in self.sel.select(self.door.timeout()):
                if key.data == "accept":
                    if not self.accept():
                        self.sel.unregister(self.listener)  # the door is shut a moment
                elif key.data == "wake":
                    self.work_done()
                elif events & READ and key.data.conn.fileno() != -1:  # (not closed to make room)
                    self.receive(key.data)
                if isinstance(key.data, Client) and events & WRITE and key.data.events:
                    self.send_some(key.data)
            if self.door.over():
                self.sel.register(self.listener, READ, data="accept")

    def accept(self):
        """Accept one client. False when the door pauses: the caller stops watching."""
        conn = self.door.accept(self.listener, self.close_idle)
        if conn is None or conn == accept_policy.PAUSED:
            return conn is None
        conn.setblocking(False)
        launch.counters.add(connections=1)
        self.update_interest(Client(conn))
        return True

    def receive(self, client):
        try:
            data = client.conn.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return self.close(client, error=True)
        launch.counters.add(bytes_in=len(data))
        client.inbox += data
        lines, too_long = compute.take_lines(client.inbox)
        client.lines.extend(lines)
        if too_long:
            client.lines.append(None)
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
        self.finished.append((client, request, job))
        try:
            self.wake_w.send(b"!")
        except BlockingIOError:  # the socketpair is full of wake-ups already: the loop is awake
            pass

    def work_done(self):
        while True:
            try:
                if not self.wake_r.recv(4096):
                    break
            except BlockingIOError:
                break
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
            sent = client.conn.send(client.outgoing)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return self.close(client, error=True)
        del client.outgoing[:sent]
        launch.counters.add(bytes_out=sent)
        self.update_interest(client)

    def update_interest(self, client):
        """Read while the client may send and owes us little; write while replies wait. A
        client that will send no more, with every reply sent and no work out, is done."""
        reading = client.reading and not client.working and len(client.outgoing) < HIGH_WATER
        wanted = (READ if reading else 0) | (WRITE if client.outgoing else 0)
        if not wanted and not client.working and not client.lines:
            return self.close(client)
        if wanted == client.events:
            return
        if not wanted:  # its work is out: nothing to watch until it is done
            self.sel.unregister(client.conn)
        elif not client.events:
            self.sel.register(client.conn, wanted, data=client)
        else:
            self.sel.modify(client.conn, wanted, data=client)
        client.events = wanted

    def close_idle(self, conn):
        """The door's way to make room: close a client with nothing asked and nothing owed."""
        try:
            client = self.sel.get_key(conn).data
        except KeyError:  # not watched: its work is in the pool
            return False
        if client.working or client.lines or client.inbox or client.outgoing:
            return False
        self.close(client)
        return True

    def close(self, client, error=False):
        if client.events:
            self.sel.unregister(client.conn)
            client.events = 0
        self.door.closed(client.conn)
        client.conn.close()
        if error:
            launch.counters.add(errors=1)


def serve(listener, args):
    listener.setblocking(False)
    Server(listener, args.pool).run()


def add_arguments(p):
    p.add_argument("--offload", choices=["none", "pool"], default="none", help="where WORK runs")
    p.add_argument("--pool-size", type=int, default=2, help="worker processes with --offload pool")


if __name__ == "__main__":
    launch.run(serve, __doc__, add_arguments, setup=compute.start_pool)
