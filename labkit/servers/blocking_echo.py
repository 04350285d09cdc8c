"""An echo server that serves one client at a time: the blocking baseline.

``accept`` waits for a client, then ``recv`` and ``sendall`` block until that client is done.
Every other client waits in the listen backlog meanwhile. Two defences keep it alive: a client
silent (or not reading) for ``--client-timeout`` seconds is dropped, and when the process is out
of descriptors (EMFILE) it stops accepting for a moment instead of crashing.

    python -m labkit.servers.blocking_echo --port 0
"""

from labkit import accept_policy, launch


def serve(listener, args):
    while True:
        conn = accept_policy.accept_waiting(listener)  # blocks until a client connects
        launch.counters.add(connections=1)
        # A client that goes silent must not freeze the whole server forever.
        conn.settimeout(args.client_timeout)
        with conn:
            try:
                echo_until_closed(conn)
            except OSError:  # reset, timeout: drop this client, keep serving
                launch.counters.add(errors=1)


def echo_until_closed(conn):
    while True:
        data = conn.recv(65536)  # blocks until bytes arrive or the peer closes
        if not data:  # b"" means the client closed its side
            return
        launch.counters.add(bytes_in=len(data))
        conn.sendall(data)  # blocks until all of it is in the kernel's buffer
        launch.counters.add(bytes_out=len(data))


if __name__ == "__main__":
    launch.run(serve, __doc__)
