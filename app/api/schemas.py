"""The API's request and response bodies (marshmallow): they validate what comes in and
are the OpenAPI document's schemas (flask-smorest)."""

from __future__ import annotations

import re
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from app.access.authority import Access
from app.access.models import ChangeAction, ChangeKind, CodeStatus, Role, SelfService
from app.api.service import CURSOR_PATTERN, MAX_BATCH, MAX_FEED_PAGE, Reason

PERSONNUMMER = r"^[0-9]{12}$"
EMPLOYER_KEY = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,19}$"
"""An employer code, or an organisation number (a dash allowed)."""
_REASONS = [Reason.GRANTED, Reason.NO_PERMISSION, Reason.CLOSED_CODE, Reason.UNKNOWN_EMPLOYER_CODE]


class Pattern(validate.Regexp):
    """A pattern the whole value matches: ``$`` alone lets a trailing line break through
    (``"198112189876\\n"``), so a value with a line break is refused first."""

    def __call__(self, value: Any) -> Any:
        if isinstance(value, str) and "\n" in value:
            raise ma.ValidationError(self._format_error(value))
        return super().__call__(value)


class Strict(ma.Schema):
    class Meta:
        unknown = ma.RAISE


def _enum(cls: Any, **kwargs: Any) -> fields.Enum:
    return fields.Enum(cls, by_value=True, **kwargs)


class PlainLoad(Strict):
    """A schema with a shortcut for the plainly valid body: :meth:`plain_load` gives what
    ``load`` would, or None to let ``load`` decide (and say what is wrong). The API's hot
    path skips webargs and marshmallow with it; a property test holds it to ``load``."""

    def plain_load(self, data: Any) -> dict[str, Any] | None:
        raise NotImplementedError


class CheckIn(PlainLoad):
    subject = fields.String(
        required=True,
        validate=Pattern(PERSONNUMMER),
        metadata={
            "description": "Personnummer or samordningsnummer, 12 digits",
            "example": "198112189876",
        },
    )
    service = _enum(SelfService, required=True, metadata={"description": "The self-service"})
    access = _enum(Access, required=True, metadata={"description": "Reading, or writing"})
    employer_code = fields.String(
        required=True,
        validate=Pattern(EMPLOYER_KEY),
        metadata={"description": "SPV's employer code", "example": "A1001"},
    )

    def plain_load(self, data: Any) -> dict[str, Any] | None:
        return _plain_check(data)


_CHECK_KEYS = frozenset({"subject", "service", "access", "employer_code"})
_SUBJECT = re.compile(PERSONNUMMER)
_CODE = re.compile(EMPLOYER_KEY)
_SERVICES = {s.value: s for s in SelfService}
_ACCESSES = {a.value: a for a in Access}


def _plain_check(data: Any) -> dict[str, Any] | None:
    if type(data) is not dict or data.keys() != _CHECK_KEYS:
        return None
    subject, service, access, code = (
        data["subject"],
        data["service"],
        data["access"],
        data["employer_code"],
    )
    if not (type(subject) is type(service) is type(access) is type(code) is str):
        return None
    if not (_SUBJECT.fullmatch(subject) and _CODE.fullmatch(code)):
        return None
    if service not in _SERVICES or access not in _ACCESSES:
        return None
    return {
        "subject": subject,
        "service": _SERVICES[service],
        "access": _ACCESSES[access],
        "employer_code": code,
    }


class CheckOut(ma.Schema):
    allowed = fields.Boolean(required=True)
    reason = fields.String(
        required=True,
        validate=validate.OneOf(_REASONS),
        metadata={"description": "Why: " + ", ".join(_REASONS)},
    )
    role = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "The role that allows it (`user`: a service permission)"},
    )


class BatchIn(PlainLoad):
    checks = fields.List(
        fields.Nested(CheckIn), required=True, validate=validate.Length(min=1, max=MAX_BATCH)
    )

    def plain_load(self, data: Any) -> dict[str, Any] | None:
        if type(data) is not dict or data.keys() != {"checks"}:
            return None
        asked = data["checks"]
        if type(asked) is not list or not 1 <= len(asked) <= MAX_BATCH:
            return None
        checks = [_plain_check(check) for check in asked]
        return None if None in checks else {"checks": checks}


class BatchOut(ma.Schema):
    results = fields.List(fields.Nested(CheckOut), required=True)


class PersonPath(ma.Schema):
    personnummer = fields.String(required=True, validate=Pattern(PERSONNUMMER))


class RoleOut(ma.Schema):
    role = _enum(Role, required=True)
    codes = fields.List(
        fields.String(),
        required=True,
        allow_none=True,
        metadata={"description": "The codes the role covers; null: all the employer's codes"},
    )


class CodePermissionOut(ma.Schema):
    employer_code = fields.String(required=True)
    code_status = _enum(CodeStatus, required=True)
    service = _enum(SelfService, required=True)
    access = fields.List(_enum(Access), required=True)


class EmployerPermissionsOut(ma.Schema):
    orgnr = fields.String(required=True)
    name = fields.String(required=True)
    roles = fields.List(fields.Nested(RoleOut), required=True)
    permissions = fields.List(fields.Nested(CodePermissionOut), required=True)


class PersonPermissionsOut(ma.Schema):
    subject = fields.String(required=True)
    employers = fields.List(fields.Nested(EmployerPermissionsOut), required=True)


class EmployerCodeOut(ma.Schema):
    code = fields.String(required=True)
    status = _enum(CodeStatus, required=True)


class EmployerOut(ma.Schema):
    orgnr = fields.String(required=True)
    name = fields.String(required=True)
    codes = fields.List(fields.Nested(EmployerCodeOut), required=True)


class ContactOut(ma.Schema):
    name = fields.String(required=True)
    role = _enum(Role, required=True)
    email = fields.String(required=True, allow_none=True)


class ContactsOut(ma.Schema):
    employer = fields.Nested(EmployerOut, required=True)
    contacts = fields.List(fields.Nested(ContactOut), required=True)


class ChangesQuery(Strict):
    after = fields.String(
        load_default=None,
        validate=Pattern(CURSOR_PATTERN),
        metadata={"description": "The cursor of the last change read (from the start without)"},
    )
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=MAX_FEED_PAGE))


class ChangeOut(ma.Schema):
    cursor = fields.String(required=True)
    kind = _enum(ChangeKind, required=True)
    action = _enum(ChangeAction, required=True)
    subject = fields.String(required=True, metadata={"description": "Personnummer"})
    employer = fields.String(required=True, metadata={"description": "Organisation number"})
    employer_code = fields.String(required=True, allow_none=True)
    service = _enum(SelfService, required=True, allow_none=True)
    role = _enum(Role, required=True, allow_none=True)
    codes = fields.List(
        fields.String(),
        required=True,
        allow_none=True,
        metadata={"description": "A role's codes after the change; null: all"},
    )
    at = fields.DateTime(required=True)


class ChangesOut(ma.Schema):
    changes = fields.List(fields.Nested(ChangeOut), required=True)
    next = fields.String(
        required=True, metadata={"description": "Pass as `after` to read on from here"}
    )


class ProblemOut(ma.Schema):
    """RFC 9457 problem details."""

    type = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String()
    errors = fields.Dict()
