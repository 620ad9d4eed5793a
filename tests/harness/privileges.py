"""Run a function as a process that the file permissions bind: root without DAC override.

The tests run as root, which reads any file whatever its mode. A forked child that
drops ``CAP_DAC_OVERRIDE`` and ``CAP_DAC_READ_SEARCH`` (capset(2), through ctypes)
stays root, so it still owns the test's temporary folders, but a folder of mode 000
becomes unreadable to it, as it is to an ordinary user. The child inherits the
parent's memory, moto's simulated AWS included; its result comes back pickled.
"""

from __future__ import annotations

import ctypes
import os
import pickle
import signal
import traceback
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

_LINUX_CAPABILITY_VERSION_3 = 0x20080522
_CAP_DAC_OVERRIDE = 1
_CAP_DAC_READ_SEARCH = 2
_CHILD_TIMEOUT = 300


class _Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _Data(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def _drop_dac_capabilities() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    header = _Header(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_Data * 2)()
    if libc.capget(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capget")
    mask = ~((1 << _CAP_DAC_OVERRIDE) | (1 << _CAP_DAC_READ_SEARCH)) & 0xFFFFFFFF
    data[0].effective &= mask
    data[0].permitted &= mask
    data[0].inheritable &= mask
    if libc.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset")


def without_dac_override(function: Callable[[], T]) -> T:
    """``function()`` run in a forked child without DAC override; re-raises its error."""
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        os.close(reader)
        signal.alarm(_CHILD_TIMEOUT)  # a child stuck on a lock inherited mid-use dies
        try:
            _drop_dac_capabilities()
            outcome: tuple[bool, object] = (True, function())
        except BaseException:
            outcome = (False, traceback.format_exc())
        with os.fdopen(writer, "wb") as pipe:
            pickle.dump(outcome, pipe)
        os._exit(0)
    os.close(writer)
    with os.fdopen(reader, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    if not data:
        raise AssertionError(f"the unprivileged child died (killed after {_CHILD_TIMEOUT} s?)")
    ok, value = pickle.loads(data)
    if not ok:
        raise AssertionError(f"the unprivileged child failed:\n{value}")
    return value  # type: ignore[return-value]
