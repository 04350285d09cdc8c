"""The file server of lesson 08 on gevent: the same protocol, written as blocking code.

Compare with selectors_files: there, each connection is a state object and the server reacts
to "readable"/"writable" events. Here each connection is a greenlet running a plain loop,
"read a request, answer it", and gevent switches greenlets whenever one would wait. Same
requests and replies (labkit/file_requests.py), same folder (labkit/filestore.py); a Pool
caps the number of clients. Clients come in through the same ``Door`` (labkit/accept_policy.py),
mixed into StreamServer: two descriptors kept for each (its socket, the file it is sent or its
upload) and a reserve, so a client we hold never hears "Too many open files"; at the limit it
closes the client idle longest (after an ``ERR 503``), or stays shut a moment.

    python -m labkit.servers.gevent_files --port 0 --root data --upload-dir /tmp/up
"""

from gevent import monkey

monkey.patch_all()  # first: every socket below is gevent's

from gevent.pool import Pool  # noqa: E402
from gevent.server import StreamServer  # noqa: E402

from labkit import filestore, launch, protocol  # noqa: E402
from labkit.accept_policy import AcceptsThroughDoor  # noqa: E402
from labkit.file_requests import CHUNK, SERVER_FULL, FileRequests  # noqa: E402
from labkit.serving import counts  # noqa: E402


class FileServer(AcceptsThroughDoor, StreamServer):
    per_client = 2  # a socket, and the file it is sent or its upload

    def handle(self, conn, address):
        """One client, start to end: read requests, answer each in turn, until it leaves."""
        conn.settimeout(self.args.client_timeout)  # a silent client is dropped, not kept
        counts["connections"] += 1
        launch.counters.peak(most_connected=len(self.door.held))
        requests = FileRequests(self.args.store, self.args.max_upload)
        try:
            while data := self.receive(conn, requests.between_requests):  # b"": done
                if not requests.feed(data):  # a broken frame: say why, then hang up
                    return send_all(conn, requests)
                send_all(conn, requests)
        except protocol.ProtocolError as err:  # silent too long: say so, then hang up
            counts["refused"] += 1
            self.goodbye(conn, protocol.err_header(err.code, err.message))
        except OSError:  # it left, or stopped reading our reply
            counts["errors"] += 1
        finally:
            requests.close()  # an incomplete upload is never made visible
            conn.close()

    def receive(self, conn, between_requests):
        with self.between_requests(conn, between_requests):  # the door may close it meanwhile
            try:
                data = conn.recv(CHUNK)
            except TimeoutError:
                timeout = self.args.client_timeout
                raise protocol.ProtocolError(408, f"silent for more than {timeout:g} s") from None
        counts["bytes_in"] += len(data)
        return data

    def goodbye(self, conn, line=SERVER_FULL):
        try:
            conn.sendall(line)
            counts["bytes_out"] += len(line)
        except OSError:  # gone already: nothing more to say
            pass


def send_all(conn, requests):
    """Send every reply owed, in order, a file CHUNK by CHUNK; ``sendall`` waits
    (cooperatively) while the client is slow to read."""
    while (piece := requests.next_piece()) is not None:
        conn.sendall(piece)
        counts["bytes_out"] += len(piece)


def serve(listener, args):
    server = FileServer(listener, spawn=Pool(args.pool))
    server.args = args  # the folder, the upload limit, the client timeout
    server.serve_forever()


def add_arguments(p):
    filestore.add_arguments(p)
    p.add_argument("--pool", type=int, default=20_000, help="most clients served at once")


if __name__ == "__main__":
    launch.run(serve, __doc__, add_arguments, setup=filestore.setup)
