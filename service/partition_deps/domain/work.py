"""Work nobody waits for any more is abandoned: long loops of the domain call `checkpoint()`.

The caller (the API, for a call whose deadline passed or that its client cancelled) says
when to give up with `abandoned_when`; without it nothing is ever abandoned. Answers never
depend on this: a question is either answered exactly or not at all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

# Thread safety: a ContextVar, one value per call (each call runs in its own context).
_abandon: ContextVar[Callable[[], bool] | None] = ContextVar("abandon", default=None)


class WorkAbandoned(Exception):
    """The caller gave up (deadline passed, call cancelled): the question was not answered."""


@contextmanager
def abandoned_when(check: Callable[[], bool]) -> Iterator[None]:
    """Within the block, `checkpoint()` raises WorkAbandoned once `check()` is true."""
    token = _abandon.set(check)
    try:
        yield
    finally:
        _abandon.reset(token)


def checkpoint() -> None:
    """Raise WorkAbandoned if the caller gave up. Cheap: loops call it every few thousand
    steps, or once per step whose work is large (a year of ticks, a block of keys)."""
    check = _abandon.get()
    if check is not None and check():
        raise WorkAbandoned("the caller's deadline passed or it cancelled the call")
