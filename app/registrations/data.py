"""The form data of an errand: one typed schema, stored as flat JSON in ``Errand.form_data``.

A complete form is a :class:`RegistrationData` or a :class:`RemovalData`; a draft being
filled in step by step is a :class:`RegistrationDraft` or a :class:`RemovalDraft` (the steps
done and their values). Both read and write the JSON keys the forms have always stored,
so what was printed before still matches its QR codes' digest, and the parts a step
saves (:class:`EmployerDetails`, :class:`PersonDetails`, :class:`OrdererToRemove`,
:class:`SignatoryDetails`) carry the names of the form fields they come from.

Nothing else reads ``form_data`` by key: use ``Errand.data`` or ``Errand.progress``.
"""

from __future__ import annotations

import enum
from dataclasses import MISSING, dataclass, field, fields, replace
from datetime import date
from typing import Any, ClassVar, Self

from app.access.models import Role

Json = dict[str, Any]


class InvalidFormData(ValueError):
    """Stored form data that lacks a value the schema needs, or has one of the wrong type."""


class IncompleteForm(Exception):
    """The draft still misses a step, so it is no complete form yet."""


class FormStep(enum.StrEnum):
    """The steps of the two forms (each saves one part of the data)."""

    EMPLOYER = "employer"
    CODES = "codes"
    PERSON = "person"
    ORDERER = "orderer"
    REPLACEMENT = "replacement"
    SIGNATORY = "signatory"


class RemovalReason(enum.StrEnum):
    SELF = "self"
    """The orderer removes themself."""
    LEFT = "left"
    """The orderer left the employer, or should no longer have the role."""


def _text(data: Json, key: str, *, required: bool = True) -> str:
    value = data.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise InvalidFormData(f"form data: {key} is missing or not text")
    return value


def _choice(kind: type[enum.StrEnum], key: str, value: str) -> enum.StrEnum:
    try:
        return kind(value)
    except ValueError as exc:
        raise InvalidFormData(f"form data: {key} is not one of {[m.value for m in kind]}") from exc


# ---- the parts each step saves --------------------------------------------------------


@dataclass(frozen=True)
class _Part:
    """A step's part of the form: each attribute stored as text under its name or the key
    ``KEYS`` gives. Attributes with a default may be missing from stored data."""

    KEYS: ClassVar[dict[str, str]] = {}
    CHOICES: ClassVar[dict[str, type[enum.StrEnum]]] = {}
    """The attributes that hold one of an enum's values."""

    def to_json(self) -> Json:
        return {self.KEYS.get(f.name, f.name): str(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_json(cls, data: Json) -> Self:
        values: dict[str, Any] = {}
        for f in fields(cls):
            key = cls.KEYS.get(f.name, f.name)
            text = _text(data, key, required=f.default is MISSING)
            choice = cls.CHOICES.get(f.name)
            values[f.name] = _choice(choice, key, text) if choice else text
        return cls(**values)


@dataclass(frozen=True)
class EmployerDetails(_Part):
    KEYS: ClassVar[dict[str, str]] = {"name": "employer_name"}
    orgnr: str
    """Ten digits, no separator."""
    name: str = ""
    """The employer's name as the form printed it (filled in from SPV's register)."""


@dataclass(frozen=True)
class PersonDetails(_Part):
    """A person registered as (delegated) orderer, or a removal's replacement."""

    CHOICES: ClassVar[dict[str, type[enum.StrEnum]]] = {"role": Role}
    personnummer: str
    """Twelve digits."""
    given_name: str
    family_name: str
    role: Role
    email: str = ""
    title: str = ""
    phone: str = ""
    ends_on: str = ""
    """The day the role ends (ISO ``YYYY-MM-DD``), for a time-limited mandate; empty:
    until further notice."""

    @property
    def full_name(self) -> str:
        return f"{self.given_name} {self.family_name}"

    @property
    def end_date(self) -> date | None:
        try:
            return date.fromisoformat(self.ends_on) if self.ends_on else None
        except ValueError:
            raise InvalidFormData("form data: ends_on is not a date") from None

    def to_json(self) -> Json:
        """Without an empty end: forms printed before the field existed keep their digest."""
        stored = super().to_json()
        if not self.ends_on:
            del stored["ends_on"]
        return stored

    def stripped(self) -> PersonDetails:
        """Without the blanks a person types around their entries."""
        return replace(
            self,
            given_name=self.given_name.strip(),
            family_name=self.family_name.strip(),
            email=self.email.strip(),
            title=self.title.strip(),
            phone=self.phone.strip(),
            ends_on=self.ends_on.strip(),
        )


@dataclass(frozen=True)
class OrdererToRemove(_Part):
    CHOICES: ClassVar[dict[str, type[enum.StrEnum]]] = {"reason": RemovalReason}
    reason: RemovalReason
    personnummer: str
    given_name: str
    family_name: str

    @property
    def full_name(self) -> str:
        return f"{self.given_name} {self.family_name}"


@dataclass(frozen=True)
class SignatoryDetails(_Part):
    """Who signs the form for the employer (or the orderer removing themself)."""

    KEYS: ClassVar[dict[str, str]] = {
        "name": "signatory_name",
        "personnummer": "signatory_personnummer",
        "title": "signatory_title",
        "email": "signatory_email",
    }
    name: str
    personnummer: str
    title: str = ""
    email: str = ""
    """Where an invitation to sign is sent (optional: the form may be signed at once)."""

    def to_json(self) -> Json:
        """Without an empty email: forms printed before the field existed keep their
        digest."""
        stored = super().to_json()
        if not self.email:
            del stored[self.KEYS["email"]]
        return stored


@dataclass(frozen=True)
class CoSignatoryDetails(SignatoryDetails):
    """The second signatory, where the employer signs two jointly (stored only then)."""

    KEYS: ClassVar[dict[str, str]] = {
        name: f"co_{key}" for name, key in SignatoryDetails.KEYS.items()
    }


def _co_signatory_from_json(data: Json) -> CoSignatoryDetails | None:
    return CoSignatoryDetails.from_json(data) if "co_signatory_personnummer" in data else None


def _codes_to_json(codes: tuple[str, ...]) -> Json:
    return {"all_codes": not codes, "employer_codes": list(codes)}


def _codes_from_json(data: Json) -> tuple[str, ...]:
    codes = data.get("employer_codes") or []
    if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
        raise InvalidFormData("form data: employer_codes is not a list of codes")
    return tuple(codes)  # ``all_codes`` is stored too, but it is only "no codes named"


def _replacement_from_json(data: Json) -> PersonDetails | None:
    replacement = data.get("replacement")
    if replacement is not None and not isinstance(replacement, dict):
        raise InvalidFormData("form data: replacement is not a person")
    return PersonDetails.from_json(replacement) if replacement else None


# ---- complete forms -------------------------------------------------------------------


@dataclass(frozen=True)
class RegistrationData:
    """Anmälan – behörig beställare: register a person as (delegated) orderer."""

    employer: EmployerDetails
    person: PersonDetails
    signatory: SignatoryDetails
    employer_codes: tuple[str, ...] = ()
    """The codes the role covers; none means all the employer's codes, also later ones."""
    co_signatory: CoSignatoryDetails | None = None
    """The second signatory, where the employer signs two jointly."""

    @property
    def signatories(self) -> tuple[SignatoryDetails, ...]:
        """Who signs: the signatory, and the second one where two sign jointly."""
        return (self.signatory, self.co_signatory) if self.co_signatory else (self.signatory,)

    @property
    def all_codes(self) -> bool:
        return not self.employer_codes

    @property
    def subject(self) -> PersonDetails:
        """The person the errand is about."""
        return self.person

    def to_json(self) -> Json:
        """The stored form without a draft's progress (what the QR codes' digest covers)."""
        return draft_of(self).values_to_json()

    @staticmethod
    def from_json(data: Json) -> RegistrationData:
        return RegistrationDraft.from_json(data).complete()


@dataclass(frozen=True)
class RemovalData:
    """Ta bort behörig beställare, optionally registering a replacement in the same errand."""

    employer: EmployerDetails
    orderer: OrdererToRemove
    signatory: SignatoryDetails
    replacement: PersonDetails | None = None
    co_signatory: CoSignatoryDetails | None = None
    """The second signatory, where the employer signs two jointly."""

    @property
    def signatories(self) -> tuple[SignatoryDetails, ...]:
        """Who signs: the signatory, and the second one where two sign jointly."""
        return (self.signatory, self.co_signatory) if self.co_signatory else (self.signatory,)

    @property
    def subject(self) -> OrdererToRemove:
        """The person the errand is about."""
        return self.orderer

    @property
    def removes_self(self) -> bool:
        return self.orderer.reason is RemovalReason.SELF

    def to_json(self) -> Json:
        """The stored form without a draft's progress (what the QR codes' digest covers)."""
        return draft_of(self).values_to_json()

    @staticmethod
    def from_json(data: Json) -> RemovalData:
        return RemovalDraft.from_json(data).complete()


FormData = RegistrationData | RemovalData


# ---- drafts: the steps done so far and their values -----------------------------------


def _steps_from_json(data: Json, steps: tuple[FormStep, ...]) -> tuple[FormStep, ...]:
    """The steps done, in the form's order. Data stored without them (made whole outside
    the web form, like the demo seed) counts as having done every step."""
    if "completed_steps" not in data:
        return steps if data else ()
    done = data["completed_steps"]
    if not isinstance(done, list):
        raise InvalidFormData("form data: completed_steps is not a list")
    return tuple(step for step in steps if step.value in done)


@dataclass(frozen=True)
class _Draft:
    """A form being filled in step by step: the steps done, and each one's part (None
    until its step is done)."""

    STEPS: ClassVar[tuple[FormStep, ...]]
    """The form's steps, in order."""
    SUBJECT: ClassVar[tuple[FormStep, type[PersonDetails] | type[OrdererToRemove]]]
    """The step that names the person the errand is about, and its part."""
    completed_steps: tuple[FormStep, ...] = ()
    employer: EmployerDetails | None = None
    signatory: SignatoryDetails | None = None
    co_signatory: CoSignatoryDetails | None = None
    """Saved at the signatory step where the employer signs two jointly."""
    typed: dict[str, Json] = field(default_factory=dict, compare=False)
    """What was typed at a step and saved with "Spara och fortsätt senare" without being
    checked, by step: shown again at that step, checked when the person goes on. Never
    part of the form's data (``values_to_json``)."""

    def done(self, step: FormStep, **values: Any) -> Self:
        """The draft with ``step`` done and its part saved (what was typed there unchecked
        is gone: the step's values are checked now)."""
        steps = set(self.completed_steps) | {step}
        typed = {name: v for name, v in self.typed.items() if name != step.value}
        return replace(
            self,
            completed_steps=tuple(s for s in self.STEPS if s in steps),
            typed=typed,
            **values,
        )

    def with_typed(self, step: FormStep, values: Json) -> Self:
        """The draft keeping what was typed at ``step``, unchecked; the step is not done."""
        return replace(self, typed={**self.typed, step.value: values})

    def next_step(self) -> FormStep | None:
        """The first step not yet done; None when the form is complete."""
        return next((s for s in self.STEPS if s not in self.completed_steps), None)

    @property
    def is_complete(self) -> bool:
        return self.next_step() is None

    def values_to_json(self) -> Json:
        """The values of the steps done, as stored."""
        raise NotImplementedError

    def to_json(self) -> Json:
        stored = {
            **self.values_to_json(),
            "completed_steps": [s.value for s in self.completed_steps],
        }
        if self.typed:
            stored["typed_input"] = self.typed
        return stored

    @classmethod
    def subject_from_json(cls, data: Json) -> PersonDetails | OrdererToRemove | None:
        """The person the stored form is about, reading only that step's part (a list of
        errands shows their names: the whole form is not needed)."""
        step, part = cls.SUBJECT
        return part.from_json(data) if step in _steps_from_json(data, cls.STEPS) else None

    @classmethod
    def _common_from_json(cls, data: Json) -> dict[str, Any]:
        steps = _steps_from_json(data, cls.STEPS)
        typed = data.get("typed_input") or {}
        if not isinstance(typed, dict) or not all(isinstance(v, dict) for v in typed.values()):
            raise InvalidFormData("form data: typed_input is not input by step")
        return {
            "completed_steps": steps,
            "typed": typed,
            "employer": EmployerDetails.from_json(data) if FormStep.EMPLOYER in steps else None,
            "signatory": SignatoryDetails.from_json(data) if FormStep.SIGNATORY in steps else None,
            "co_signatory": (
                _co_signatory_from_json(data) if FormStep.SIGNATORY in steps else None
            ),
        }

    def _common_to_json(self) -> Json:
        return {
            **(self.employer.to_json() if self.employer else {}),
            **(self.signatory.to_json() if self.signatory else {}),
            **(self.co_signatory.to_json() if self.co_signatory else {}),
        }


@dataclass(frozen=True)
class RegistrationDraft(_Draft):
    STEPS: ClassVar[tuple[FormStep, ...]] = (
        FormStep.EMPLOYER,
        FormStep.CODES,
        FormStep.PERSON,
        FormStep.SIGNATORY,
    )
    SUBJECT = (FormStep.PERSON, PersonDetails)
    employer_codes: tuple[str, ...] | None = None
    """None until the codes step is done; then empty for all codes."""
    person: PersonDetails | None = None

    @property
    def all_codes(self) -> bool:
        return self.employer_codes == ()

    @property
    def subject(self) -> PersonDetails | None:
        return self.person

    def complete(self) -> RegistrationData:
        if not (self.is_complete and self.employer and self.person and self.signatory):
            raise IncompleteForm(self.next_step())
        assert self.employer_codes is not None
        return RegistrationData(
            self.employer, self.person, self.signatory, self.employer_codes, self.co_signatory
        )

    def values_to_json(self) -> Json:
        return {
            **self._common_to_json(),
            **(_codes_to_json(self.employer_codes) if self.employer_codes is not None else {}),
            **(self.person.to_json() if self.person else {}),
        }

    @classmethod
    def from_json(cls, data: Json) -> Self:
        common = cls._common_from_json(data)
        steps = common["completed_steps"]
        return cls(
            **common,
            employer_codes=_codes_from_json(data) if FormStep.CODES in steps else None,
            person=PersonDetails.from_json(data) if FormStep.PERSON in steps else None,
        )


@dataclass(frozen=True)
class RemovalDraft(_Draft):
    STEPS: ClassVar[tuple[FormStep, ...]] = (
        FormStep.EMPLOYER,
        FormStep.ORDERER,
        FormStep.REPLACEMENT,
        FormStep.SIGNATORY,
    )
    SUBJECT = (FormStep.ORDERER, OrdererToRemove)
    orderer: OrdererToRemove | None = None
    replacement: PersonDetails | None = None
    """The new orderer, once the replacement step is done (None there means none)."""

    @property
    def subject(self) -> OrdererToRemove | None:
        return self.orderer

    def complete(self) -> RemovalData:
        if not (self.is_complete and self.employer and self.orderer and self.signatory):
            raise IncompleteForm(self.next_step())
        return RemovalData(
            self.employer, self.orderer, self.signatory, self.replacement, self.co_signatory
        )

    def values_to_json(self) -> Json:
        replacement = self.replacement.to_json() if self.replacement else None
        return {
            **self._common_to_json(),
            **(self.orderer.to_json() if self.orderer else {}),
            **(
                {"replacement": replacement} if FormStep.REPLACEMENT in self.completed_steps else {}
            ),
        }

    @classmethod
    def from_json(cls, data: Json) -> Self:
        common = cls._common_from_json(data)
        steps = common["completed_steps"]
        return cls(
            **common,
            orderer=OrdererToRemove.from_json(data) if FormStep.ORDERER in steps else None,
            replacement=_replacement_from_json(data) if FormStep.REPLACEMENT in steps else None,
        )


FormProgress = RegistrationDraft | RemovalDraft


def draft_of(data: FormData) -> FormProgress:
    """A complete form as a draft with every step done (to store it, or to edit it)."""
    if isinstance(data, RegistrationData):
        return RegistrationDraft(
            completed_steps=RegistrationDraft.STEPS,
            employer=data.employer,
            signatory=data.signatory,
            co_signatory=data.co_signatory,
            employer_codes=data.employer_codes,
            person=data.person,
        )
    return RemovalDraft(
        completed_steps=RemovalDraft.STEPS,
        employer=data.employer,
        signatory=data.signatory,
        co_signatory=data.co_signatory,
        orderer=data.orderer,
        replacement=data.replacement,
    )
