"""Keyset pagination: a page of a sorted list found by the row it follows (or precedes),
so that a deep page costs what the first does.

A list is sorted by a timestamp column and then the id. The page links carry a
``Cursor`` (the timestamp and id of the row at the page's edge) and the page number,
which is shown; a page asked by its number alone (no cursor) is found by offset.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, and_, func, or_, tuple_
from sqlalchemy.orm import Session
from sqlalchemy.orm.interfaces import ORMOption
from sqlalchemy.sql.elements import ColumnElement

T = TypeVar("T")


@dataclass(frozen=True)
class Cursor:
    """Where a page begins or ends: the row's sort key and id (a nullable key sorts its
    missing values last)."""

    key: datetime | None
    id: int

    def __str__(self) -> str:
        return f"{self.key.isoformat() if self.key else '-'}_{self.id}"

    @classmethod
    def parse(cls, text: str) -> Cursor | None:
        """The cursor the text names; None for any text ``str`` did not make."""
        key, _sep, id_ = text.rpartition("_")
        try:
            return cls(None if key == "-" else datetime.fromisoformat(key), int(id_))
        except ValueError:
            return None


@dataclass(frozen=True)
class Page(Generic[T]):
    rows: list[T]
    total: int
    page: int
    pages: int
    next: Cursor | None = None
    """The cursor of the next page (None on the last page)."""
    previous: Cursor | None = None
    """The cursor of the page before (None on the first)."""


@dataclass(frozen=True)
class Order:
    """A list's order: ``column`` then ``id``, ascending or descending; ``nullable`` when
    the column may be missing (such rows come last)."""

    column: Any
    id: Any
    descending: bool = False
    nullable: bool = False

    def by(self, forward: bool) -> list[Any]:
        ascending = self.descending != forward
        column = self.column.asc() if ascending else self.column.desc()
        if self.nullable:
            column = column.nulls_last() if forward else column.nulls_first()
        return [column, self.id.asc() if ascending else self.id.desc()]

    def beyond(self, cursor: Cursor, forward: bool) -> ColumnElement[bool]:
        """The rows after ``cursor`` in this order (``forward``), or before it."""
        greater = self.descending != forward

        def past(left: Any, right: Any) -> ColumnElement[bool]:
            return left > right if greater else left < right

        column = self.column
        if cursor.key is None:
            missing = and_(column.is_(None), past(self.id, cursor.id))
            return missing if forward else or_(column.is_not(None), missing)
        beyond = past(tuple_(column, self.id), tuple_(cursor.key, cursor.id))
        return or_(beyond, column.is_(None)) if forward and self.nullable else beyond


def keyset_page(
    session: Session,
    query: Select[Any],
    order: Order,
    key: Callable[[T], datetime | None],
    *,
    page: int,
    after: str = "",
    before: str = "",
    size: int,
    options: Sequence[ORMOption] = (),
    total: int | None = None,
) -> Page[T]:
    """Page ``page`` of ``query`` in ``order``: the rows after the cursor ``after``, or
    before ``before`` (back to the first page when fewer than a page are left), or by
    offset when neither is given. The total is one COUNT of the query, unless the caller
    counted it already (``total``)."""
    if total is None:
        total = session.scalar(query.with_only_columns(func.count(order.id)).order_by(None)) or 0
    pages = max(1, -(-total // size))
    page = min(max(1, page), pages)
    start, end = Cursor.parse(after), Cursor.parse(before)
    rows: list[T] = []
    more = False
    if end is not None:
        backwards = query.where(order.beyond(end, forward=False)).order_by(*order.by(False))
        rows = list(session.scalars(backwards.options(*options).limit(size + 1)))
        if len(rows) > size:  # a page with more before it
            rows, more, page = rows[:size][::-1], True, min(max(2, page), pages)
        else:  # back at the beginning
            rows, start, page = [], None, 1
    if not rows:
        forward = query.order_by(*order.by(True))
        if start is not None:
            forward = forward.where(order.beyond(start, forward=True))
            page = min(max(2, page), pages)
        else:
            forward = forward.offset((page - 1) * size)
        rows = list(session.scalars(forward.options(*options).limit(size + 1)))
        more = len(rows) > size
        rows = rows[:size]
    if not rows:
        return Page([], total, page, pages)
    first, last = rows[0], rows[-1]
    return Page(
        rows,
        total,
        page,
        pages,
        next=Cursor(key(last), order_id(last)) if more else None,
        previous=Cursor(key(first), order_id(first)) if page > 1 else None,
    )


def order_id(row: Any) -> int:
    return int(row.id)
