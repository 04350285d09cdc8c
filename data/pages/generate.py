"""Make the three pages lesson 04 fetches, with the sizes of the three sites the original
course downloaded (48,708, 478,886 and 55,867 bytes). Deterministic: the same bytes every run.

    python data/pages/generate.py
"""

import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
PAGES = {"page-48k.html": 48_708, "page-479k.html": 478_886, "page-56k.html": 55_867}
WORDS = (
    "event loop greenlet socket select poll epoll coroutine yield send switch hub "
    "timeout buffer frame stream client server request response 协程 事件 异步"
).split()


def page(name: str, size: int) -> bytes:
    rng = random.Random(name)
    head = (
        f"<!doctype html>\n<html><head><meta charset='utf-8'><title>{name}</title></head>\n<body>\n"
    )
    tail = "</body></html>\n"
    body = bytearray()
    budget = size - len(head.encode()) - len(tail.encode())
    while len(body) < budget:
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 20)))
        body += f"<p>{words}</p>\n".encode()
    body = body[: budget - 1]
    # never cut a multi-byte character in half: pad with spaces instead
    while True:
        try:
            body.decode("utf-8")
            break
        except UnicodeDecodeError:
            body = body[:-1]
    body += b" " * (budget - 1 - len(body)) + b"\n"
    data = head.encode() + bytes(body) + tail.encode()
    assert len(data) == size, (name, len(data), size)
    return data


if __name__ == "__main__":
    for name, size in PAGES.items():
        (HERE / name).write_bytes(page(name, size))
        print(f"{name}: {size:,} bytes")
