"""Joint signatories: where the signatory register says the employer signs two jointly
(``SigningRule.TWO_JOINTLY``), the form names a second, different signatory and needs both
signatures (``docs/rules.md``, joint signatories).

E-signed, each is invited in their own session and signs the same PDF with BankID; the
first signature is kept (``Errand.first_signature_order_id``, ``Action.CO_SIGN``) until
the second completes, and the sealed file carries both (the form's part:
``service.save_signatory``). Posted, the printed form has two
signature fields and the clerk confirms both. A round ends – and the first signature with
it – whenever the links end without the second signature (declined, taken back, printed,
withdrawn, expired: ``service.end_invitations``).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.core.agents import Agent
from app.db import utcnow
from app.eid.models import EidOrder
from app.registers.service import LocalSignatoryRegister, signs_jointly
from app.registrations.data import FormData, SignatoryDetails
from app.registrations.models import Errand, InvitationOutcome
from app.registrations.service import open_invitations
from workflows.state_machine import transition
from workflows.states import Action


def employer_signs_jointly(session: Session, orgnr: str) -> bool:
    return signs_jointly(LocalSignatoryRegister(session), orgnr)


def needs_two(data: FormData) -> bool:
    """The form names two signatories who sign jointly."""
    return data.co_signatory is not None


def signer_of(order: EidOrder) -> str:
    """The personnummer BankID says completed the order."""
    user = (order.completion or {}).get("user") or {}
    return str(user.get("personalNumber") or "")


def first_signature(session: Session, errand: Errand) -> EidOrder | None:
    """The round's first of two joint signatures, if one is in."""
    order_id = errand.first_signature_order_id
    return session.get(EidOrder, order_id) if order_id is not None else None


def awaited(session: Session, errand: Errand) -> tuple[SignatoryDetails, ...]:
    """The signatories whose signature the errand still waits for in this round."""
    first = first_signature(session, errand)
    done = signer_of(first) if first is not None else None
    return tuple(s for s in errand.data.signatories if s.personnummer != done)


def has_signed(session: Session, errand: Errand, personnummer: str | None) -> bool:
    """``personnummer`` gave the round's first joint signature."""
    first = first_signature(session, errand)
    return first is not None and personnummer is not None and signer_of(first) == personnummer


def record_first(session: Session, errand: Errand, order: EidOrder, signer: str) -> None:
    """The first of two joint signatures is in (checked): keep it, end that signatory's
    links and wait for the other's, the invitation's expiry kept."""
    errand.first_signature_order_id = order.id
    transition(
        session,
        errand,
        Action.CO_SIGN,
        Agent.system("bankid"),
        data={"method": "bankid", "order_ref": order.order_ref},
    )
    links = open_invitations(session, errand)
    now = utcnow()
    for link in links:
        if link.signatory_personnummer == signer:
            link.ended_dt, link.outcome = now, InvitationOutcome.SIGNED
    remaining = [link for link in links if link.signatory_personnummer != signer]
    if remaining:
        errand.expires_dt = remaining[0].expires_dt
    session.flush()
