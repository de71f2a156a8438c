"""The one exception the data layer raises for problems a user can fix.

Data files and synthetic-task parameters come from the user (through a spec
file), so every failure here is reported as a :class:`DataError` whose message
names the file, column, row or parameter at fault and says what was expected.
The data layer does not know which line of the spec asked for the data, so the
caller (the spec loader / CLI) fills ``where`` with the spec's ``file:line:col``
via :meth:`DataError.located` before showing it.
"""
from __future__ import annotations

import difflib
from typing import Iterable

__all__ = ["DataError", "did_you_mean", "listing"]


class DataError(Exception):
    """A problem with input data or data parameters.

    ``message`` says what is wrong and what was expected; ``where`` (optional)
    is the ``file:line:col`` of the spec entry that requested the data.
    ``str(err)`` is ``"<where>: error: <message>"`` (or ``"error: <message>"``),
    matching the format of :class:`rnnspec.errors.SpecError`.
    """

    def __init__(self, message: str, where: str | None = None) -> None:
        self.message = message
        self.where = where
        super().__init__(self.render())

    def render(self) -> str:
        """The full one-line report, location first when known."""
        if self.where:
            return f"{self.where}: error: {self.message}"
        return f"error: {self.message}"

    def located(self, where: str) -> "DataError":
        """A copy of this error pinned to ``where`` (keeps an existing location).

        Typical use in the spec layer::

            except DataError as err:
                raise err.located(str(pos)) from err
        """
        return DataError(self.message, self.where or where)

    def __reduce__(self):  # keep pickling (multiprocessing) working
        return (DataError, (self.message, self.where))


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` when a close match exists, else ``""``."""
    close = difflib.get_close_matches(word, [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def listing(choices: Iterable[str], limit: int = 20) -> str:
    """A short, comma-separated, quoted list for error messages."""
    items = [repr(str(c)) for c in choices]
    if not items:
        return "none"
    if len(items) > limit:
        items = items[:limit] + [f"... ({len(items) - limit} more)"]
    return ", ".join(items)
