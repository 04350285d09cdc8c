"""A locustfile for latency_http: every user fetches a page again and again.

    locust -f pages.py --headless -u 20 -r 20 -t 5s --host http://127.0.0.1:PORT \\
        --delay 0.05 --error-rate 0.1

Each simulated user is a greenlet with its own HTTP connection (FastHttpUser, Locust's client on
geventhttpclient). Locust times every request and counts it as a failure unless its status is
on its list of valid codes, 200-208, 226, 301-304, 307 and 308
(``LocustUserAgent.valid_response_codes``, locust/contrib/fasthttp.py): the 503s that
latency_http injects at ``--error-rate`` land in the failure counts.
Each request carries its own ``id``, so the server's random choices differ from one to the next.
With ``--check-pages`` a user also reads every page it gets, tag by tag, as a load test that
checks content does: client work that costs CPU in the load generator.
"""

import itertools
from html.parser import HTMLParser

from locust import FastHttpUser, constant, events, task

ids = itertools.count()  # one per request, in this process


@events.init_command_line_parser.add_listener
def add_options(parser):
    """Our own options, next to Locust's (its documented way; a master passes them on)."""
    parser.add_argument("--page", default="page-48k.html", help="the page to fetch")
    parser.add_argument("--delay", type=float, default=0.05, help="seconds the server waits")
    parser.add_argument("--error-rate", type=float, default=0.0, help="fraction of 503s")
    parser.add_argument("--check-pages", action="store_true", help="parse every page")


class TagCounter(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags = 0

    def handle_starttag(self, tag, attrs):
        self.tags += 1


class PageReader(FastHttpUser):
    wait_time = constant(0)  # ask again as soon as the answer is in

    @task
    def fetch_page(self):
        opts = self.environment.parsed_options
        url = f"/pages/{opts.page}?delay={opts.delay}&error_rate={opts.error_rate}"
        with self.client.get(
            f"{url}&id={next(ids)}", name=f"/pages/{opts.page}", catch_response=True
        ) as response:
            if response.status_code == 200 and opts.check_pages:
                counter = TagCounter()
                counter.feed(response.text)
                if counter.tags == 0:
                    response.failure("a page without a single tag")
