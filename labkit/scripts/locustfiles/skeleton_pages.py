"""My locustfile for latency_http (lesson 11, exercise 5): a copy of the course's skeleton.

It runs as it is: each user GETs a page, and asks again as soon as the answer is in. The TODOs
say what exercise 5 asks for. Run it from the lesson, against a latency_http server::

    run = run_locust(MY_LOCUSTFILE, pages, users=10, seconds=3)
    print(run.summary())

and check it with ``check(5, MY_LOCUSTFILE)``.
"""

import itertools

from locust import FastHttpUser, task  # TODO: import what sets a wait, e.g. constant

ids = itertools.count()  # one number per request: the server draws each request's fate from it


class PageReader(FastHttpUser):
    # TODO: wait 0.5 s after each answer before the next request (wait_time)

    @task
    def read_page(self):
        # TODO: ask the server to wait 0.1 s before it answers (delay=0.1 in the query)
        self.client.get(f"/pages/page-48k.html?id={next(ids)}", name="/pages/page-48k.html")
