"""Property tests of the framed protocol's incremental parser: any chunking of valid frames
gives the same events; garbage, truncated and oversize frames give clear errors."""

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labkit.protocol import (
    MAX_HEADER,
    Body,
    End,
    Parser,
    ProtocolError,
    Request,
    Response,
    check_name,
    err_header,
    ok_header,
    request_bytes,
)

names = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cs", "Zs", "Zl", "Zp", "Cc"), blacklist_characters="/\\."
    ),
    min_size=1,
    max_size=40,
)
bodies = st.binary(max_size=3000)
requests = st.one_of(
    st.builds(lambda n: ("GET", n, b""), names),
    st.builds(lambda n, b: ("PUT", n, b), names, bodies),
    st.just(("LIST", "", b"")),
)


def feed_in_pieces(parser, data, cuts):
    events = []
    points = sorted({c % (len(data) + 1) for c in cuts})
    start = 0
    for point in points + [len(data)]:
        events += parser.feed(data[start:point])
        start = point
    return events


def collapse(events):
    """Join Body events between a header and its End: the splits must not matter."""
    frames, current = [], None
    for e in events:
        if isinstance(e, (Request, Response)):
            current = [e, b""]
        elif isinstance(e, Body):
            current[1] += e.data
        elif isinstance(e, End):
            frames.append(tuple(current))
    return frames


@settings(max_examples=300, deadline=None)
@given(st.lists(requests, min_size=1, max_size=6), st.lists(st.integers(0, 10**6), max_size=30))
def test_any_split_of_valid_requests_parses_the_same(frames, cuts):
    data = b"".join(request_bytes(cmd, name, body) for cmd, name, body in frames)
    parser = Parser("request")
    got = collapse(feed_in_pieces(parser, data, cuts))
    want = [
        (Request(cmd, name, len(body) if cmd == "PUT" else 0), body) for cmd, name, body in frames
    ]
    assert got == want
    assert parser.idle


def test_every_single_split_point_of_a_multibyte_frame():
    lyrics = "床前明月光，疑是地上霜。\n".encode() * 20
    data = ok_header(len(lyrics), hashlib.sha256(lyrics).hexdigest()) + lyrics + b"ERR 404 no\n"
    for cut in range(len(data) + 1):
        parser = Parser("response")
        frames = collapse(parser.feed(data[:cut]) + parser.feed(data[cut:]))
        assert frames[0][1] == lyrics and frames[0][0].ok
        assert frames[1][0] == Response(False, code=404, message="no")


@given(st.binary(min_size=1, max_size=2000))
@settings(max_examples=300, deadline=None)
def test_garbage_never_crashes_the_parser(data):
    parser = Parser("request", max_body=10_000)
    try:
        for i in range(0, len(data), 7):
            parser.feed(data[i : i + 7])
    except ProtocolError as err:
        assert err.code in (400, 403, 413) and err.message
        with pytest.raises(ProtocolError):  # a broken stream stays broken
            parser.feed(b"LIST\n")


@pytest.mark.parametrize(
    "frame,code",
    [
        (b"DELETE x\n", 400),
        (b"GET\n", 400),
        (b"GET a b\n", 400),
        (b"PUT a\n", 400),
        (b"PUT a -5\n", 400),
        (b"PUT a 1e3\n", 400),
        (b"PUT a 99999999999\n", 413),
        (b"GET ../etc/passwd\n", 403),
        (b"GET /etc/passwd\n", 403),
        (b"GET .hidden\n", 403),
        (b"GET a\\b\n", 403),
        (b"GET \xff\xfe\n", 400),
        (b"x" * MAX_HEADER, 400),
    ],
)
def test_bad_frames_get_the_right_code(frame, code):
    with pytest.raises(ProtocolError) as err:
        Parser("request", max_body=1 << 20).feed(frame)
    assert err.value.code == code


def test_truncated_frames_wait_for_more_and_are_not_idle():
    parser = Parser("request")
    assert parser.feed(b"PUT song.txt 10\n12345") == [
        Request("PUT", "song.txt", 10),
        Body(b"12345"),
    ]
    assert not parser.idle
    assert parser.feed(b"67890") == [Body(b"67890"), End()]
    assert parser.idle
    assert Parser("request").feed(b"GET half-a-hea") == []


def test_responses_round_trip():
    events = Parser("response").feed(
        ok_header(3, "a" * 64) + b"abc" + err_header(404, "no such file")
    )
    assert collapse(events) == [
        (Response(True, 3, "a" * 64), b"abc"),
        (Response(False, code=404, message="no such file"), b""),
    ]


def test_error_header_never_splits_a_character():
    line = err_header(403, "名" * 2000)
    assert len(line) <= MAX_HEADER and line.decode("utf-8").endswith("\n")


@pytest.mark.parametrize("name", ["lyrics.txt", "歌词.txt", "a-b_c.1"])
def test_good_names(name):
    assert check_name(name) == name


# -- numbers are ASCII digits, names fit a file system --------------------------------------
NOT_ASCII_NUMBERS = ["²", "①", "٣", "١٠", "１２", "-1", "+5", "1e3", "0x10", "9" * 40, "", "7 "]


@pytest.mark.parametrize("number", NOT_ASCII_NUMBERS, ids=ascii)
def test_sizes_and_codes_are_ascii_digits_only_in_both_directions(number):
    """str.isdigit() says yes to "²" and "١٠"; int() then raises or reads them as numbers."""
    with pytest.raises(ProtocolError) as err:
        Parser("request").feed(f"PUT x {number}\n".encode())
    assert err.value.code == 400
    for reply in (f"OK {number} {'a' * 64}\n", f"ERR {number} oops\n"):
        with pytest.raises(ProtocolError) as err:
            Parser("response").feed(reply.encode())
        assert err.value.code == 400


@pytest.mark.parametrize(
    "name",
    ["é" * 128, "😀" * 70, "a" * 300, "x\ud800", "名" * 67],
    ids=["e-acute-x128", "emoji-x70", "a-x300", "lone-surrogate", "cjk-x67"],
)
def test_names_too_long_in_utf8_bytes_or_not_encodable_are_refused(name):
    """A name's limit is in bytes on disk (Linux: 255 per name), not characters."""
    with pytest.raises(ProtocolError) as err:
        check_name(name)
    assert err.value.code == 403


def test_the_longest_names_still_fit():
    assert check_name("é" * 100) == "é" * 100 and check_name("a" * 200) == "a" * 200


def test_a_sha256_that_is_not_hex_is_refused():
    with pytest.raises(ProtocolError):
        Parser("response").feed(b"OK 3 " + b"z" * 64 + b"\nabc")
