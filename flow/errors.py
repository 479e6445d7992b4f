"""The one error type of the ``flow`` package."""

from __future__ import annotations


class FlowError(ValueError):
    """Bad input a user can cause: a malformed ``.flo``/``.pgm`` file, flows of different sizes,
    an unknown method name. The message is one line, fit to show as ``error: <message>``."""
