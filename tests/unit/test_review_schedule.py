"""The recurring review's clock comes from the settings (README's settings table)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.access.campaigns import Schedule
from app.config import Settings


def test_the_defaults_are_a_year_a_month_two_reminders_and_two_weeks() -> None:
    schedule = Schedule.from_settings(Settings())
    assert schedule.interval == timedelta(days=365)
    assert schedule.period == timedelta(days=30)
    assert schedule.reminders == (timedelta(days=14), timedelta(days=3))
    assert schedule.grace == timedelta(days=14)
    assert schedule.final_warning == timedelta(days=7)


def test_the_environment_sets_each(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "REVIEW_INTERVAL_DAYS": "180",
        "REVIEW_PERIOD_DAYS": "21",
        "REVIEW_REMINDER_DAYS": "2, 10,2",
        "REVIEW_GRACE_DAYS": "10",
        "REVIEW_FINAL_WARNING_DAYS": "5",
    }.items():
        monkeypatch.setenv(name, value)
    schedule = Schedule.from_settings(Settings.from_env())
    assert schedule.interval == timedelta(days=180)
    assert schedule.period == timedelta(days=21)
    assert schedule.reminders == (timedelta(days=10), timedelta(days=2))  # longest first, once
    assert (schedule.grace, schedule.final_warning) == (timedelta(days=10), timedelta(days=5))
