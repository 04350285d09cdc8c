# %% [markdown]
# # 12 · Capstone: a server the course grades
#
# Every server in this course, but those broken on purpose, had to survive the same storms.
# Many clients came at once; some vanished mid-message, some never read, some sent garbage.
# Now you write your own, on the model you like best: selectors, gevent or asyncio. The
# course puts it through those storms with `labkit.grade`, as it does its own servers. The
# grader runs your server in a background process and tells you what held and what broke.
# It shows the input that broke it, and points at the lesson with the fix.
#
# **After this lesson you can**
# * write a complete server program that takes `--port 0` and says READY (`launch.run`);
# * read a grader's report: each check, the failing input, the hint;
# * tell the classic bugs apart by their symptoms: one client at a time, bytes lost to a
#   partial `send`, a loop that never waits, a client that never reads;
# * fix them one by one, re-grading after each change, until every check passes.
#
# **Time:** about 15 minutes to read and grade the examples; your server, one or two sittings.

# %%
from IPython.display import Code

import labkit
from labkit.grading import skeleton, start_from
from labkit.workspace import WORK

labkit.setup()  # figures as pictures, one-line interrupts, a higher open-file limit

# %% [markdown]
# ## The task
#
# Write an **echo server**: every byte a client sends comes back to it, in order, however the
# bytes are split. It serves as many clients at once as the machine allows. For more, take
# lesson 08's **file protocol** (`GET`/`PUT`/`LIST`), graded with `protocol="files"` as below.
#
# Your server is a program file that ends with `launch.run(serve, __doc__)`, as every server
# of the course does. `launch` binds `127.0.0.1` on the port it is given (0: any free one).
# It prints `READY` and hands `serve(listener, args)` the listening socket.
#
# The same server gets the same report on every run, unless its bug depends on timing. Its
# inputs come from a seeded generator (`seed=0`), so a failure can be replayed. The report is
# stable text, with no times, ports or paths. A number that varies from run to run (memory
# grown, bytes that came back) is given as the bound it passed.
#
# A server that dies fails the battery where it died. Its last log lines come after the
# report, because the line where it broke can differ from run to run.

# %% [markdown]
# The grader runs these checks, each with a time bound, so a server that hangs fails in
# seconds:
#
# | check | what it does | lessons |
# |---|---|---|
# | concurrency | 10 clients connect and stay; each sends a line, must get its echo | 05–07, 09 |
# | exact bytes | 100 clients at once send random bytes in pieces: length, SHA-256 | 07 |
# | slow reader | one reads 12+ MiB late; two never read: another served, memory bounded | 07, 09 |
# | vanishing clients | 16 leave mid-message (reset, half-close); the next is served | 06, 07 |
# | garbage and fuzz | seeded random bytes, odd words, bad UTF-8, half-closes: echoed | 07 |
# | back to baseline | descriptors (`/proc/PID/fd`) and memory (VmRSS) back near before | 07, 08 |
# | idle CPU | with no client at all, the server waits (a loop that never rests fails) | 06, 07 |
# | keeps answering | after every battery, a new client is answered | 06 |
# | no crash | the process ran to the end (if not: where it died, and of what) | all |

# %% [markdown]
# ## A passing report: the course's own server
#
# First the grader on `selectors_echo`, the first server of lesson 00.

# %%
graded = labkit.grade("selectors_echo")

# %%
_ = labkit.claim("selectors_echo, the course's reference, passes every check", graded.passed,
                 measured=graded.report())  # if not: which checks failed, and why

# %% [markdown]
# The load the grader put on it, battery by battery: how many connections were open, and how
# many bytes came back, over time. The concurrency battery's 10 clients, then the 100 of
# exact bytes, then the slow reader's 12 MiB or more, the vanishing clients and the fuzz.

# %%
graded.timeline()

# %% [markdown]
# The file protocol's reference passes its own batteries. They GET a seeded file and check
# it against the disk. They PUT files and GET them back: length and SHA-256 must match what was
# sent. Every malformed request must get an `ERR` line, and no upload cut off mid-way may be
# listed as a file.

# %%
files_graded = labkit.grade("selectors_files", protocol="files")
_ = labkit.claim("selectors_files passes every check of the file protocol", files_graded.passed,
                 measured=files_graded.report())

# %% [markdown]
# ## A failing report: the blocking server
#
# `blocking_echo` is the course's blocking baseline. It is correct byte for byte, but it
# serves one client at a time. The report says so, shows the input that waited, and names
# the lessons with the fix. Its slow-reader failure has the same cause: while it waits on a
# client that never reads, it serves no one else.

# %%
blocking = labkit.grade("blocking_echo")

# %%
labkit.claim("blocking_echo fails the concurrency check: it served one client at a time",
             not blocking.passed
             and "served one client at a time" in blocking["concurrency"].detail)
labkit.claim("and it passes exact bytes: its bug is waiting, not losing bytes",
             blocking["exact bytes"].passed)
_ = labkit.claim("its slow-reader hint names the same cause: one client at a time",
                 "one client at a time" in blocking["slow reader"].hint
                 and "HIGH_WATER" not in blocking["slow reader"].hint)

# %% [markdown]
# `select_echo_naive` (lesson 07) is broken on purpose: it calls `send` once and forgets what
# did not fit. A fast reader does not notice here; the slow reader does. Its other bugs show
# or not by timing: a reset can kill it, and a half-close can drop the echo still queued. So
# here we check the verdicts that hold on every run, not the whole report.

# %%
naive = labkit.grade("select_echo_naive", show=False)
labkit.claim("select_echo_naive loses bytes to a slow reader",
             "the server lost bytes" in naive["slow reader"].detail)
labkit.claim("its hint points at the fix: keep buffer[sent:]",
             "buffer[sent:]" in naive["slow reader"].hint)
labkit.claim("a fast reader does not notice: exact bytes passes", naive["exact bytes"].passed)
print(naive["slow reader"].hint)

# %% [markdown]
# ## Your server
#
# Start from a skeleton: one for each model, each a complete program that runs as it is and
# fails some checks. Its TODOs say what is left to do. Here is the selectors one:

# %%
Code(skeleton("selectors").read_text(), language="python")

# %% [markdown]
# The cell below copies the skeleton you choose (`"selectors"`, `"gevent"` or `"asyncio"`)
# to `my_server.py` in your work folder, `my-work/`, where your copies of the lessons are. It
# does so once: your file is never overwritten. Open it from JupyterLab's file browser, edit
# it there, save, and run the grading cell again after each change.

# %%
# NBVAL_SKIP
MY_SERVER = start_from("selectors", WORK / "my_server.py")

# %%
# NBVAL_SKIP
mine = labkit.grade(MY_SERVER, protocol="echo")
mine.timeline()

# %% [markdown]
# Work down the report from its first ✘: fix that one, grade again. When a check says *not
# run*, the server was gone or had stopped answering: fix the check before it first. A server
# that dies fails the battery it died in. Its last log lines, after the report, show where it
# broke, and its timeline marks the moment with a red line. A server that will not start gets
# a report too, with its last log lines (a `SyntaxError` shows there).
#
# For the file protocol, start from its skeleton: `start_from("selectors", WORK /
# "my_file_server.py", protocol="files")`. The program also takes `--root` and
# `--upload-dir`: `launch.run(serve, __doc__, filestore.add_arguments, setup=filestore.setup)`
# does that. Grade it with
# `labkit.grade(WORK / "my_file_server.py", protocol="files")`.

# %% [markdown]
# ## Summary
#
# * A server is graded from the outside, as a client sees it. It is a program started on a
#   free port; many clients come at once, and every byte is checked. Its descriptors, its
#   memory and whether its threads run or wait are read from `/proc`.
# * Each classic bug has its own symptom. One client at a time fails concurrency; bytes lost
#   to a partial `send` show with a slow reader. A loop that never waits fails idle CPU or
#   keeps answering. A client that never reads grows the server's memory, and a reset that
#   kills the process fails "no crash".
# * Every check is bounded in time and seeded. A hanging server fails in seconds. The same
#   server gets the same inputs, and the same report, on every run, unless its bug depends on
#   timing.
