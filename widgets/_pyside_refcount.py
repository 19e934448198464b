"""Work around PySide6 6.12.0 on Python < 3.12 dropping references to None and True.

Found while building the shell: with PySide6-Essentials 6.12.0 (an abi3 wheel that
installs on 3.10/3.11) every void method call (`setText`, `setValue`, `setChecked`, ...)
and every `SignalInstance.emit()`/`disconnect()` returns `None`/`True` without taking a
reference to it; the binding behaves as if those singletons were immortal, which they
are only from Python 3.12 on. On 3.11 `None` starts with a few thousand references, so
after a few seconds of a live window (pyqtgraph alone makes hundreds of such calls per
redraw) the interpreter aborts with "Fatal Python error: none_dealloc" (or bool_dealloc).
PySide6 6.11.3 on 3.11, and 6.12.0 on 3.12, do not have the problem.

The workaround does what Python 3.12 does: it makes those singletons effectively
immortal by adding 2**40 to their reference counts, once, at import. That is applied
only on CPython < 3.12 with a PySide6 that is seen to leak (a probe below), so it
vanishes by itself once the stack is fixed. The proper fix belongs in the dependency
pins (exclude 6.12.0 on Python < 3.12, or require 3.12); see the shell's hand-over
notes. `widgets/__init__.py` imports this module, i.e. before any pane exists.
"""

from __future__ import annotations

import ctypes
import sys

from PySide6.QtCore import QObject, Signal

IMMORTAL_BOOST = 1 << 40
_SINGLETONS = (None, True, False, Ellipsis, NotImplemented)


class _Probe(QObject):
    ping = Signal()


def leaks_singletons() -> bool:
    """True when a void call or an emit loses references to None/True."""
    probe = _Probe()
    before = sys.getrefcount(None) + sys.getrefcount(True)
    for _ in range(16):
        probe.setObjectName("probe")  # void: returns None
        probe.ping.emit()  # returns True
    return before - (sys.getrefcount(None) + sys.getrefcount(True)) >= 16


def _immortalize(obj: object) -> None:
    # CPython: ob_refcnt is the first field of every object (Py_ssize_t).
    ctypes.c_ssize_t.from_address(id(obj)).value += IMMORTAL_BOOST


def apply() -> bool:
    """Apply once if needed; True when the singletons were (or already are) boosted."""
    if sys.implementation.name != "cpython" or sys.version_info >= (3, 12):
        return False
    if sys.getrefcount(None) > IMMORTAL_BOOST // 2:
        return True
    if not leaks_singletons():
        return False
    for obj in _SINGLETONS:
        _immortalize(obj)
    return True


ACTIVE = apply()
