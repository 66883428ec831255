"""The project's user errors: one base class for every problem a person can act on.

Each subclass's message is one sentence that says what is wrong and what to do, and never holds
a secret. The `sparkify` command prints any of them as one line and exits 1; anything else (a
programming error, a bare ValueError from a library) keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem a person can act on (a setting, a URL, the lake, the warehouse, AWS)."""


class UsageError(UserError, ValueError):
    """A command-line argument or setting the project cannot use. Also a ValueError, as such
    mistakes have always been."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (drivers add hints and context lines below),
    or its type's name when the message is empty."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
