"""Providers: each monitoring system the console hears from, behind one interface.

`base.py` is the contract a provider keeps (a name, push or pull, its health, and how
the system's payloads become signals); `registry.py` finds providers through the
`watchfloor.providers` entry points, so one installed with pip joins without a change
here. The shipped ones live beside them, one module per system. Qt-free, like all of
console/sources.
"""
