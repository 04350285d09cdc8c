"""The threaded file clients of labkit.clients.files, run on greenlets.

    python labkit/scripts/_run.py labkit/scripts/gevent_file_clients.py HOST PORT N NAME SHA256

After monkey patching, each "thread" is a greenlet and each socket is gevent's: N clients
download and upload at once on one OS thread.
"""

from gevent import monkey

monkey.patch_all()  # first: threading and socket become gevent's

import sys  # noqa: E402

from labkit.clients.files import run_file_clients  # noqa: E402
from labkit.scripts import progress, report  # noqa: E402

if __name__ == "__main__":
    host, port, n, name = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    expected = sys.argv[5] if len(sys.argv) > 5 else ""
    result = run_file_clients((host, port), n, name, expected, mode="threads", progress=progress)
    result.mode = "gevent"
    report(result=result.to_dict())
