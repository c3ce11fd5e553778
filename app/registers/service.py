"""The signatory register behind one interface; the local table stands in for the real one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.registers.models import SignatoryRegisterEntry, SigningRule


@dataclass(frozen=True)
class Signatory:
    orgnr: str
    personnummer: str
    name: str
    capacity: str
    signing_rule: str = SigningRule.ALONE.value
    """How the organisation signs (``SigningRule``)."""


class SignatoryRegister(Protocol):
    def signatories(self, orgnr: str) -> list[Signatory]:
        """Everyone entitled to sign for the organisation."""
        ...

    def organisations_of(self, personnummer: str) -> list[str]:
        """The organisations (orgnr) the person is entitled to sign for."""
        ...


class LocalSignatoryRegister:
    """Reads the seeded ``signatory_register_entry`` table."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def signatories(self, orgnr: str) -> list[Signatory]:
        rows = self._session.scalars(
            select(SignatoryRegisterEntry).where(SignatoryRegisterEntry.orgnr == orgnr)
        )
        return [
            Signatory(r.orgnr, r.personnummer, r.name, r.capacity, r.signing_rule) for r in rows
        ]

    def organisations_of(self, personnummer: str) -> list[str]:
        return list(
            self._session.scalars(
                select(SignatoryRegisterEntry.orgnr).where(
                    SignatoryRegisterEntry.personnummer == personnummer
                )
            )
        )


def is_signatory(register: SignatoryRegister, orgnr: str, personnummer: str) -> bool:
    return any(s.personnummer == personnummer for s in register.signatories(orgnr))


def signs_jointly(register: SignatoryRegister, orgnr: str) -> bool:
    """Rule: the register says the organisation signs two jointly (två i förening), so a
    form needs the signatures of two different signatories (``docs/rules.md``, joint
    signatories)."""
    return any(s.signing_rule == SigningRule.TWO_JOINTLY for s in register.signatories(orgnr))
