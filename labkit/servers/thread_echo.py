"""An echo server with one OS thread per client.

The accept loop hands each connection to a new thread, where blocking ``recv``/``sendall``
only block that thread. Simple, but every client costs a thread (stack, scheduling).

    python -m labkit.servers.thread_echo --port 0
"""
import threading

from labkit.servers import launch


def serve(listener, args):
    while True:
        conn, _ = listener.accept()
        launch.counters.add(connections=1)
        conn.settimeout(args.client_timeout)
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


def handle(conn):
    with conn:
        try:
            while data := conn.recv(65536):  # blocks this thread only
                launch.counters.add(bytes_in=len(data))
                conn.sendall(data)
                launch.counters.add(bytes_out=len(data))
        except OSError:
            launch.counters.add(errors=1)


if __name__ == "__main__":
    launch.run(serve, __doc__)
