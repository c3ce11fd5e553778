"""The permission store: employers, their codes, persons, role grants and service permissions."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, str_enum, utcnow


class CodeStatus(enum.StrEnum):
    ACTIVE = "active"
    CLOSED = "closed"


class Role(enum.StrEnum):
    ORDERER = "orderer"
    DELEGATED_ORDERER = "delegated_orderer"
    ADMINISTRATOR = "administrator"


ORDERER_ROLES = frozenset({Role.ORDERER, Role.DELEGATED_ORDERER})


class Employer(Base):
    __tablename__ = "employer"

    id: Mapped[int] = mapped_column(primary_key=True)
    orgnr: Mapped[str] = mapped_column(String(10), unique=True)
    """Ten digits, no separator."""
    name: Mapped[str] = mapped_column(String(200))
    created_dt: Mapped[datetime] = mapped_column(default=utcnow)

    codes: Mapped[list[EmployerCode]] = relationship(
        back_populates="employer", order_by="EmployerCode.code"
    )

    __table_args__ = (CheckConstraint("length(orgnr) = 10", name="orgnr_ten_digits"),)


class EmployerCode(Base):
    __tablename__ = "employer_code"

    id: Mapped[int] = mapped_column(primary_key=True)
    employer_id: Mapped[int] = mapped_column(ForeignKey("employer.id"), index=True)
    code: Mapped[str] = mapped_column(String(20), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[CodeStatus] = mapped_column(str_enum(CodeStatus, "code_status"))

    employer: Mapped[Employer] = relationship(back_populates="codes")


class Person(Base):
    __tablename__ = "person"

    id: Mapped[int] = mapped_column(primary_key=True)
    personnummer: Mapped[str] = mapped_column(String(12), unique=True)
    """Twelve digits with century, no separator (samordningsnummer allowed)."""
    given_name: Mapped[str] = mapped_column(String(100))
    family_name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(254))
    last_login_dt: Mapped[datetime | None]
    language: Mapped[str | None] = mapped_column(String(2))
    """The language the person last logged in with: their emails are written in it."""
    created_dt: Mapped[datetime] = mapped_column(default=utcnow)
    pseudonymised_dt: Mapped[datetime | None]
    """When retention removed the person's personal data (``app.retention``): the
    personnummer is then a placeholder (``00`` and the id) and the names empty."""

    __table_args__ = (
        CheckConstraint("length(personnummer) = 12", name="personnummer_twelve_digits"),
        CheckConstraint("language IN ('sv', 'en')", name="language_supported"),
        Index("ix_person_name", "family_name", "given_name"),
    )

    @property
    def full_name(self) -> str:
        return f"{self.given_name} {self.family_name}"


class RoleGrant(Base):
    """A person's role at an employer, for all its codes or an explicit set."""

    __tablename__ = "role_grant"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"), index=True)
    employer_id: Mapped[int] = mapped_column(ForeignKey("employer.id"), index=True)
    role: Mapped[Role] = mapped_column(str_enum(Role, "role"))
    is_all_codes: Mapped[bool] = mapped_column(default=True)
    contact_email: Mapped[str | None] = mapped_column(String(254))
    """The work email given for this role at this employer (a person may work for several)."""
    valid_from_dt: Mapped[datetime] = mapped_column(default=utcnow)
    valid_to_dt: Mapped[datetime | None]
    granted_by_person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    source_errand_id: Mapped[int | None] = mapped_column(ForeignKey("errand.id"), unique=True)
    """The registration that created this grant; one errand creates at most one grant."""
    revoked_by_errand_id: Mapped[int | None] = mapped_column(ForeignKey("errand.id"))
    ends_on: Mapped[date | None] = mapped_column(index=True)
    """The planned end (a time-limited mandate, ``app.access.mandates``): the day the
    scheduled actor ends the role (``valid_to_dt``); None: until further notice."""

    person: Mapped[Person] = relationship(foreign_keys=[person_id])
    employer: Mapped[Employer] = relationship()
    codes: Mapped[list[EmployerCode]] = relationship(secondary="role_grant_code")

    __table_args__ = (
        CheckConstraint("valid_to_dt IS NULL OR valid_to_dt >= valid_from_dt", name="valid_period"),
        # Orderers are registered only through a signed form (rule 7).
        CheckConstraint(
            "role NOT IN ('orderer', 'delegated_orderer') OR source_errand_id IS NOT NULL",
            name="orderer_from_errand",
        ),
        # Only an orderer appoints administrators (rule 2).
        CheckConstraint(
            "role <> 'administrator' OR granted_by_person_id IS NOT NULL",
            name="administrator_appointed_by_person",
        ),
        Index(
            "uq_role_grant_active",
            "person_id",
            "employer_id",
            "role",
            unique=True,
            postgresql_where=text("valid_to_dt IS NULL"),
            sqlite_where=text("valid_to_dt IS NULL"),
        ),
    )

    @property
    def is_active(self) -> bool:
        return self.valid_to_dt is None or self.valid_to_dt > utcnow()


class RoleGrantCode(Base):
    """The explicit codes of a grant whose ``is_all_codes`` is false."""

    __tablename__ = "role_grant_code"

    role_grant_id: Mapped[int] = mapped_column(ForeignKey("role_grant.id"), primary_key=True)
    employer_code_id: Mapped[int] = mapped_column(ForeignKey("employer_code.id"), primary_key=True)


class SelfService(enum.StrEnum):
    """SPV's self-service services for employers."""

    EMPLOYMENT_REPORTING = "employment_reporting"
    """Anmäla anställning och inkomst."""
    INVOICES = "invoices"
    """Fakturor och fakturaspecifikationer."""
    PENSION_CASES = "pension_cases"
    """Pensionsärenden."""
    STATISTICS = "statistics"
    """Statistik och rapporter."""


class ServicePermission(Base):
    """A user may use a self-service for one employer code."""

    __tablename__ = "service_permission"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"), index=True)
    employer_code_id: Mapped[int] = mapped_column(ForeignKey("employer_code.id"), index=True)
    service: Mapped[SelfService] = mapped_column(str_enum(SelfService, "self_service"))
    granted_by_person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    valid_from_dt: Mapped[datetime] = mapped_column(default=utcnow)
    valid_to_dt: Mapped[datetime | None]
    ends_on: Mapped[date | None] = mapped_column(index=True)
    """The planned end, as ``RoleGrant.ends_on``."""

    person: Mapped[Person] = relationship(foreign_keys=[person_id])
    employer_code: Mapped[EmployerCode] = relationship()

    __table_args__ = (
        CheckConstraint("valid_to_dt IS NULL OR valid_to_dt >= valid_from_dt", name="valid_period"),
        Index(
            "uq_service_permission_active",
            "person_id",
            "employer_code_id",
            "service",
            unique=True,
            postgresql_where=text("valid_to_dt IS NULL"),
            sqlite_where=text("valid_to_dt IS NULL"),
        ),
    )


class InactivityConfirmation(Base):
    """An orderer or administrator confirmed that an inactive user still needs their
    permissions at the employer (rule 11): it clears the user's mark for a while."""

    __tablename__ = "inactivity_confirmation"

    id: Mapped[int] = mapped_column(primary_key=True)
    employer_id: Mapped[int] = mapped_column(ForeignKey("employer.id"))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    confirmed_by_person_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    confirmed_dt: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index("ix_inactivity_confirmation_employer_person", "employer_id", "person_id"),
    )


class ReviewItemKind(enum.StrEnum):
    SERVICE_PERMISSION = "service_permission"
    ADMINISTRATOR = "administrator"


class ReviewDecision(enum.StrEnum):
    CONFIRMED = "confirmed"
    """An orderer or administrator confirmed it is still needed."""
    ENDED = "ended"
    """Not confirmed by the deadline: the campaign ended it after its final warning."""
    GONE = "gone"
    """Ended otherwise while the campaign ran (removed by hand): recorded when it closes."""


class ReviewCampaign(Base):
    """The recurring review of one employer's administrators and users' permissions
    (``app.access.campaigns``): at most one open at a time per employer."""

    __tablename__ = "review_campaign"

    id: Mapped[int] = mapped_column(primary_key=True)
    employer_id: Mapped[int] = mapped_column(ForeignKey("employer.id"), index=True)
    started_dt: Mapped[datetime] = mapped_column(default=utcnow)
    deadline_dt: Mapped[datetime]
    """The last day to confirm or remove; then the signatory is told."""
    ends_dt: Mapped[datetime]
    """When what is still unconfirmed ends (never before the final warning's notice)."""
    reminders_sent: Mapped[int] = mapped_column(default=0)
    escalated_dt: Mapped[datetime | None]
    final_warning_dt: Mapped[datetime | None]
    closed_dt: Mapped[datetime | None]
    ended_count: Mapped[int] = mapped_column(default=0)
    """Permissions and roles the campaign ended."""

    employer: Mapped[Employer] = relationship()

    __table_args__ = (
        Index(
            "uq_review_campaign_open",
            "employer_id",
            unique=True,
            postgresql_where=text("closed_dt IS NULL"),
            sqlite_where=text("closed_dt IS NULL"),
        ),
    )


class ReviewItem(Base):
    """One thing a campaign asks about: a service permission or an administrator's role,
    as they were when it started."""

    __tablename__ = "review_item"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("review_campaign.id"))
    kind: Mapped[ReviewItemKind] = mapped_column(str_enum(ReviewItemKind, "review_item_kind"))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"), index=True)
    service_permission_id: Mapped[int | None] = mapped_column(ForeignKey("service_permission.id"))
    role_grant_id: Mapped[int | None] = mapped_column(ForeignKey("role_grant.id"))
    employer_code_id: Mapped[int | None] = mapped_column(ForeignKey("employer_code.id"))
    """A service permission's code (who may confirm it)."""
    decision: Mapped[ReviewDecision | None] = mapped_column(
        str_enum(ReviewDecision, "review_decision")
    )
    decided_dt: Mapped[datetime | None]
    decided_by_person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))

    __table_args__ = (
        CheckConstraint(
            "(kind = 'service_permission') = (service_permission_id IS NOT NULL)"
            " AND (kind = 'administrator') = (role_grant_id IS NOT NULL)",
            name="subject_of_kind",
        ),
        CheckConstraint("(decision IS NULL) = (decided_dt IS NULL)", name="decided_when"),
        Index("ix_review_item_campaign_decision", "campaign_id", "decision"),
        Index("uq_review_item_permission", "campaign_id", "service_permission_id", unique=True),
        Index("uq_review_item_grant", "campaign_id", "role_grant_id", unique=True),
    )


class RequestOutcome(enum.StrEnum):
    GRANTED = "granted"
    DECLINED = "declined"


class PermissionRequest(Base):
    """A user's request ("Be om behörighet") for a self-service at one employer code."""

    __tablename__ = "permission_request"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"), index=True)
    employer_id: Mapped[int] = mapped_column(ForeignKey("employer.id"), index=True)
    employer_code_id: Mapped[int] = mapped_column(ForeignKey("employer_code.id"))
    service: Mapped[SelfService] = mapped_column(str_enum(SelfService, "self_service"))
    message: Mapped[str] = mapped_column(String(500), default="")
    created_dt: Mapped[datetime] = mapped_column(default=utcnow)
    decided_dt: Mapped[datetime | None]
    decided_by_person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    outcome: Mapped[RequestOutcome | None] = mapped_column(
        str_enum(RequestOutcome, "request_outcome")
    )

    person: Mapped[Person] = relationship(foreign_keys=[person_id])
    employer_code: Mapped[EmployerCode] = relationship()

    __table_args__ = (
        CheckConstraint("(decided_dt IS NULL) = (outcome IS NULL)", name="decided_with_outcome"),
        Index(
            "uq_permission_request_pending",
            "person_id",
            "employer_code_id",
            "service",
            unique=True,
            postgresql_where=text("decided_dt IS NULL"),
            sqlite_where=text("decided_dt IS NULL"),
        ),
    )


class ChangeKind(enum.StrEnum):
    SERVICE_PERMISSION = "service_permission"
    ROLE = "role"


class ChangeAction(enum.StrEnum):
    GRANTED = "granted"
    CHANGED = "changed"
    """A role's codes changed (the entry holds the new ones)."""
    REVOKED = "revoked"


class PermissionChange(Base):
    """The change log of the permission store, in commit order: one row per service
    permission granted or revoked and per role granted, changed or ended, written in the
    same transaction as the change (``app.access.changelog``). Other services follow it
    through the API's change feed."""

    __tablename__ = "permission_change"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True
    )
    """Assigned in commit order (``app.access.changelog.record_change``)."""
    kind: Mapped[ChangeKind] = mapped_column(str_enum(ChangeKind, "change_kind"))
    action: Mapped[ChangeAction] = mapped_column(str_enum(ChangeAction, "change_action"))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    employer_id: Mapped[int] = mapped_column(ForeignKey("employer.id"))
    employer_code_id: Mapped[int | None] = mapped_column(ForeignKey("employer_code.id"))
    """The code of a service permission."""
    service: Mapped[SelfService | None] = mapped_column(str_enum(SelfService, "self_service"))
    role: Mapped[Role | None] = mapped_column(str_enum(Role, "role"))
    codes: Mapped[list[str] | None] = mapped_column(JSON)
    """A role's codes after the change; None: all the employer's codes."""
    created_dt: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        CheckConstraint(
            "(kind = 'service_permission') = (employer_code_id IS NOT NULL AND service IS NOT NULL)"
            " AND (kind = 'role') = (role IS NOT NULL)",
            name="fields_of_kind",
        ),
        # The person's last change, asked on each of their requests (their sessions begun
        # before it have ended: ``app.access.changelog.last_change_dt``).
        Index("ix_permission_change_person_created", "person_id", "created_dt"),
    )


class ReviewReason(enum.StrEnum):
    SIGNATORY_LEFT = "signatory_left"
    """The signatory who signed the orderer's registration is no longer a signatory of the
    employer (an imported extract of the company register: ``app.registers.changes``)."""


class RoleReviewFlag(Base):
    """An orderer's role marked for review (not revoked): the employer sees it on its
    pages, and a caseworker reviews it in ``errand_id`` (kind ``signatory_change``); the
    caseworker's approval resolves it."""

    __tablename__ = "role_review_flag"

    id: Mapped[int] = mapped_column(primary_key=True)
    role_grant_id: Mapped[int] = mapped_column(ForeignKey("role_grant.id"), index=True)
    reason: Mapped[ReviewReason] = mapped_column(str_enum(ReviewReason, "review_reason"))
    signatory_personnummer: Mapped[str] = mapped_column(String(12))
    """The signatory whose change raised the flag (who signed the registration)."""
    signatory_name: Mapped[str] = mapped_column(String(200))
    errand_id: Mapped[int] = mapped_column(ForeignKey("errand.id"), index=True)
    """The caseworker's errand that reviews the role."""
    created_dt: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_dt: Mapped[datetime | None]
    resolved_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_member.id"))

    grant: Mapped[RoleGrant] = relationship()

    __table_args__ = (
        CheckConstraint(
            "(resolved_dt IS NULL) = (resolved_by_staff_id IS NULL)", name="resolved_by_staff"
        ),
        # One open flag per role and reason: a second import changes nothing.
        Index(
            "uq_role_review_flag_open",
            "role_grant_id",
            "reason",
            unique=True,
            postgresql_where=text("resolved_dt IS NULL"),
            sqlite_where=text("resolved_dt IS NULL"),
        ),
    )
