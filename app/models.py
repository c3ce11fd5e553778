"""Every model of the product, imported in one place so that metadata (and Alembic) sees all
its tables (and no other)."""

from app.access.models import (
    Employer,
    EmployerCode,
    InactivityConfirmation,
    PermissionChange,
    Person,
    ReviewCampaign,
    ReviewItem,
    RoleGrant,
    RoleGrantCode,
    ServicePermission,
)
from app.api.models import ApiAccessLog, ApiClient
from app.audit.models import AuditChainHead, AuditEvent
from app.db import Base
from app.eid.models import EidOrder, WebSession
from app.intake.models import PaperForm, ScanBatch, ScanPage
from app.notifications.models import EmailMessage
from app.privacy.models import RegisterExtract, StaffAccessLog
from app.registers.models import SignatoryRegisterEntry
from app.registrations.models import (
    BlankForm,
    CompletionRequest,
    Errand,
    ErrandComment,
    ErrandDocument,
    VerificationCheck,
)
from app.safeguards.models import PaperLock
from app.staff.models import StaffMember
from workflows.outbox import OutboxMessage

__all__ = [
    "ApiAccessLog",
    "ApiClient",
    "AuditChainHead",
    "AuditEvent",
    "Base",
    "BlankForm",
    "CompletionRequest",
    "EidOrder",
    "EmailMessage",
    "Employer",
    "EmployerCode",
    "Errand",
    "ErrandComment",
    "ErrandDocument",
    "InactivityConfirmation",
    "OutboxMessage",
    "PaperForm",
    "PaperLock",
    "PermissionChange",
    "Person",
    "RegisterExtract",
    "ReviewCampaign",
    "ReviewItem",
    "RoleGrant",
    "RoleGrantCode",
    "ScanBatch",
    "ScanPage",
    "ServicePermission",
    "SignatoryRegisterEntry",
    "StaffAccessLog",
    "StaffMember",
    "VerificationCheck",
    "WebSession",
]
