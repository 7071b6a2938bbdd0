"""User-facing errors: one line that says what is wrong and how to fix it.

The CLI catches `SemilandError` and prints its message alone (no traceback); anything else is a bug.
"""

import unicodedata


class SemilandError(Exception):
    """A problem with the user's input, config or environment (never a bug in semiland)."""


class Interrupted(KeyboardInterrupt):
    """A command stopped by Ctrl-C or SIGTERM; its message says what was kept and how to go on."""


def one_line(message: str) -> str:
    """`message` on one printable line: control characters and line / paragraph separators (which a file or
    key name may carry, and which `str.splitlines` breaks on) are shown as escapes."""
    return "".join(
        c.encode("unicode_escape").decode("ascii") if unicodedata.category(c)[0] in "CZ" and c != " " else c
        for c in message
    )
