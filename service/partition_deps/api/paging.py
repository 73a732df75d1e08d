"""Opaque page tokens and page sizes, checked in one place."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from google.protobuf.message import Message

from partition_deps.api.errors import ApiError
from partition_deps.api.gen.partitiondeps.v1 import queries_service_pb2 as queries_pb
from partition_deps.api.limits import MAX_PAGE_SIZE

DEFAULT_PAGE_SIZE = 1000


def page_size(requested: int, field: str, default: int = DEFAULT_PAGE_SIZE) -> int:
    if requested < 0:
        raise ApiError("must not be negative", field, reason="INVALID_PAGE_SIZE")
    if requested > MAX_PAGE_SIZE:
        raise ApiError(
            f"page size {requested} exceeds the maximum page size {MAX_PAGE_SIZE}",
            field,
            reason="PAGE_SIZE_TOO_LARGE",
        )
    return min(requested or default, MAX_PAGE_SIZE)


class PagedRequest(Protocol):
    """A request paged by its own `page_size` and `page_token`, its tokens bound to it (the
    List* calls, GetStaleness, PlanRuns; a tick's pages are bound to the tick instead)."""

    page_size: int
    page_token: str


@dataclass(frozen=True)
class Page:
    """The page a request asks for: how many items, the token it continues ("" on the first
    page) and what the tokens given for it are bound to (`request_binding`)."""

    size: int
    token: str
    binding: bytes


def requested_page(request: PagedRequest, default: int = DEFAULT_PAGE_SIZE) -> Page:
    """The page of a request whose tokens are bound to the request itself."""
    assert isinstance(request, Message)  # every request is a protobuf message
    return Page(
        page_size(request.page_size, "page_size", default),
        request.page_token,
        request_binding(request, "page_token", "page_size"),
    )


# Offsets and ids a token may carry: more than any list holds, small enough for a bigint.
_MAX_TOKEN_INT = 2**53
# Bytes of HMAC-SHA256 kept: forging one is a 2^-128 guess.
_MAC_BYTES = 16


def request_binding(request: Message, *page_fields: str) -> bytes:
    """What a page token is bound to: the request, less its page token (`page_fields`, dotted
    paths to the token and page size, which may change from page to page)."""
    unpaged = type(request)()
    unpaged.CopyFrom(request)
    for path in page_fields:
        *parents, name = path.split(".")
        holder: Message = unpaged
        for parent in parents:
            holder = getattr(holder, parent)
        holder.ClearField(name)
    return hashlib.sha256(unpaged.SerializeToString(deterministic=True)).digest()


class PageTokens:
    """Page tokens signed with the database's key, so every replica honours the tokens of
    every other one, and a token is refused unless this service made it for the same request.

    A token is `base64(json values) "." base64(mac)`, the MAC over the values and the
    request binding (`request_binding`); the values are a list of strings and non-negative
    integers whose kinds the caller states.

    Thread safety: the key is loaded once under `_lock`, then only read.
    """

    def __init__(self, load_key: Callable[[], bytes]) -> None:
        self._load_key = load_key
        self._key: bytes | None = None
        self._lock = threading.Lock()

    def _secret(self) -> bytes:
        key = self._key
        if key is None:
            with self._lock:
                if self._key is None:
                    self._key = self._load_key()
                key = self._key
        return key

    def _mac(self, payload: bytes, binding: bytes) -> bytes:
        return hmac.new(self._secret(), payload + b"\0" + binding, hashlib.sha256).digest()[
            :_MAC_BYTES
        ]

    def encode(self, values: Sequence[str | int], binding: bytes) -> str:
        payload = json.dumps(list(values), separators=(",", ":")).encode()
        return f"{_text(payload)}.{_text(self._mac(payload, binding))}"

    def decode(
        self, token: str, binding: bytes, kinds: Sequence[type], field: str
    ) -> list[str | int] | None:
        """The values of `token` (None for the empty token), each of the kind in `kinds`;
        INVALID_ARGUMENT for anything else: not ours, forged, or from another request."""
        if not token:
            return None
        values = self._verified(token, binding)
        if (
            not isinstance(values, list)
            or len(values) != len(kinds)
            or not all(_is_kind(value, kind) for value, kind in zip(values, kinds, strict=True))
        ):
            raise ApiError(
                "not a page token this service gave for this request",
                field,
                reason="INVALID_PAGE_TOKEN",
            )
        return values

    def continued(self, page: Page, kinds: Sequence[type]) -> list[str | int] | None:
        """The values of the token `page` continues (None on the first page); see `decode`."""
        return self.decode(page.token, page.binding, kinds, "page_token")

    def _verified(self, token: str, binding: bytes) -> object:
        payload_text, _, mac_text = token.partition(".")
        try:
            payload, mac = _bytes(payload_text), _bytes(mac_text)
            if not hmac.compare_digest(mac, self._mac(payload, binding)):
                return None
            return json.loads(payload)
        except ValueError:
            return None


# The queries whose answers list keys a page at a time (`key_paging`).
KeyPagedQuery = (
    queries_pb.GetUpstreamPartitionsRequest
    | queries_pb.GetDownstreamPartitionsRequest
    | queries_pb.ComputeUpstreamPartitionsRequest
    | queries_pb.ComputeDownstreamPartitionsRequest
)


class KeyPage:
    """The page of keys a request asks for: `limit` 0 means ranges only."""

    def __init__(self, request: KeyPagedQuery, tokens: PageTokens) -> None:
        paging_request = request.key_paging
        self._tokens = tokens
        self._binding = request_binding(request, "key_paging.page_token", "key_paging.page_size")
        token = tokens.decode(
            paging_request.page_token, self._binding, (str, int), "key_paging.page_token"
        )
        self.scope, self.offset = ("", 0) if token is None else (str(token[0]), int(token[1]))
        self.limit = (
            page_size(paging_request.page_size, "key_paging.page_size")
            if paging_request.include_keys
            else 0
        )

    def next_token(self, scope: str, *lengths: int) -> str:
        end = self.offset + self.limit
        if self.limit and max(lengths) > end:
            return self._tokens.encode([scope, end], self._binding)
        return ""


def _is_kind(value: object, kind: type) -> bool:
    if kind is int:  # a bool is an int to isinstance: never an offset
        return type(value) is int and 0 <= value <= _MAX_TOKEN_INT
    return type(value) is kind


def _text(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _bytes(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
