"""The local copy of the signatory register (firmatecknare), seeded in demo and tests."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, str_enum, utcnow


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
    registered_on: Mapped[date | None]
    """When the company register registered the person as signatory (the extract's
    ``registreringsdatum``)."""

    __table_args__ = (UniqueConstraint("orgnr", "personnummer"),)


class RegisterChangeKind(enum.StrEnum):
    ADDED = "added"
    REMOVED = "removed"
    CHANGED = "changed"
    """Still a signatory, with another name, capacity or signing rule."""


class SignatoryRegisterChange(Base):
    """One change an imported extract of the company register made to the local register
    (``behorighet signatories import``): who became, stopped being, or changed as a
    signatory of an organisation. Written in the import's one transaction."""

    __tablename__ = "signatory_register_change"

    id: Mapped[int] = mapped_column(primary_key=True)
    orgnr: Mapped[str] = mapped_column(String(10))
    personnummer: Mapped[str] = mapped_column(String(12))
    kind: Mapped[RegisterChangeKind] = mapped_column(
        str_enum(RegisterChangeKind, "register_change_kind")
    )
    name: Mapped[str] = mapped_column(String(200))
    capacity: Mapped[str] = mapped_column(String(100))
    """The entry as it is now (as it was, for a removal)."""
    signing_rule: Mapped[str | None] = mapped_column(String(32))
    extract_sha256: Mapped[str] = mapped_column(String(64))
    """The SHA-256 of the imported file."""
    recorded_dt: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_signatory_register_change_orgnr", "orgnr", "recorded_dt"),)
