"""Errors a user can cause. The CLI prints them as one line and exits non-zero."""

from __future__ import annotations

import difflib
from collections.abc import Sequence


class UserError(Exception):
    """A problem with the user's input or environment, explained in one line."""


def closest(value: str, candidates: Sequence[str]) -> str | None:
    """The candidate a mistyped ``value`` most likely meant, or None."""
    close = difflib.get_close_matches(value, list(candidates), n=1)
    return close[0] if close else None


def did_you_mean(value: str, candidates: Sequence[str]) -> str:
    """`` (did you mean 'x'?)`` for a message about ``value``, or nothing when no candidate is close."""
    close = closest(value, candidates)
    return f" (did you mean {close!r}?)" if close else ""
