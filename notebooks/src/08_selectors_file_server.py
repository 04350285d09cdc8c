# %% [markdown]
# # 08 · The selectors file server: framed get/put for a thousand clients
#
# This lesson puts everything so far together: a file server on `selectors`. First 500, then
# 1,000 clients download a file and upload it back, their transfers overlapping, every byte
# checked.
#
# The original course's version of this demo stopped at about 500 clients (Windows' select limit,
# lesson 07). Its protocol assumed that one `recv` returns one message. That breaks as soon as
# the size and the start of the file arrive together (below, with a single client). Ours frames
# every message. The course's benchmark (`python -m benchmarks files`) is where 10,000 clients
# are tried. This lesson's panel lets you try as many as fit here.
#
# **After this lesson you can**
# * design a framed protocol and parse it incrementally, whatever the chunking.
# * read a selectors server that keeps per-connection state, streams files with back-pressure,
#   and survives bad input.
# * reproduce the "one recv is one message" bug, and fix it.
# * load a server with 1,000 clients three ways (threads, one selectors thread, gevent) and
#   verify every byte.
#
# **Time:** about 70 minutes: 40 reading and running, 30 exercises; sittings of 35 + 35.

# %%
import hashlib
import os
import socket
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
from ipywidgets import Dropdown, IntSlider

import labkit
from labkit import protocol
from labkit.clients.files import ReplyReader, get_file, get_file_buggy, list_files, put_file
from labkit.runs import MODES, run_file_clients
from labkit.timeline import max_concurrent, plot_timeline
from labkit.widgets import panel

labkit.setup()  # figures as pictures, one-line interrupts, a higher open-file limit

DATA = labkit.DATA
LYRICS = (DATA / "lyrics.txt").read_bytes()
LYRICS_SHA = hashlib.sha256(LYRICS).hexdigest()
print(f"lyrics.txt: {len(LYRICS):,} bytes, {len(LYRICS.decode())} characters")

# A file client's two phases are this lesson's own states, beside the course's (running,
# waiting, queued, idle): the timelines below draw them in these colours.
FILE_STATES = {"download": "#2ca02c", "upload": "#9467bd"}

# %% [markdown]
# ## The protocol: every message says where it ends
#
# TCP delivers bytes, not messages. A protocol must let the receiver find the end of each
# message: a fixed length, a delimiter, or a length announced up front. Ours uses the last two: a
# header line ending in `\n`, then a body of exactly the length the header announces.
#
# | request | meaning | reply |
# |---|---|---|
# | `GET <name>\n` | send me a file | `OK <size> <sha256>\n` and `<size>` bytes |
# | `PUT <name> <size>\n` + `<size>` bytes | store these bytes | `OK 0 <sha256 of them>\n` |
# | `LIST\n` | which files are there? | `OK <size> <sha256>\n`, a `<name> <size>` line per file |
# | anything wrong | | `ERR <code> <message>\n` |
#
# The error codes: 400 bad request, 403 name refused, 404 no such file, 408 silent too long, 413
# too large; 500 when the server's disk fails, 503 when the server is full. Names are
# plain file names (no `/`, no `..`, nothing hidden). A header is at most 1,024 bytes.
#
# Both sides parse with the same incremental `Parser`. Feed it bytes as they come, in any pieces,
# and it hands back complete events.

# %%
labkit.show(protocol.Parser)

# %% [markdown]
# The same reply, fed whole and fed one byte at a time, gives the same header, the same body and
# an `End`. Only the body's pieces differ: one `Body` event per piece of the body fed.

# %%
reply = protocol.ok_header(len(LYRICS), LYRICS_SHA) + LYRICS
whole = protocol.Parser("response").feed(reply)
byte_by_byte = []
parser = protocol.Parser("response")
for i in range(len(reply)):
    byte_by_byte += parser.feed(reply[i:i + 1])

def join_body(events):
    return b"".join(e.data for e in events if isinstance(e, protocol.Body))

print("header:", whole[0])
print("events when fed whole:", len(whole), "| fed byte by byte:", len(byte_by_byte))
_ = labkit.claim("same header and body either way, and both end with End",
                 whole[0] == byte_by_byte[0]
                 and join_body(whole) == join_body(byte_by_byte) == LYRICS
                 and isinstance(byte_by_byte[-1], protocol.End))

# %% [markdown]
# ## The server
#
# One thread, one selector. Each connection's state is a `Connection` object in its selector
# key's `data`. It holds the parser, the replies still to send (bytes, or a file being streamed),
# and the upload in progress.
#
# The server asks for EVENT_WRITE only while it has something to send. It reads a file into the
# outgoing buffer only while the client keeps up. It answers a bad request with `ERR` before
# hanging up. The folder logic (safe names, uploads made visible only when complete) is in
# `labkit/filestore.py`, shared with a gevent version of the same server.

# %%
labkit.show("selectors_files")

# %%
uploads = tempfile.TemporaryDirectory(prefix="lesson08-uploads-")
server = labkit.serve("selectors_files", root=DATA, upload_dir=uploads.name)

with socket.create_connection(server.address, timeout=10) as sock:
    print("LIST:", list_files(sock))
    header, body = get_file(sock, "lyrics.txt")
    print("GET: ", header.ok, f"{header.size:,} bytes")
    labkit.claim("GET: the SHA-256 of the body matches the header's and the file's",
                 hashlib.sha256(body).hexdigest() == header.sha256 == LYRICS_SHA)
    print("\n".join(body.decode().splitlines()[4:7]))
    confirmed = put_file(sock, "my-copy.txt", body)
    labkit.claim("PUT: the server confirms the hash of what it received",
                 confirmed.sha256 == LYRICS_SHA)
    missing, _ = get_file(sock, "nothing-here.txt")
    print("GET of a missing file:", f"ERR {missing.code} {missing.message}")
_ = labkit.claim("the upload is in the server's folder, byte for byte",
                 (Path(uploads.name) / "my-copy.txt").read_bytes() == LYRICS)

# %% [markdown]
# ## The framing bug of the original course
#
# The original client sent `get`, then did `int(client.recv(1024))` to read the file size. It
# assumed that the size arrives alone. Our server puts the header and the start of the file in
# one buffer and hands both to one `send`. So they arrive together, the first `recv` returns
# both, and that assumption breaks:

# %%
labkit.show(get_file_buggy)

# %%
with socket.create_connection(server.address, timeout=10) as sock:
    try:
        get_file_buggy(sock, "lyrics.txt")
        failure = None
    except (ValueError, UnicodeDecodeError) as err:
        failure = err
labkit.claim("the buggy client failed: UnicodeDecodeError",        # before we read .reason
             isinstance(failure, UnicodeDecodeError), measured=repr(failure))

with socket.create_connection(server.address, timeout=10) as sock:
    sock.sendall(protocol.request_bytes("GET", "lyrics.txt"))
    first = sock.recv(1024)             # at once, as the buggy client does: no pause needed
header_length = len(protocol.ok_header(len(LYRICS), LYRICS_SHA))
labkit.claim(f"its first recv(1024) holds the {header_length}-byte header and "
             f"{1024 - header_length} bytes of the file",
             len(first) == 1024 and first.startswith(protocol.ok_header(len(LYRICS), LYRICS_SHA)),
             measured=f"{len(first)} bytes")
_ = labkit.claim("the buggy client's 1,024 bytes end in the middle of a character",
                 failure.reason == "unexpected end of data", measured=failure.reason)

# %% [markdown]
# 1,024 bytes held the 73-byte header and 951 bytes of the poems. They end in the middle of a
# Chinese character, so they are not even valid UTF-8. Nothing was wrong with the network: the
# client simply read a byte stream as if it were messages. `get_file` feeds every `recv` to the
# `Parser` instead, and takes exactly `<size>` bytes after the header.
#
# ## 500 clients at once
#
# Each client connects and downloads `lyrics.txt`. It checks the download's SHA-256 against the
# file and the header, uploads it back under its own name, and checks the server's confirmation.
# First with one thread per client, as in the original course:

# %%
result = run_file_clients(server.address, n_clients=500, expected_sha256=LYRICS_SHA)
labkit.claim("every client served: 500 downloads verified, 500 uploads confirmed, no error",
             (result.downloads_ok, result.uploads_ok, result.mismatches) == (500, 500, 0)
             and result.errors == [], measured=result.summary())
labkit.claim("transfers of different clients overlapped", max_concurrent(result.spans) > 1)
plot_timeline(result.spans, title=f"500 clients: download (green), then upload (purple); "
                                  f"{result.elapsed:.2f} s in all", states=FILE_STATES)

# %% [markdown]
# Each row is a client: the green bar is its download, the purple one its upload. They are drawn
# from the times each client measured. Transfers of different clients overlap.
#
# ## Three ways to be 1,000 clients
#
# The same check, 1,000 clients at a time, three ways:
#
# * one thread per client;
# * one thread driving all the sockets as generator tasks on lesson 05's event loop;
# * the thread code on greenlets, in a monkey-patched child process.
#
# Then the same load against `gevent_files`: the same protocol, written as blocking code on
# gevent.
#
# The one-thread clients reuse lesson 05's generator loop (`labkit.eventloop.generators.run`).
# Each client is one generator, written top to bottom like the blocking client. Where it would
# block, it yields `(socket, event)`. `yield from` passes up the waits of its parts (sending a
# request, reading a reply). The loop resumes the client when that socket is ready:

# %%
from labkit.clients import files

labkit.show(files.client_task)

# %% [markdown]
# and all of them run as tasks of that one loop:

# %%
labkit.show(files.run_in_our_loop)

# %%
# Fewer where ulimit -n is low (it says so), leaving room for the pipes of the servers it starts.
n_clients = labkit.fit_clients(1000, spare=128)
runs = {}
for mode in MODES:
    runs[f"selectors_files, {mode} clients"] = run_file_clients(
        server.address, n_clients, expected_sha256=LYRICS_SHA, mode=mode)
with labkit.serve("gevent_files", root=DATA, upload_dir=uploads.name) as gevent_server:
    runs["gevent_files, selectors clients"] = run_file_clients(
        gevent_server.address, n_clients, expected_sha256=LYRICS_SHA, mode="selectors")

for name, run in runs.items():
    labkit.claim(f"{name}: served every client, no mismatch, no error",
                 run.served == n_clients and not run.mismatches and not run.errors,
                 measured=run.summary())

fig, ax = plt.subplots(figsize=(7, 2.6))
ax.barh(list(runs), [run.elapsed for run in runs.values()], color="#2ca02c")
ax.invert_yaxis()
ax.set_xlabel(f"seconds for {n_clients:,} clients to download and upload (measured now)")
plt.show()

# %% [markdown]
# All four serve everyone with every byte verified. The times on this shared machine vary from
# run to run; what holds every time is the verification.
#
# ## What a client costs the server
#
# One thread serves them all, so threads do not limit it. What each connected client does cost is
# a socket, and a socket is a file descriptor in the server's process. Linux lists a process's
# open descriptors in `/proc/PID/fd`, and its threads in `/proc/PID/status` (`labkit.proc` reads
# them). Here are both, before and while 300 idle clients are connected. We read them once the
# server's own counter says it has accepted all 300:

# %%
from labkit import proc

fds_before = proc.settled(lambda: proc.open_files(server.pid))   # sockets close in their time
threads_before = proc.threads(server.pid)
accepted_before = server.stats()["connections"]
idle_clients = [socket.create_connection(server.address, timeout=10) for _ in range(300)]
all_accepted = proc.wait_until(lambda: server.stats()["connections"] == accepted_before + 300)
fds_during, threads_during = proc.open_files(server.pid), proc.threads(server.pid)
for sock in idle_clients:
    sock.close()
labkit.claim("the server accepted all 300", all_accepted)
labkit.claim("300 clients connected: the server holds 300 more file descriptors",
             fds_during - fds_before == 300, measured=f"{fds_during - fds_before} more")
_ = labkit.claim("and the same number of threads", threads_during == threads_before,
                 measured=f"{threads_before} before, {threads_during} during")

# %% [markdown]
# So it is the open-file limit (`ulimit -n`), not threads, that bounds how many clients one such
# server can hold at once.
#
# ## A client that does not read
#
# The server reads the next 64 KiB piece (`CHUNK`) of a file only while less than `HIGH_WATER`
# (256 KiB) waits to be sent. Take a client that asks for a 64 MiB file and reads nothing. It
# should leave at most `HIGH_WATER + CHUNK` of the file in the server's memory, however big the
# file.
#
# First the server reads the whole file once, to hash it for the header, and goes back to the
# start; it keeps the hash for the next GET. From then on Linux shows how far it has read the
# file to send it: the offset (`pos:`) of its descriptor, in `/proc/PID/fdinfo`. What it read,
# less what it sent, is what it holds:

# %%
labkit.show(proc.file_offset)

# %%
from labkit.servers.selectors_files import CHUNK, HIGH_WATER

big = os.urandom(64 << 20)
with tempfile.TemporaryDirectory(prefix="lesson08-big-") as big_folder:
    (Path(big_folder) / "big.bin").write_bytes(big)
    with labkit.serve("selectors_files", root=big_folder, upload_dir=uploads.name) as srv, \
            socket.create_connection(srv.address, timeout=10) as sock:
        rss_before = proc.status_kib(srv.pid)
        sock.sendall(protocol.request_bytes("GET", "big.bin"))
        assert proc.wait_until(lambda: srv.stats().get("bytes_out", 0) > 0)   # hashed, now sending
        # Both counters at once, unchanged over 0.3 s: a consistent picture of a stuck send.
        sent_while_not_reading, read_from_file = proc.settled(
            lambda: (srv.stats().get("bytes_out", 0), proc.file_offset(srv.pid, "big.bin")),
            pause=0.3)
        rss_growth_mib = (proc.status_kib(srv.pid) - rss_before) / 1024
        header, body = ReplyReader(sock).next()                  # now read it all
held = len(protocol.ok_header(len(big), header.sha256)) + read_from_file - sent_while_not_reading
measured = f"read {read_from_file:,}, held {held:,}, memory +{rss_growth_mib:.1f} MiB"
labkit.claim("while the client did not read, the server read less than a quarter of the file "
             "to send it", read_from_file < len(big) / 4, measured)
labkit.claim("what it read and had not sent was at most HIGH_WATER + CHUNK (320 KiB)",
             held <= HIGH_WATER + CHUNK, measured)
labkit.claim("its memory grew by less than 4 MiB, for a 64 MiB file", rss_growth_mib < 4,
             measured)
_ = labkit.claim("then the client read it all, SHA-256 verified",
                 hashlib.sha256(body).hexdigest() == header.sha256
                 == hashlib.sha256(big).hexdigest())

# %% [markdown]
# The bytes it did send wait in the kernel's socket buffers, on both sides. The server reads
# the rest of the file only as the client takes what was sent.
#
# ## Try it yourself, up to 10,000 clients
#
# The panel runs `run_clients`: a fresh server, with a fresh folder for the uploads. The folder
# is deleted when the run ends (10,000 uploads are 20 MB). Before any client starts,
# `run_file_clients` checks that this process may open that many sockets, since every client is a
# file descriptor. If it may not, it explains what to do.

# %%
PANEL_UPLOADS = f"lesson08-panel-{os.getpid()}-"    # this kernel's, not another notebook's

def run_clients(n_clients=1000, mode="selectors", server_name="selectors_files", progress=None):
    with tempfile.TemporaryDirectory(prefix=PANEL_UPLOADS) as run_uploads, \
            labkit.serve(server_name, root=DATA, upload_dir=run_uploads) as srv:
        return run_file_clients(srv.address, n_clients, expected_sha256=LYRICS_SHA, mode=mode,
                                progress=progress)

def panel_uploads():
    return sorted(Path(tempfile.gettempdir()).glob(PANEL_UPLOADS + "*"))

checked = run_clients(n_clients=300, mode="gevent", server_name="gevent_files")
labkit.claim("300 gevent clients against gevent_files, all served",
             checked.served == 300 and not checked.errors, measured=checked.summary())
labkit.claim("the run's uploads were deleted with their folder", panel_uploads() == [])
try:
    run_clients(n_clients=labkit.max_clients() + 1)
    refused = None
except labkit.TooManyClients as err:
    refused = str(err)
_ = labkit.claim("too many clients: refused before starting, saying how many fit and how to raise "
                 "the limit",
                 refused is not None and "at most about" in refused and "ulimit -n" in refused,
                 measured=str(refused))

# %%
# NBVAL_IGNORE_OUTPUT
panel(run_clients,
      draw=lambda r: plot_timeline(r.spans, title=f"{r.clients:,} {r.mode} clients, "
                                                  f"{r.elapsed:.1f} s", states=FILE_STATES),
      controls={"n_clients": IntSlider(min(1000, labkit.max_clients()), min=10, max=10_000,
                                       step=10, description="clients"),
                "mode": Dropdown(options=list(MODES), value="selectors",
                                 description="client kind"),
                "server_name": Dropdown(options=["selectors_files", "gevent_files"],
                                        description="server")},
      summary=lambda r: r.summary())

# %%
server.stop()
uploads.cleanup()
_ = labkit.claim("the server stopped", not server.alive)

# %% [markdown]
# ## Sitting 2 of 2 (about 35 minutes) — a good place to stop
#
# The second of this lesson's two sittings holds the summary and the exercises. They need nothing
# from the cells above: in a fresh kernel, just run the exercises' first cell.

# %% [markdown]
# ## Summary
#
# * TCP carries bytes. Frame every message (a delimited header, an announced length) and parse
#   incrementally; never assume one `recv` is one message.
# * A selectors server keeps per-connection state in `key.data`. It asks for write readiness only
#   while it has something to send. It streams large replies as the client takes them, and
#   answers bad input with an error instead of crashing.
# * Verified end to end (SHA-256 of every download and upload), one thread served 1,000 clients
#   in one run here, or fewer where `ulimit -n` is low. Each client costs it a file descriptor
#   and no thread, so the open-file limit is what bounds it.
#
# The benchmark (`python -m benchmarks files`) tries 10,000 clients against both file servers. It
# records what it measured, on the machine that ran it, in `benchmarks/results.md`.
#
# ## Exercises
#
# Run the cell below once, then answer each exercise in its cell. `hint(n)` gives a hint; call it
# again for the next one. `check(n, your_answer)` tells you if you have it. `answer(n)` shows a
# worked solution with a sentence on why it is right. Try first, then compare.

# %%
from labkit.exercises import lesson
hint, check, answer = lesson(8)

# %% [markdown]
# **Exercise 1.** A GET reply for a 123,456-byte file starts with the header
# `OK 123456 <64 hex digits>\n`. The client's first `recv(1024)` returned 1,024 bytes. How
# many of them are file data?

# %%
check(1, ...)

# %% [markdown]
# **Exercise 2.** Write `split_replies(stream)`, returning the list of bodies in a byte string
# that holds several `OK <size> <sha256>\n<body>` replies back to back. (Bodies may contain
# anything, newlines and the letters `OK` included.)

# %%
def split_replies(stream):
    ...   # your code here

check(2, split_replies)

# %% [markdown]
# **Exercise 3.** Which name does the server refuse? (a) `歌词.txt`, (b) `../secret`,
# (c) `notes-2024.txt`. Answer `"a"`, `"b"` or `"c"`.

# %%
check(3, ...)

# %% [markdown]
# **Exercise 4.** At least how many file descriptors does the server process need to hold
# 10,000 clients connected at once?

# %%
check(4, ...)

# %% [markdown]
# **Exercise 5.** The skill of this lesson: parse incrementally. Write a class `Replies` whose
# `feed(chunk)` takes the bytes of a stream of `OK <size> <sha256>\n<body>` replies, in pieces
# of any size (one byte, half a header, three replies at once), and returns the list of bodies
# that this piece completed (often `[]`). The check feeds it byte by byte and in random pieces.

# %%
class Replies:
    def feed(self, chunk):
        ...   # your code here

check(5, Replies)
