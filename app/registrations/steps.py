"""The steps of both forms: URL segment, form class, how to prefill it and how to save it.

One table per form family drives one set of views (``views.py``), so both forms
behave alike: each step saves the draft, the progress list shows what is done,
and the review page opens when every step is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy.orm import Session
from wtforms.fields.choices import SelectChoice

from app.core.agents import Agent
from app.labels import code_choice_label
from app.registrations import service
from app.registrations.data import (
    FormProgress,
    FormStep,
    RegistrationDraft,
    RemovalDraft,
    RemovalReason,
)
from app.registrations.models import Errand, ErrandKind
from forms.common import EmployerForm, SignatoryForm
from forms.registration import CodesForm, PersonForm
from forms.removal import OrdererToRemoveForm, ReplacementForm, orderer_to_remove

Saver = Callable[[Session, Agent, Errand, Any], None]


@dataclass(frozen=True)
class Step:
    name: FormStep
    """The step in the draft (``app.registrations.data``)."""
    segment: str
    """The step's part of the URL (Swedish, like the rest of the URLs)."""
    title: Any
    form: type[FlaskForm]
    save: Saver
    prefill: Callable[[FormProgress], dict[str, Any]]
    """The form's fields from the draft: the saved part's JSON has the fields' names."""


def _save_employer(db: Session, agent: Agent, sub: Errand, form: Any) -> None:
    service.save_employer(db, agent, sub, form.orgnr.data)


def _prefill_employer(draft: FormProgress) -> dict[str, Any]:
    return {"orgnr": draft.employer.orgnr} if draft.employer else {}


def _save_codes(db: Session, agent: Agent, sub: Errand, form: Any) -> None:
    service.save_codes(db, agent, sub, form.scope.data == "all", list(form.codes.data or []))


def _prefill_codes(draft: FormProgress) -> dict[str, Any]:
    if not isinstance(draft, RegistrationDraft) or draft.employer_codes is None:
        return {}
    return {"scope": "all" if draft.all_codes else "chosen", "codes": list(draft.employer_codes)}


def _save_person(db: Session, agent: Agent, sub: Errand, form: Any) -> None:
    service.save_person(db, agent, sub, form.person_details())


def _prefill_person(draft: FormProgress) -> dict[str, Any]:
    person = draft.person if isinstance(draft, RegistrationDraft) else None
    return person.to_json() if person else {}


def _save_signatory(db: Session, agent: Agent, sub: Errand, form: Any) -> None:
    s = form.signatory_details()
    co = form.co_signatory_details()
    service.save_signatory(db, agent, sub, s.name, s.personnummer, s.title, s.email, co)


def _prefill_signatory(draft: FormProgress) -> dict[str, Any]:
    if draft.signatory:
        co = draft.co_signatory.to_json() if draft.co_signatory else {}
        return {**draft.signatory.to_json(), **co}
    orderer = draft.orderer if isinstance(draft, RemovalDraft) else None
    replaces = isinstance(draft, RemovalDraft) and draft.replacement is not None
    if orderer and orderer.reason is RemovalReason.SELF and not replaces:
        # Removing oneself: the orderer signs (a new orderer needs the signatory's signature).
        return {"signatory_name": orderer.full_name, "signatory_personnummer": orderer.personnummer}
    return {}


def _save_orderer(db: Session, agent: Agent, sub: Errand, form: Any) -> None:
    if form.reason.data == RemovalReason.SELF:
        # "Jag tar bort mig själv": the person is the one logged in with e-ID.
        me = service.login_person(db, agent)
        form.personnummer.data = me.personnummer
        form.given_name.data, form.family_name.data = me.given_name, me.family_name
    orderer = orderer_to_remove(form)
    service.save_orderer_to_remove(
        db, agent, sub, orderer.reason, orderer.personnummer, orderer.given_name,
        orderer.family_name,
    )  # fmt: skip


def _prefill_orderer(draft: FormProgress) -> dict[str, Any]:
    orderer = draft.orderer if isinstance(draft, RemovalDraft) else None
    return orderer.to_json() if orderer else {}


def _save_replacement(db: Session, agent: Agent, sub: Errand, form: Any) -> None:
    wanted = form.wants_replacement.data == "yes"
    service.save_replacement(db, agent, sub, form.person_details() if wanted else None)


def _prefill_replacement(draft: FormProgress) -> dict[str, Any]:
    if not isinstance(draft, RemovalDraft) or FormStep.REPLACEMENT not in draft.completed_steps:
        return {}
    replacement = draft.replacement
    if replacement is None:
        return {"wants_replacement": "no"}
    return {"wants_replacement": "yes", **replacement.to_json()}


EMPLOYER = Step(
    FormStep.EMPLOYER,
    "arbetsgivare",
    _l("Arbetsgivare"),
    EmployerForm,
    _save_employer,
    _prefill_employer,
)
SIGNATORY = Step(
    FormStep.SIGNATORY,
    "underskrift",
    _l("Underskrift"),
    SignatoryForm,
    _save_signatory,
    _prefill_signatory,
)

STEPS: dict[ErrandKind, tuple[Step, ...]] = {
    ErrandKind.REGISTRATION: (
        EMPLOYER,
        Step(
            FormStep.CODES,
            "arbetsgivarkoder",
            _l("Arbetsgivarkoder"),
            CodesForm,
            _save_codes,
            _prefill_codes,
        ),
        Step(
            FormStep.PERSON,
            "person",
            _l("Behörig beställare"),
            PersonForm,
            _save_person,
            _prefill_person,
        ),
        SIGNATORY,
    ),
    ErrandKind.REMOVAL: (
        EMPLOYER,
        Step(
            FormStep.ORDERER,
            "bestallare",
            _l("Vem tas bort"),
            OrdererToRemoveForm,
            _save_orderer,
            _prefill_orderer,
        ),
        Step(
            FormStep.REPLACEMENT,
            "ersattare",
            _l("Ny behörig beställare"),
            ReplacementForm,
            _save_replacement,
            _prefill_replacement,
        ),
        SIGNATORY,
    ),
}
REVIEW_SEGMENT = "granska"


def step_by_segment(kind: ErrandKind, segment: str) -> Step | None:
    return next((s for s in STEPS[kind] if s.segment == segment), None)


def build_form(step: Step, errand: Errand) -> FlaskForm:
    """The step's form with the draft's values, or what was typed there and saved
    unchecked ("Spara och fortsätt senare")."""
    progress = errand.progress
    typed = progress.typed.get(step.name.value, {})
    form = step.form(data={**step.prefill(progress), **typed})
    if isinstance(form, CodesForm) and errand.employer is not None:
        form.codes.choices = [
            SelectChoice(c.code, code_choice_label(c)) for c in errand.employer.codes
        ]
    return form
