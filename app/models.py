"""Every model, imported in one place so that metadata (and Alembic) sees all tables."""

from app.access.models import (
    Employer,
    EmployerCode,
    Person,
    RoleGrant,
    RoleGrantCode,
    ServicePermission,
)
from app.audit.models import AuditChainHead, AuditEvent
from app.db import Base
from app.eid.models import EidOrder
from app.eid.simulator.models import SimulatorFault, SimulatorOrder
from app.notifications.models import EmailMessage, SinkMessage
from app.registers.models import SignatoryRegisterEntry
from app.registrations.models import (
    Submission,
    SubmissionComment,
    SubmissionDocument,
    VerificationCheck,
)
from app.staff.models import StaffMember
from workflows.outbox import OutboxMessage

__all__ = [
    "AuditChainHead",
    "AuditEvent",
    "Base",
    "EidOrder",
    "EmailMessage",
    "Employer",
    "EmployerCode",
    "OutboxMessage",
    "Person",
    "RoleGrant",
    "RoleGrantCode",
    "ServicePermission",
    "SignatoryRegisterEntry",
    "SimulatorFault",
    "SimulatorOrder",
    "SinkMessage",
    "StaffMember",
    "Submission",
    "SubmissionComment",
    "SubmissionDocument",
    "VerificationCheck",
]
