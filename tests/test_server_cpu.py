"""labkit.server_cpu: server CPU per echo round trip, measured from /proc, and its bar chart."""

import math
import os

import pytest

from labkit.claims import ClaimFailed
from labkit.server_cpu import (
    EchoCpuRounds,
    cpu_per_round_trip,
    plot_cpu_per_round_trip,
    plot_system_calls,
    system_calls_per_round_trip,
)

SERVERS = {
    "selectors": ("selectors_echo", {}),
    "asyncio protocol": ("asyncio_echo", {"api": "protocol", "loop": "asyncio"}),
}


def test_cpu_per_round_trip_of_two_servers():
    ours = os.sched_getaffinity(0)
    cpu = cpu_per_round_trip(SERVERS, n_clients=4, messages=250, repeats=2)
    assert os.sched_getaffinity(0) == ours  # pinned to one core while the clients ran, not after
    assert list(cpu) == list(SERVERS)  # the labels, in their order
    # 1,000 round trips cost a server some CPU ticks (10 ms each), but not whole seconds each
    assert all(0 < us < 1000 and math.isfinite(us) for us in cpu.values()), cpu


def test_a_claim_on_cpu_per_round_trip_runs_more_rounds_until_it_holds_or_time_is_up(
    monkeypatch,
):
    monkeypatch.setenv("LABKIT_STRICT_CLAIMS", "1")
    with EchoCpuRounds(SERVERS, n_clients=2, messages=50, least_rounds=2, rounds=4) as rounds:
        assert rounds.rounds == 2  # the least that run before any claim
        rounds.claim("some CPU", lambda t: t.best("selectors", "µs"), above=0)
        assert rounds.rounds == 2  # it held: no more rounds
        with pytest.raises(ClaimFailed, match=r"best of 4 rounds"):
            rounds.claim("no CPU at all", lambda t: t.best("selectors", "µs"), below=0)
        us = rounds.us_per_round_trip()
    assert list(us) == list(SERVERS) and all(0 < v < 1000 for v in us.values()), us
    assert us["selectors"] == min(rounds.values("selectors", "µs"))  # the least of 4 rounds
    assert not any(srv.alive for srv in rounds.servers.values())  # stopped with the block


def test_a_server_that_fails_its_clients_is_an_error_not_a_number():
    with pytest.raises(RuntimeError, match=r"latency_http: \d+ round trips"):
        cpu_per_round_trip({"http": ("latency_http", {})}, n_clients=2, messages=2, repeats=1)


def test_the_figure_has_one_bar_per_server_as_a_ratio_to_the_reference():
    fig = plot_cpu_per_round_trip({"a": 20.0, "b": 10.0, "c": 30.0}, reference="b")
    ax = fig.axes[0]
    widths = [bar.get_width() for bar in ax.patches]
    assert widths == pytest.approx([2.0, 1.0, 3.0])
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b", "c"]
    assert "relative to b" in ax.get_xlabel()
    with pytest.raises(ValueError, match="reference"):
        plot_cpu_per_round_trip({"a": 1.0}, reference="z")


def test_cpu_per_round_trip_with_servers_and_clients_on_one_core():
    ours = os.sched_getaffinity(0)
    cpu = cpu_per_round_trip(SERVERS, n_clients=4, messages=250, repeats=1, together=True)
    assert os.sched_getaffinity(0) == ours
    assert all(0 < us < 1000 for us in cpu.values()), cpu


def test_system_calls_per_round_trip_as_the_servers_count_them():
    calls = system_calls_per_round_trip(
        {
            "asks first": ("selectors_echo", {"wait_writable": True}),
            "at once": ("selectors_echo", {}),
        },
        messages=100,
    )
    assert calls["asks first"] == pytest.approx(
        {"recvfrom": 1.01, "sendto": 1.0, "epoll_wait": 2.0, "epoll_ctl": 2.02}, abs=0.03
    )
    assert calls["at once"] == pytest.approx(
        {"recvfrom": 1.01, "sendto": 1.0, "epoll_wait": 1.0, "epoll_ctl": 0.02}, abs=0.03
    )


def test_the_system_calls_figure_stacks_each_call_with_the_total_written():
    fig = plot_system_calls({"a": {"recvfrom": 1.0, "sendto": 1.0}, "b": {"recvfrom": 2.0}})
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b"]
    assert sorted(bar.get_width() for bar in ax.patches) == [0.0, 1.0, 1.0, 2.0]
    assert [t.get_text().strip() for t in ax.texts] == ["2.0", "2.0"]
