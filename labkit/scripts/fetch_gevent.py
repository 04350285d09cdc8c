"""The gevent strategy of lesson 04: fetch many pages at once, one greenlet per request.

    python labkit/scripts/_run.py labkit/scripts/fetch_gevent.py '["http://127.0.0.1:PORT/..."]'

It uses the very same harness and fetch_one as the other strategies (labkit/clients/pages.py);
only download_many differs. Monkey patching makes urllib's blocking sockets cooperative.
"""

from gevent import monkey

monkey.patch_all()  # first, before urllib (or anything that uses sockets) is imported

import json  # noqa: E402
import sys  # noqa: E402

import gevent  # noqa: E402
from gevent.pool import Pool  # noqa: E402

from labkit.clients.pages import fetch_one, timed_run  # noqa: E402
from labkit.scripts import progress, report  # noqa: E402


def download_many_gevent(urls, rec, progress=None, max_open=1000):
    pool = Pool(max_open)  # at most this many requests in flight at once
    jobs = [pool.spawn(fetch_one, url, rec, f"Request {i}") for i, url in enumerate(urls, 1)]
    for done, _ in enumerate(gevent.iwait(jobs), 1):
        if progress:
            progress(done, len(jobs))
    return [job.get() for job in jobs]


if __name__ == "__main__":
    urls = json.loads(sys.argv[1])
    run = timed_run(download_many_gevent, urls, "gevent", progress=progress)
    report(run=run.to_dict())
