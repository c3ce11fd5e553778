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
from app.intake.models import PaperForm, ScanBatch, ScanPage
from app.notifications.models import EmailMessage, SinkMessage
from app.registers.models import SignatoryRegisterEntry
from app.registrations.models import (
    CompletionRequest,
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
    "CompletionRequest",
    "EidOrder",
    "EmailMessage",
    "Employer",
    "EmployerCode",
    "OutboxMessage",
    "PaperForm",
    "Person",
    "RoleGrant",
    "RoleGrantCode",
    "ScanBatch",
    "ScanPage",
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
