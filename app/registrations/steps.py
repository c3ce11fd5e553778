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
from app.registrations.models import Submission, SubmissionKind
from forms.common import EmployerForm, SignatoryForm
from forms.registration import CodesForm, PersonForm
from forms.removal import OrdererToRemoveForm, ReplacementForm

Saver = Callable[[Session, Agent, Submission, Any], None]


@dataclass(frozen=True)
class Step:
    name: str
    """The service's name for the step (``service.REGISTRATION_STEPS``)."""
    segment: str
    """The step's part of the URL (Swedish, like the rest of the URLs)."""
    title: Any
    form: type[FlaskForm]
    save: Saver
    prefill: Callable[[Submission], dict[str, Any]]


def _fields(*names: str) -> Callable[[Submission], dict[str, Any]]:
    return lambda s: {n: s.form_data.get(n) for n in names if s.form_data.get(n) is not None}


def _save_employer(db: Session, agent: Agent, sub: Submission, form: Any) -> None:
    service.save_employer(db, agent, sub, form.orgnr.data)


def _save_codes(db: Session, agent: Agent, sub: Submission, form: Any) -> None:
    service.save_codes(db, agent, sub, form.scope.data == "all", list(form.codes.data or []))


def _prefill_codes(sub: Submission) -> dict[str, Any]:
    if "all_codes" not in sub.form_data:
        return {}
    return {
        "scope": "all" if sub.form_data["all_codes"] else "chosen",
        "codes": sub.form_data.get("employer_codes", []),
    }


def _save_person(db: Session, agent: Agent, sub: Submission, form: Any) -> None:
    service.save_person(db, agent, sub, form.data)


def _save_signatory(db: Session, agent: Agent, sub: Submission, form: Any) -> None:
    service.save_signatory(
        db,
        agent,
        sub,
        form.signatory_name.data,
        form.signatory_personnummer.data,
        form.signatory_title.data,
    )


def _prefill_signatory(sub: Submission) -> dict[str, Any]:
    values = _fields("signatory_name", "signatory_personnummer", "signatory_title")(sub)
    if not values and sub.form_data.get("reason") == "self":
        # Removing oneself: the orderer signs.
        values = {
            "signatory_name": f"{sub.form_data['given_name']} {sub.form_data['family_name']}",
            "signatory_personnummer": sub.form_data["personnummer"],
        }
    return values


def _save_orderer(db: Session, agent: Agent, sub: Submission, form: Any) -> None:
    service.save_orderer_to_remove(
        db,
        agent,
        sub,
        form.reason.data,
        form.personnummer.data,
        form.given_name.data,
        form.family_name.data,
    )


def _save_replacement(db: Session, agent: Agent, sub: Submission, form: Any) -> None:
    service.save_replacement(
        db, agent, sub, form.data if form.wants_replacement.data == "yes" else None
    )


def _prefill_replacement(sub: Submission) -> dict[str, Any]:
    if "replacement" not in sub.form_data:
        return {}
    replacement = sub.form_data["replacement"]
    return (
        {"wants_replacement": "yes", **replacement} if replacement else {"wants_replacement": "no"}
    )


PERSON_FIELDS = _fields(*service.PERSON_FIELDS)
EMPLOYER = Step(
    "employer", "arbetsgivare", _l("Arbetsgivare"), EmployerForm, _save_employer, _fields("orgnr")
)
SIGNATORY = Step(
    "signatory",
    "underskrift",
    _l("Underskrift"),
    SignatoryForm,
    _save_signatory,
    _prefill_signatory,
)

STEPS: dict[SubmissionKind, tuple[Step, ...]] = {
    SubmissionKind.REGISTRATION: (
        EMPLOYER,
        Step(
            "codes",
            "arbetsgivarkoder",
            _l("Arbetsgivarkoder"),
            CodesForm,
            _save_codes,
            _prefill_codes,
        ),
        Step("person", "person", _l("Behörig beställare"), PersonForm, _save_person, PERSON_FIELDS),
        SIGNATORY,
    ),
    SubmissionKind.REMOVAL: (
        EMPLOYER,
        Step(
            "orderer",
            "bestallare",
            _l("Vem tas bort"),
            OrdererToRemoveForm,
            _save_orderer,
            _fields("reason", "personnummer", "given_name", "family_name"),
        ),
        Step(
            "replacement",
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


def step_by_segment(kind: SubmissionKind, segment: str) -> Step | None:
    return next((s for s in STEPS[kind] if s.segment == segment), None)


def build_form(step: Step, submission: Submission) -> FlaskForm:
    form = step.form(data=step.prefill(submission))
    if isinstance(form, CodesForm) and submission.employer is not None:
        form.codes.choices = [
            SelectChoice(c.code, code_choice_label(c)) for c in submission.employer.codes
        ]
    return form
