"""Measure what a lesson 09 student writes on asyncio: the lesson holds the code, this measures.

Three jobs, each a function the lesson shows with ``labkit.show``::

    endings = await all_endings([plain_gather, task_group])   # who stopped the other tasks?
    run = await buffer_growth(handler)            # a stream handler's write buffer, over time
    plot_growth({"write() only": run.series})

``Rounds`` runs such experiments as the ways of a ``labkit.Timing`` (interleaved rounds, each
claim judged on each way's best) and keeps the last result of each way, to print and draw::

    rounds = Rounds({"drain": partial(run_in_new_loop, buffer_growth, handler)},
                    measure=lambda run: {"peak": run.peak})
    rounds.claim("it grew past 1 MB", lambda t: t.most("drain", "peak"), above=1e6)
    plot_growth({name: run.series for name, run in rounds.last.items()})

A Timing calls plain functions; a coroutine runs there on a loop of its own, in a thread of its
own (``labkit.clients.pages.run_in_new_loop``), since a Jupyter kernel's thread runs one already.

One job per module: ``rounds`` (``Rounds``), ``endings`` (``how_it_ended``, ``all_endings``),
``buffers`` (``buffer_growth``) and ``figures`` (``plot_growth``).
"""

from labkit.asyncio_lab.buffers import BufferGrowth, Series, buffer_growth
from labkit.asyncio_lab.endings import Ending, all_endings, how_it_ended
from labkit.asyncio_lab.figures import plot_growth
from labkit.asyncio_lab.rounds import Rounds

__all__ = [
    "Rounds",
    "Ending",
    "how_it_ended",
    "all_endings",
    "Series",
    "BufferGrowth",
    "buffer_growth",
    "plot_growth",
]
