"""The local copy of the signatory register (firmatecknare), seeded in demo and tests."""

from __future__ import annotations

import enum

from sqlalchemy import String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base


class SigningRule(enum.StrEnum):
    """How the register says the organisation signs (firmateckning)."""

    ALONE = "alone"
    """Each signatory signs alone (var för sig)."""
    TWO_JOINTLY = "two_jointly"
    """Two signatories sign together (två i förening): a form needs both signatures."""


class SignatoryRegisterEntry(Base):
    """A person entitled to sign for an organisation, as the company register says."""

    __tablename__ = "signatory_register_entry"

    id: Mapped[int] = mapped_column(primary_key=True)
    orgnr: Mapped[str] = mapped_column(String(10), index=True)
    personnummer: Mapped[str] = mapped_column(String(12))
    name: Mapped[str] = mapped_column(String(200))
    capacity: Mapped[str] = mapped_column(String(100))
    """How they sign, e.g. "Generaldirektör" or "Styrelseledamot"."""
    signing_rule: Mapped[str] = mapped_column(
        String(20), default=SigningRule.ALONE.value, server_default=SigningRule.ALONE.value
    )
    """``SigningRule``: alone, or two jointly (the organisation's rule, on each of its
    entries)."""

    __table_args__ = (UniqueConstraint("orgnr", "personnummer"),)
