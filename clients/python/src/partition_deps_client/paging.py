"""`pages`: follow `next_page_token` from one answer to the next."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from google.protobuf.message import Message

Request = TypeVar("Request", bound=Message)
Response = TypeVar("Response", bound=Message)


def pages(
    call: Callable[..., Response], request: Request, *, timeout: float | None = None
) -> Iterator[Response]:
    """Every page of a paged call, first to last: `call(request)`, then again with the
    answer's `next_page_token` until it is empty. The caller's request is left unchanged;
    each page is its own call, with its own deadline."""
    paged: Any = type(request)()
    paged.CopyFrom(request)
    while True:
        page: Any = call(paged, timeout=timeout)
        yield page
        if not page.next_page_token:
            return
        paged.page_token = page.next_page_token
