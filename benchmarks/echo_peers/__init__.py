"""The peers our echo servers are measured against (benchmarks/echo.py), and its load client.

* ``asyncio_peer.py``: the echo servers of asyncio's documentation (protocol and streams APIs),
  on asyncio's own loop or on uvloop, without our counters.
* ``gevent_peer.py``: a plain gevent ``StreamServer`` echo, as gevent's examples write it.
* ``echo_server.c``: the floor, a plain C echo server on epoll.
* ``echo_client.c``: the ping-pong load client, compiled at run time; ``echo_client.py`` does
  the same in Python, for machines without a C compiler.
"""
