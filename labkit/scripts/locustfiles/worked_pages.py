import itertools

from locust import FastHttpUser, constant, task

ids = itertools.count()  # one number per request


class PageReader(FastHttpUser):
    wait_time = constant(0.5)  # after each answer, before the next request

    @task
    def read_page(self):
        url = f"/pages/page-48k.html?delay=0.1&id={next(ids)}"
        self.client.get(url, name="/pages/page-48k.html")  # one name: one row of statistics
