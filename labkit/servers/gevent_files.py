"""The file server of lesson 08 on gevent: the same protocol, written as blocking code.

Compare with selectors_files: there, each connection is a state object and the server reacts
to "readable"/"writable" events. Here each connection is a greenlet running a plain loop,
"read a request, answer it", and gevent switches greenlets whenever one would wait. Same
protocol parser, same folder (labkit/filestore.py), same ERR replies; a Pool caps the number of
clients. Clients come in through the same ``Door`` (labkit/accept_policy.py), mixed into
StreamServer: two descriptors kept for each (its socket, the file it is sent or its upload) and a
reserve, so a client we hold never hears "Too many open files"; at the limit it closes the
client idle longest (after an ``ERR 503``), or stays shut a moment.

    python -m labkit.servers.gevent_files --port 0 --root data --upload-dir /tmp/up
"""

from gevent import monkey

monkey.patch_all()  # first: every socket below is gevent's

from gevent.pool import Pool  # noqa: E402
from gevent.server import StreamServer  # noqa: E402

from labkit import (  # noqa: E402
    accept_policy,
    filestore,
    launch,
    protocol,
)
from labkit.protocol import Body, End, Request  # noqa: E402

CHUNK = 64 * 1024
active = 0
idle = set()  # connections waiting for their client's next request: the door may close them


def make_handler(store, max_upload, timeout):
    def handle(conn, address):
        global active
        active += 1
        conn.settimeout(timeout)  # a silent client is dropped, not kept
        launch.counters.add(connections=1)
        launch.counters.peak(most_connected=active)
        parser, upload = protocol.Parser("request", max_body=max_upload), None
        try:
            while data := receive(conn, timeout, parser.idle and upload is None):  # b"": done
                for event in parser.feed(data):
                    upload = answer(conn, store, event, upload)
        except protocol.ProtocolError as err:  # a bad request, or silent too long:
            launch.counters.add(refused=1)  # say why, then hang up
            refuse(conn, err)
        except OSError:  # it left, or stopped reading our reply
            launch.counters.add(errors=1)
        finally:
            if upload:
                upload.discard()  # incomplete: never make it visible
            active -= 1
            conn.close()

    return handle


def receive(conn, timeout, between_requests):
    if between_requests:
        idle.add(conn)  # no request in progress: the door may close it meanwhile
    try:
        data = conn.recv(CHUNK)
    except TimeoutError:
        raise protocol.ProtocolError(408, f"silent for more than {timeout:g} s") from None
    finally:
        idle.discard(conn)
    launch.counters.add(bytes_in=len(data))
    return data


def answer(conn, store, event, upload):
    """Handle one parser event; return the Upload in progress (or None). If the folder refuses
    (404, a disk error, no descriptor left), the client is told why and the connection goes
    on: the stream is still in step."""
    try:
        if isinstance(event, Request) and event.command == "GET":
            send_file(conn, store, event.name)
        elif isinstance(event, Request) and event.command == "PUT":
            return store.upload(event.name)
        elif isinstance(event, Request):  # LIST
            send(conn, store.listing())
        elif isinstance(event, Body) and upload:
            upload.write(event.data)
        elif isinstance(event, End) and upload:
            send(conn, upload.finish())
            launch.counters.add(puts=1)
            return None
        return upload
    except protocol.ProtocolError as err:
        launch.counters.add(refused=1)
        send(conn, protocol.err_header(err.code, err.message))
        return None  # a failed upload deleted its own file


def send_file(conn, store, name):
    header, file = store.open(name)
    with file:
        send(conn, header)
        while chunk := file.read(CHUNK):
            send(conn, chunk)  # waits (cooperatively) for a slow reader
    launch.counters.add(gets=1)


def send(conn, data):
    conn.sendall(data)  # sendall: no partial send to handle
    launch.counters.add(bytes_out=len(data))


def refuse(conn, err):
    try:
        send(conn, protocol.err_header(err.code, err.message))
    except OSError:  # gone already: nothing more to say
        pass


class FileServer(accept_policy.AcceptsThroughDoor, StreamServer):
    per_client = 2  # a socket, and the file it is sent or its upload

    def close_idle(self, conn):
        """The door's way to make room: close this client if it waits between requests. A
        busy one is never dropped: it would lose its reply or its upload."""
        if conn not in idle:
            return False
        refuse(conn, protocol.ProtocolError(503, "the server is full: closed this idle connection"))
        conn.close()  # its handler, waiting in recv, gets an OSError and ends
        return True


def serve(listener, args):
    handler = make_handler(args.store, args.max_upload, args.client_timeout)
    FileServer(listener, handler, spawn=Pool(args.pool)).serve_forever()


def add_arguments(p):
    filestore.add_arguments(p)
    p.add_argument("--pool", type=int, default=20_000, help="most clients served at once")


if __name__ == "__main__":
    launch.run(serve, __doc__, add_arguments, setup=filestore.setup)
