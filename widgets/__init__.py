"""The Qt panes and models of the console (the only package besides console/app.py that
imports Qt)."""

from widgets import _pyside_refcount  # noqa: F401  (must run before any signal is emitted)
