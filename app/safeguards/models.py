"""An employer's lock against posted forms (spärr mot pappersblanketter)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.access.models import Employer, Person
from app.db import Base, utcnow


class PaperLock(Base):
    """The employer's lock: while the row exists, every form posted for the employer is
    stopped at intake. Switched on and off by a signatory (signatory register) with e-ID;
    the audit log keeps every switch and every stop."""

    __tablename__ = "paper_lock"

    employer_id: Mapped[int] = mapped_column(ForeignKey("employer.id"), primary_key=True)
    locked_dt: Mapped[datetime] = mapped_column(default=utcnow)
    locked_by_person_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    contact_email: Mapped[str | None] = mapped_column(String(254))
    """Where the signatory who switched it on wants to hear of every form it stops."""

    employer: Mapped[Employer] = relationship()
    locked_by: Mapped[Person] = relationship()
