"""An employer's roster: who holds which role there, and which errands about whom are pending.

The one home of the employer-role rules, with neither Flask nor a database: it is built
from plain values (``app.registrations.service.load_roster`` loads it) and answers

- is P an orderer, a delegated orderer or an administrator here (rules 1, 2 and 9);
- would removing P, with or without a replacement, leave the employer without an
  orderer (rule 8: flagged, and approved only by two caseworkers);
- is an errand about P already pending: a submitted errand (anyone's) or the asker's
  own draft. Another person's draft blocks nothing;
- what a form step may tell the person asking. Someone who holds no orderer role here
  learns nothing about other people from the form: the conflicts are found after
  errand by verification, which asks as SPV (``asker=None``), and shown to the
  caseworker.

The form steps, verification, casework and the apply step all ask it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from app.access.models import ORDERER_ROLES, Role


class Conflict(enum.StrEnum):
    """Why a role change needs a closer look (a step refuses it, verification flags it)."""

    ALREADY_ORDERER = "already_orderer"
    """The person to register holds an orderer role here already."""
    NOT_AN_ORDERER = "not_an_orderer"
    """The person to remove holds no orderer role here."""
    WOULD_LEAVE_NO_ORDERER = "would_leave_no_orderer"
    """The removal leaves the employer without an orderer (rule 8)."""
    REPLACEMENT_ALREADY_ORDERER = "replacement_already_orderer"
    """The removal's replacement holds an orderer role here already."""
    PENDING_ERRAND = "pending_errand"
    """Another errand about the person is pending here."""


@dataclass(frozen=True)
class RoleHolder:
    """An active role grant at the employer."""

    personnummer: str
    role: Role


@dataclass(frozen=True)
class OpenErrand:
    """An errand at the employer that is still open: a draft, or submitted and undecided."""

    id: int
    subject: str
    """The personnummer of the person registered or removed."""
    submitted_by: str
    """The personnummer of the person who started it."""
    is_draft: bool


@dataclass(frozen=True)
class Roster:
    holders: tuple[RoleHolder, ...] = ()
    errands: tuple[OpenErrand, ...] = ()

    # ---- who holds what ----------------------------------------------------------------

    def roles_of(self, personnummer: str) -> frozenset[Role]:
        return frozenset(h.role for h in self.holders if h.personnummer == personnummer)

    def is_orderer(self, personnummer: str) -> bool:
        return Role.ORDERER in self.roles_of(personnummer)

    def is_delegated_orderer(self, personnummer: str) -> bool:
        return Role.DELEGATED_ORDERER in self.roles_of(personnummer)

    def is_administrator(self, personnummer: str) -> bool:
        return Role.ADMINISTRATOR in self.roles_of(personnummer)

    def holds_orderer_role(self, personnummer: str) -> bool:
        """An orderer or a delegated orderer (the roles a registration grants)."""
        return bool(self.roles_of(personnummer) & ORDERER_ROLES)

    def orderers(self) -> frozenset[str]:
        """The employer's orderers (not the delegated ones: delegation needs an orderer)."""
        return frozenset(h.personnummer for h in self.holders if h.role is Role.ORDERER)

    # ---- rule 8: at least one orderer ------------------------------------------------

    def would_leave_no_orderer(self, removed: str, replacement: str | None = None) -> bool:
        """Removing ``removed`` leaves no orderer, unless the errand registers a replacement."""
        return replacement is None and self.orderers() <= {removed}

    # ---- pending errands, and what the asker may be told -----------------------------

    def may_tell(self, asker: str | None, subject: str) -> bool:
        """Whether ``asker`` may learn ``subject``'s roles and errands here: SPV (None)
        may, and so may someone who holds an orderer role here, or asks about themself."""
        return asker is None or asker == subject or self.holds_orderer_role(asker)

    def has_pending_errand(
        self, subject: str, *, asker: str | None = None, excluding: int | None = None
    ) -> bool:
        """An errand about ``subject`` is pending: a submitted one, or ``asker``'s own draft.

        Another person's draft blocks nothing. A stranger (see :meth:`may_tell`) is told
        only of their own errands; ``excluding`` is the errand being checked."""
        told = self.may_tell(asker, subject)
        return any(
            errand.subject == subject
            and errand.id != excluding
            and (errand.submitted_by == asker or (told and not errand.is_draft))
            for errand in self.errands
        )

    # ---- the questions a role change asks --------------------------------------------

    def conflicts_registering(
        self, person: str, *, asker: str | None = None, errand_id: int | None = None
    ) -> list[Conflict]:
        """Why registering ``person`` as (delegated) orderer needs a closer look, as far
        as ``asker`` may be told (None: SPV, told everything)."""
        found = []
        if self.may_tell(asker, person) and self.holds_orderer_role(person):
            found.append(Conflict.ALREADY_ORDERER)
        if self.has_pending_errand(person, asker=asker, excluding=errand_id):
            found.append(Conflict.PENDING_ERRAND)
        return found

    def conflicts_removing(
        self,
        person: str,
        replacement: str | None = None,
        *,
        asker: str | None = None,
        errand_id: int | None = None,
    ) -> list[Conflict]:
        """Why removing ``person`` (registering ``replacement`` instead, if given) needs a
        closer look, as far as ``asker`` may be told (None: SPV, told everything)."""
        found = []
        if self.may_tell(asker, person):
            if not self.holds_orderer_role(person):
                found.append(Conflict.NOT_AN_ORDERER)
            elif self.would_leave_no_orderer(person, replacement):
                found.append(Conflict.WOULD_LEAVE_NO_ORDERER)
        if (
            replacement is not None
            and self.may_tell(asker, replacement)
            and self.holds_orderer_role(replacement)
        ):
            found.append(Conflict.REPLACEMENT_ALREADY_ORDERER)
        if self.has_pending_errand(person, asker=asker, excluding=errand_id):
            found.append(Conflict.PENDING_ERRAND)
        return found
