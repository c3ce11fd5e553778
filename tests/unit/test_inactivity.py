"""Rule 11: the inactivity mark from the last login, a "still needed" confirmation and now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.access.inactivity import Mark, add_months, inactivity_mark

SEEN = datetime(2025, 3, 15, 9, 30, tzinfo=UTC)
SECOND = timedelta(seconds=1)


@pytest.mark.parametrize(
    ("now", "mark"),
    [
        (SEEN, Mark.NONE),
        (datetime(2026, 3, 15, 9, 30, tzinfo=UTC) - SECOND, Mark.NONE),
        (datetime(2026, 3, 15, 9, 30, tzinfo=UTC), Mark.INACTIVE),
        (datetime(2026, 9, 15, 9, 30, tzinfo=UTC) - SECOND, Mark.INACTIVE),
        (datetime(2026, 9, 15, 9, 30, tzinfo=UTC), Mark.LONG_INACTIVE),
        (datetime(2030, 1, 1, tzinfo=UTC), Mark.LONG_INACTIVE),
    ],
)
def test_marked_after_12_months_red_after_18(now: datetime, mark: Mark) -> None:
    assert inactivity_mark(SEEN, None, now) is mark


def test_never_seen_is_not_marked() -> None:
    assert inactivity_mark(None, None, datetime(2030, 1, 1, tzinfo=UTC)) is Mark.NONE


def test_confirmation_clears_the_mark_for_12_months() -> None:
    confirmed = datetime(2026, 10, 1, 12, 0, tzinfo=UTC)
    until = datetime(2027, 10, 1, 12, 0, tzinfo=UTC)
    assert inactivity_mark(SEEN, confirmed, confirmed) is Mark.NONE
    assert inactivity_mark(SEEN, confirmed, until - SECOND) is Mark.NONE
    assert inactivity_mark(SEEN, confirmed, until) is Mark.LONG_INACTIVE


def test_an_old_confirmation_does_not_clear_a_later_mark() -> None:
    confirmed = datetime(2024, 1, 1, tzinfo=UTC)
    assert inactivity_mark(SEEN, confirmed, datetime(2026, 4, 1, tzinfo=UTC)) is Mark.INACTIVE


@pytest.mark.parametrize(
    ("moment", "months", "expected"),
    [
        (datetime(2024, 2, 29, tzinfo=UTC), 12, datetime(2025, 2, 28, tzinfo=UTC)),
        (datetime(2025, 8, 31, tzinfo=UTC), 18, datetime(2027, 2, 28, tzinfo=UTC)),
        (datetime(2025, 1, 31, tzinfo=UTC), -2, datetime(2024, 11, 30, tzinfo=UTC)),
        (datetime(2025, 12, 5, tzinfo=UTC), 1, datetime(2026, 1, 5, tzinfo=UTC)),
    ],
)
def test_add_months_keeps_the_day_or_takes_the_months_last(
    moment: datetime, months: int, expected: datetime
) -> None:
    assert add_months(moment, months) == expected
