"""The local copy of the signatory register (firmatecknare), seeded in demo and tests."""

from __future__ import annotations

from sqlalchemy import String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base


class SignatoryRegisterEntry(Base):
    """A person entitled to sign for an organisation, as the company register says."""

    __tablename__ = "signatory_register_entry"

    id: Mapped[int] = mapped_column(primary_key=True)
    orgnr: Mapped[str] = mapped_column(String(10), index=True)
    personnummer: Mapped[str] = mapped_column(String(12))
    name: Mapped[str] = mapped_column(String(200))
    capacity: Mapped[str] = mapped_column(String(100))
    """How they sign, e.g. "Generaldirektör" or "Styrelseledamot"."""

    __table_args__ = (UniqueConstraint("orgnr", "personnummer"),)
