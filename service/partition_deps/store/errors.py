"""Store errors: what went wrong with stored state, independent of any transport."""

from __future__ import annotations


class StoreError(Exception):
    """Base of store errors. `field` names the request input the error is about, if any."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NamespaceNotFound(StoreError):
    pass


class AssetNotFound(StoreError):
    pass


class GenerationMismatch(StoreError):
    """An optimistic write whose expected generation is no longer current."""


class AssetInUse(StoreError):
    """An asset that other assets depend on cannot be deleted."""


class TickNotFound(StoreError):
    pass


class EvaluationTimeBeforeLastTick(StoreError):
    """An automation tick earlier than the namespace's latest one."""


class TickIdConflict(StoreError):
    """An automation tick id already used for a tick at another evaluation time."""


class UnstorableValue(StoreError):
    """A value Postgres refuses as data (e.g. a NUL character in text): the caller's input."""


class StoreUnavailable(StoreError):
    """The database cannot be reached (retryable)."""
