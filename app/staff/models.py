"""SPV staff: caseworkers (handläggare) and intake clerks (registratorer)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow


class StaffMember(Base):
    __tablename__ = "staff_member"

    id: Mapped[int] = mapped_column(primary_key=True)
    personnummer: Mapped[str] = mapped_column(String(12), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(254))
    is_caseworker: Mapped[bool] = mapped_column(default=False)
    is_intake_clerk: Mapped[bool] = mapped_column(default=False)
    is_team_lead: Mapped[bool] = mapped_column(default=False)
    """Gets escalations of overdue errands (``DUE_REMINDER_BEFORE``, ``DECISION_TIME``)."""
    is_active: Mapped[bool] = mapped_column(default=True)
    created_dt: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        CheckConstraint("length(personnummer) = 12", name="personnummer_twelve_digits"),
        CheckConstraint("is_caseworker OR is_intake_clerk", name="has_a_role"),
    )
