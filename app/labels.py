"""Swedish (and, through Flask-Babel, English) names for the codes the UI shows."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from app.access.models import Role
from app.registrations.models import Channel, CheckOutcome, SubmissionKind
from workflows.states import SubmissionState as S

STATE_LABELS = {
    S.DRAFT: _l("Utkast"),
    S.AWAITING_SIGNATURE: _l("Väntar på underskrift"),
    S.SIGNED: _l("Underskriven"),
    S.AWAITING_POST: _l("Väntar på post"),
    S.RECEIVED: _l("Mottagen"),
    S.VERIFYING: _l("Kontrolleras"),
    S.IN_REVIEW: _l("Handläggs"),
    S.AWAITING_COMPLETION: _l("Väntar på komplettering"),
    S.APPROVED: _l("Godkänd"),
    S.APPLIED: _l("Genomförd"),
    S.CLOSED: _l("Avslutad"),
    S.REJECTED: _l("Avslagen"),
    S.WITHDRAWN: _l("Återkallad"),
    S.EXPIRED: _l("Utgången"),
    S.FAILED: _l("Tekniskt fel"),
}
KIND_LABELS = {
    SubmissionKind.REGISTRATION: _l("Anmälan – behörig beställare"),
    SubmissionKind.REMOVAL: _l("Ta bort behörig beställare"),
}
CHANNEL_LABELS = {Channel.E_SIGN: _l("E-underskrift"), Channel.PAPER: _l("Papper")}
ROLE_LABELS = {
    Role.ORDERER: _l("Behörig beställare"),
    Role.DELEGATED_ORDERER: _l("Delegerad behörig beställare"),
    Role.ADMINISTRATOR: _l("Administratör"),
}
OUTCOME_LABELS = {
    CheckOutcome.PASSED: _l("Godkänd"),
    CheckOutcome.FLAGGED: _l("Behöver granskas"),
    CheckOutcome.FAILED: _l("Underkänd"),
}
CHECK_LABELS = {
    "id_numbers": _l("Personnummer och organisationsnummer"),
    "employer": _l("Arbetsgivare och arbetsgivarkoder"),
    "signatory": _l("Firmatecknare enligt registret"),
    "conflicts": _l("Konflikter med befintliga behörigheter och ärenden"),
}


def register(jinja_globals: dict[str, object]) -> None:
    jinja_globals.update(
        state_label=STATE_LABELS.__getitem__,
        kind_label=KIND_LABELS.__getitem__,
        channel_label=lambda c: CHANNEL_LABELS[c] if c else "–",
        role_label=lambda r: ROLE_LABELS[Role(r)],
        outcome_label=OUTCOME_LABELS.__getitem__,
        check_label=lambda name: CHECK_LABELS.get(name, name),
    )
