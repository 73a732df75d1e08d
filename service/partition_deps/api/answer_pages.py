"""Multi-page answers: the first page keeps the whole answer (store/answer_snapshots.py), the
following pages are read from it, so every page of one answer shows the same state however
many events arrive in between, and any replica serves any page.

A page token is (offset, kept answer id), signed and bound to the request (api/paging.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message

from partition_deps.api.errors import ApiError
from partition_deps.api.paging import Page, PageTokens
from partition_deps.domain.work import checkpoint
from partition_deps.store.answer_snapshots import CHUNK_ITEMS, AnswerSnapshots

Response = TypeVar("Response", bound=Message)
Item = TypeVar("Item")
_TOKEN_KINDS = (int, str)
# Every paged response names its token field so.
_NEXT_TOKEN = "next_page_token"


class AnswerPages:
    """Thread safety: holds only thread-safe objects (the store's pool, the token signer)."""

    def __init__(self, snapshots: AnswerSnapshots, tokens: PageTokens) -> None:
        self._snapshots = snapshots
        self._tokens = tokens

    def first_page(
        self,
        namespace_id: int,
        header: Response,
        field: str,
        items: Iterable[Item],
        fill: Callable[[Any, Item], None],
        item_count: int,
        page: Page,
    ) -> Response:
        """`header` with the first `page.size` of `items` (`item_count` of them), each written by
        `fill` into a new element of its repeated `field`; when more follow, the whole answer
        is kept and the response carries the token of the next page. Elements are filled in
        place (`add()`): building messages apart and copying them in cost 40 % more."""
        response = _copy(header)
        listed: Any = getattr(response, field)
        if item_count <= page.size:
            for item in items:
                fill(listed.add(), item)
            return response
        chunks: list[bytes] = []
        chunk = type(header)()
        held: Any = getattr(chunk, field)
        for index, item in enumerate(items):
            if index < page.size:
                fill(listed.add(), item)
            fill(held.add(), item)
            if len(held) == CHUNK_ITEMS:
                checkpoint()  # a caller that gave up does not wait for the rest
                chunks.append(chunk.SerializeToString())
                chunk = type(header)()
                held = getattr(chunk, field)
        if len(held):
            chunks.append(chunk.SerializeToString())
        snapshot_id = self._snapshots.save(
            namespace_id, header.SerializeToString(), item_count, chunks
        )
        setattr(response, _NEXT_TOKEN, self._tokens.encode([page.size, snapshot_id], page.binding))
        return response

    def next_page(
        self,
        response_type: type[Response],
        namespace_id: int,
        field: str,
        page: Page,
    ) -> Response:
        """The page at the token's offset of the answer kept by its first page."""
        values = self._tokens.continued(page, _TOKEN_KINDS)
        assert values is not None  # callers pass a page with a token
        offset, snapshot_id = int(values[0]), str(values[1])
        stored = self._snapshots.load(
            snapshot_id,
            namespace_id,
            offset // CHUNK_ITEMS,
            (offset + page.size - 1) // CHUNK_ITEMS,
        )
        if stored is None:
            raise ApiError(
                "the answer this page token continues has expired: ask again from the first page",
                "page_token",
                reason="PAGE_SNAPSHOT_EXPIRED",
                code=grpc.StatusCode.FAILED_PRECONDITION,
            )
        response = response_type.FromString(stored.header)
        listed: Any = getattr(response, field)
        end = min(offset + page.size, stored.item_count)
        for number, body in stored.chunks:
            chunk_items: Any = getattr(response_type.FromString(body), field)
            base = number * CHUNK_ITEMS
            listed.extend(chunk_items[max(offset - base, 0) : max(end - base, 0)])
        if end < stored.item_count:
            setattr(response, _NEXT_TOKEN, self._tokens.encode([end, snapshot_id], page.binding))
        return response


def _copy(message: Response) -> Response:
    copied = type(message)()
    copied.CopyFrom(message)
    return copied
