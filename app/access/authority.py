"""What the signed-in person may do at the employer they chose: the one home of the
"who may do what here" rules of "Hantera behörigheter" (rules 2 and 3).

Built from plain values (``app.access.management.authority_at`` loads it); no Flask, no
database. The services ask it before every change; the pages ask it what to offer.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from app.access.models import ORDERER_ROLES, Role, SelfService

CLOSED_CODE_SERVICES = frozenset({SelfService.INVOICES})
"""A closed employer code allows only reading invoice specifications."""


class Access(enum.StrEnum):
    """How a self-service is used: reading, or changing something."""

    READ = "read"
    WRITE = "write"


def code_allows(is_closed: bool, service: SelfService, access: Access = Access.READ) -> bool:
    """Whether an employer code allows ``service`` used for ``access`` at all: a closed code
    allows only reading invoice specifications (rule 4). Asked when a permission is granted
    (``Authority.service_allowed``) and when another service checks one (``app.api``)."""
    return not is_closed or (service in CLOSED_CODE_SERVICES and access is Access.READ)


@dataclass(frozen=True)
class Authority:
    """A person's roles at one employer and the employer codes those roles cover."""

    person_id: int
    employer_id: int
    roles: frozenset[Role]
    all_codes: bool
    """One of the roles covers all the employer's codes."""
    explicit_code_ids: frozenset[int]
    """The codes the roles name, when none covers all of them."""
    employer_code_ids: frozenset[int]
    closed_code_ids: frozenset[int]

    # ---- which codes ----------------------------------------------------------------

    @property
    def covered_code_ids(self) -> frozenset[int]:
        if not self.roles:
            return frozenset()
        if self.all_codes:
            return self.employer_code_ids
        return self.explicit_code_ids & self.employer_code_ids

    def covers(self, code_id: int) -> bool:
        return code_id in self.covered_code_ids

    def covers_scope(self, all_codes: bool, code_ids: frozenset[int]) -> bool:
        """Whether a scope (all codes, or ``code_ids``) lies within what this person covers."""
        if all_codes:
            return self.all_codes and bool(self.roles)
        return bool(code_ids) and code_ids <= self.covered_code_ids

    # ---- what they may do -----------------------------------------------------------

    @property
    def is_orderer(self) -> bool:
        """An orderer or a delegated orderer."""
        return bool(self.roles & ORDERER_ROLES)

    @property
    def is_delegated_only(self) -> bool:
        return Role.DELEGATED_ORDERER in self.roles and Role.ORDERER not in self.roles

    @property
    def manages_permissions(self) -> bool:
        """Orderers and administrators add and remove users' permissions (rule 2)."""
        return bool(self.roles)

    @property
    def manages_administrators(self) -> bool:
        """Only an orderer (or a delegated orderer) appoints and removes administrators."""
        return self.is_orderer

    def may_change_permissions_of(self, person_id: int) -> bool:
        """Nobody grants themselves anything, nor removes their own permissions."""
        return self.manages_permissions and person_id != self.person_id

    def may_grant(self, person_id: int, code_id: int, service: SelfService) -> bool:
        return (
            self.may_change_permissions_of(person_id)
            and self.covers(code_id)
            and self.service_allowed(code_id, service)
        )

    def may_revoke(self, person_id: int, code_id: int) -> bool:
        return self.may_change_permissions_of(person_id) and self.covers(code_id)

    def may_manage_administrator(
        self, person_id: int, all_codes: bool, code_ids: frozenset[int]
    ) -> bool:
        """Appoint, change or remove an administrator whose scope is within this orderer's,
        never themself."""
        return (
            self.manages_administrators
            and person_id != self.person_id
            and self.covers_scope(all_codes, code_ids)
        )

    def service_allowed(self, code_id: int, service: SelfService) -> bool:
        return code_allows(code_id in self.closed_code_ids, service)
