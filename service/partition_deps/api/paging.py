"""Opaque page tokens and page sizes, checked in one place."""

from __future__ import annotations

import base64
import json

import grpc

from partition_deps.api.errors import ApiError
from partition_deps.api.limits import MAX_PAGE_SIZE

DEFAULT_PAGE_SIZE = 1000


def page_size(requested: int, field: str, default: int = DEFAULT_PAGE_SIZE) -> int:
    if requested < 0:
        raise ApiError(
            grpc.StatusCode.INVALID_ARGUMENT, "INVALID_PAGE_SIZE", "must not be negative", field
        )
    if requested > MAX_PAGE_SIZE:
        raise ApiError(
            grpc.StatusCode.INVALID_ARGUMENT,
            "PAGE_SIZE_TOO_LARGE",
            f"page size {requested} exceeds the maximum page size {MAX_PAGE_SIZE}",
            field,
        )
    return min(requested or default, MAX_PAGE_SIZE)


def encode_token(scope: str, offset: int) -> str:
    """A token for `offset` within `scope` (an asset key, or "" for a single list)."""
    raw = json.dumps([scope, offset], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str, field: str) -> tuple[str, int]:
    """(scope, offset) of a token; ("", 0) for the empty token."""
    if not token:
        return "", 0
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        scope, offset = json.loads(raw)
        if isinstance(scope, str) and isinstance(offset, int) and offset >= 0:
            return scope, offset
    except (ValueError, TypeError):
        pass
    raise ApiError(
        grpc.StatusCode.INVALID_ARGUMENT, "INVALID_PAGE_TOKEN", "not a page token of ours", field
    )
