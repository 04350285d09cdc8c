"""Kernel > Interrupt inside a labkit call shows one line that says what stopped, once
``labkit.setup()`` has run in the kernel (importing labkit changes nothing)."""

import time

import pytest
from jupyter_client import KernelManager

from labkit.ipc_kernels import IPCKernelManager

SLOW_ECHO = """
import labkit; labkit.setup()
from labkit.clients.echo import echo_roundtrip
with labkit.serve("thread_echo", delay=30) as srv:
    print("started", flush=True)
    echo_roundtrip(srv.address, b"hello", timeout=60)
"""


@pytest.fixture
def kernel():
    km = IPCKernelManager(kernel_name="python3")
    assert isinstance(km, KernelManager)
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=60)
    yield km, kc
    kc.stop_channels()
    km.shutdown_kernel(now=True)


def run_and_interrupt(km, kc, code, after="started"):
    """Run ``code``; interrupt the kernel once it prints ``after``; return the error output."""
    msg_id = kc.execute(code)
    deadline, error, interrupted = time.monotonic() + 60, None, False
    while time.monotonic() < deadline:
        msg = kc.get_iopub_msg(timeout=60)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream" and after in content["text"] and not interrupted:
            time.sleep(0.5)
            km.interrupt_kernel()
            interrupted = True
        elif kind == "error":
            error = content
        elif kind == "status" and content["execution_state"] == "idle":
            return error
    raise AssertionError("the cell never finished")


def test_an_interrupt_inside_labkit_is_one_line(kernel):
    km, kc = kernel
    error = run_and_interrupt(km, kc, SLOW_ECHO.strip())
    assert error["ename"] == "KeyboardInterrupt"
    assert len(error["traceback"]) == 1, error["traceback"]
    line = error["traceback"][0]
    assert "inside labkit.clients.echo." in line and "line 5 of the cell" in line
    assert "no background server is left running" in line


def test_an_interrupt_elsewhere_keeps_its_traceback(kernel):
    km, kc = kernel
    error = run_and_interrupt(
        km, kc, "import labkit, time\nlabkit.setup()\nprint('started', flush=True)\ntime.sleep(30)"
    )
    assert error["ename"] == "KeyboardInterrupt"
    assert len(error["traceback"]) > 1 and "Interrupted at line" not in str(error["traceback"])
