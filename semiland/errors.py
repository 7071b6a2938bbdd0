"""User-facing errors: one line that says what is wrong and how to fix it.

The CLI catches `SemilandError` and prints its message alone (no traceback); anything else is a bug.
"""


class SemilandError(Exception):
    """A problem with the user's input, config or environment (never a bug in semiland)."""
