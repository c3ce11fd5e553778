"""Hantera behörigheter: the employer chosen, the overview, and the changes orderers and
administrators make; a user's own permissions and requests. Thin: each view asks
``app.access.management`` (which asks ``app.access.authority``) and renders."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from functools import wraps
from typing import Any, TypeVar, cast

from flask import (
    Blueprint,
    abort,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms.fields.choices import SelectChoice

from app.access import inactivity, mandates, service
from app.access import management as m
from app.access.authority import Authority
from app.access.models import Employer, Person, RoleGrant, SelfService
from app.core.agents import AgentKind
from app.core.ids import format_orgnr
from app.db import utcnow
from app.notifications.notices import ACCESS_PATH, SERVICE_NAMES
from app.registers import changes
from app.web import (
    commit,
    confirmation,
    confirmed,
    current_agent,
    db,
    person_required,
    runtime,
    safe_next,
    signed_in,
)
from forms.access import (
    AdministratorForm,
    DecisionForm,
    EmployerChoiceForm,
    ExtendForm,
    NewUserForm,
    PermissionsForm,
    ReasonForm,
    RequestForm,
    ScopeForm,
)

bp = Blueprint("access", __name__, template_folder="templates")

F = TypeVar("F", bound=Callable[..., Any])

REFUSALS = {
    "own_permissions": _l("Du kan inte ändra dina egna behörigheter."),
    "own_role": _l("Du kan inte ändra din egen roll."),
    "closed_code": _l(
        "En nedlagd arbetsgivarkod ger bara behörighet att läsa fakturaspecifikationer."
    ),
    "orderer_not_here": _l(
        "En behörig beställare tas bort med blanketten Ta bort behörig beställare."
    ),
    "scope_beyond_yours": _l("Du kan bara ge behörighet till arbetsgivarkoder som du själv har."),
    "already_administrator": _l("Personen är redan administratör hos arbetsgivaren."),
    "no_code_chosen": _l("Välj minst en arbetsgivarkod."),
    "no_permission_chosen": _l("Välj minst en behörighet."),
    "already_granted": _l("Du har redan den behörigheten."),
    "already_requested": _l("Du har redan bett om den behörigheten."),
    "invalid_personnummer": _l("Ange ett giltigt personnummer eller samordningsnummer."),
    "invalid_name": _l("Namnet innehåller otillåtna tecken."),
    "invalid_email": _l("Ange en giltig e-postadress, till exempel namn@myndighet.se."),
    "invalid_text": _l("Texten innehåller otillåtna tecken."),
    "end_not_in_future": _l("Ange en dag efter i dag."),
    "nothing_time_limited": _l("Personen har inga tidsbegränsade behörigheter att förlänga."),
}


@bp.app_template_global()
def service_label(value: str) -> str:
    return _(SERVICE_NAMES[SelfService(value)])  # the names the emails use too


# ---- the employer context ---------------------------------------------------------------


@dataclass(frozen=True)
class EmployerSwitch:
    """The employers a person acts for, the one chosen, and the form that switches."""

    employers: list[Employer]
    chosen: Employer | None
    form: EmployerChoiceForm


@bp.app_template_global()
def employer_switch() -> EmployerSwitch | None:
    """For the site header: a signed-in person's employers (``None`` for anyone else)."""
    if "employer_switch" in g:
        return cast(EmployerSwitch | None, g.employer_switch)
    agent = current_agent()
    switch = None
    if agent is not None and agent.kind is AgentKind.PERSON and agent.id is not None:
        employers = service.employers_of_person(db(), agent.id)
        if employers:
            chosen_id = session.get("employer_id")
            chosen = next((e for e in employers if e.id == chosen_id), None)
            if chosen is None and len(employers) == 1:
                chosen = employers[0]
            form = EmployerChoiceForm(employer_id=chosen.id if chosen else None)
            form.employer_id.choices = [
                SelectChoice(e.id, f"{e.name} ({format_orgnr(e.orgnr)})") for e in employers
            ]
            switch = EmployerSwitch(employers, chosen, form)
    g.employer_switch = switch
    return switch


def _chosen_employer_id() -> int | None:
    """The employer the signed-in person acts for (the only one, if one); remembered."""
    switch = employer_switch()
    if switch is None or switch.chosen is None:
        return None
    if session.get("employer_id") != switch.chosen.id:  # else the store is written anew
        session["employer_id"] = switch.chosen.id
    return switch.chosen.id


def _authority() -> Authority | None:
    """The signed-in person's authority at the employer chosen."""
    employer_id = _chosen_employer_id()
    return None if employer_id is None else m.authority_at(db(), signed_in().id or 0, employer_id)


def in_context(view: F) -> F:
    """A view at the employer chosen: gets its ``Actor``; NotFound is 404."""

    @wraps(view)
    @person_required
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            authority = _authority()
            if authority is None:
                return redirect(url_for("access.overview"))
            return view(m.Actor(authority, runtime().settings.public_base_url), *args, **kwargs)
        except m.NotFound:
            abort(404)

    return cast(F, wrapped)


def _render(template: str, actor: m.Actor | None, **context: Any) -> str:
    employer = db().get(Employer, actor.authority.employer_id) if actor else None
    return render_template(
        template,
        actor=actor,
        authority=actor.authority if actor else None,
        employer=employer,
        **context,
    )


def _confirm_removal(
    heading: str, warning: str, confirm_label: str, cancel_url: str, form: ReasonForm
) -> str:
    """The confirmation page of a removal, carrying the reason given."""
    reason = form.reason.data or ""
    return confirmation(
        heading,
        warning,
        confirm_label=confirm_label,
        cancel_url=cancel_url,
        details=[(_("Skäl"), reason or _("Inget skäl angivet"))],
        carried={"reason": reason},
    )


def _done(act: Callable[[], object], success: str) -> bool:
    """Run one change and commit it; or flash why it was refused and change nothing."""
    try:
        act()
    except m.Refused as refused:
        db().rollback()
        flash(str(REFUSALS.get(refused.code, refused.code)), "error")
        return False
    commit()
    flash(success, "success")
    return True


@bp.post("/hantera-behorigheter/arbetsgivare")
@person_required
def choose_employer() -> ResponseReturnValue:
    """Switch employer; back to the page the person came from, unless it was one of the
    previous employer's own (a person, a grant), which the new one would not find."""
    switch = employer_switch()
    if switch is None:
        abort(404)
    if request.form.get("employer_id", "") == "":
        flash(_("Välj en arbetsgivare."), "error")
        return redirect(url_for("access.overview"))
    if not switch.form.validate_on_submit():
        abort(404)  # an employer the person has nothing at, or no valid form
    session["employer_id"] = switch.form.employer_id.data
    back = safe_next(request.form.get("next"))
    if back and not back.startswith(ACCESS_PATH):
        return redirect(back)
    return redirect(url_for("access.overview"))


# ---- the overview ------------------------------------------------------------------------


@bp.get("/hantera-behorigheter")
@person_required
def overview() -> ResponseReturnValue:
    employer_id = _chosen_employer_id()
    if employer_id is None:
        return _render("access/choose.html", None, switch=employer_switch())
    try:
        context = m.employer_context(db(), signed_in().id or 0, employer_id)
    except m.NotFound:
        abort(404)
    authority, codes, grants = context.authority, context.codes, context.grants
    actor = m.Actor(authority, runtime().settings.public_base_url)
    contacts = _contacts(grants)
    if not authority.manages_permissions:
        return _render(
            "access/user.html",
            actor,
            codes=codes,
            permissions=m.my_permissions(db(), authority),
            requests=m.my_requests(db(), authority),
            contacts=contacts,
            form=_request_form(authority, codes),
        )
    query = _overview_query()
    page = m.overview(db(), authority, query)
    marks = inactivity.marks_of(db(), authority.employer_id, [row.person for row in page.rows])
    return _render(
        "access/overview.html",
        actor,
        codes=[c for c in codes if authority.covers(c.id)],
        query=query,
        page=page,
        holders=m.role_holders(db(), grants),
        review_flags=changes.open_flags(db(), [g.id for g in grants]),
        my_grants=[g for g in grants if g.person_id == authority.person_id],
        pending=m.pending_request_count(db(), authority),
        own=m.my_permissions(db(), authority),
        contacts=contacts,
        marks=marks,
        services=list(SelfService),
    )


def _contacts(grants: list[RoleGrant]) -> list[service.EmployerContact]:
    """The employer's orderers and administrators (its active grants), each person once."""
    seen: dict[tuple[str, str | None], service.EmployerContact] = {}
    for contact in service.contacts_of(grants):
        seen.setdefault((contact.name, contact.email), contact)
    return list(seen.values())


def _overview_query() -> m.OverviewQuery:
    args = request.args
    service_value = args.get("tjanst", "")
    code = args.get("kod", "")
    page = args.get("sida", "1")
    return m.OverviewQuery(
        search=args.get("sok", "")[:100],
        service=SelfService(service_value) if service_value in set(SelfService) else None,
        code_id=int(code) if code.isdigit() else None,
        inactive_before=(
            inactivity.add_months(utcnow(), -inactivity.INACTIVE_AFTER_MONTHS)
            if args.get("inaktiva")
            else None
        ),
        sort=args.get("sortera", "name") if args.get("sortera") in m.SORTS else "name",
        page=int(page) if page.isdigit() else 1,
    )


# ---- a user's permissions ----------------------------------------------------------------


def _permission_choices(
    authority: Authority, codes: list[Any], current: Iterable[m.PermissionRow] = ()
) -> list[SelectChoice]:
    """A box per service and code; a time-limited one says when it ends."""
    ends = {(p.service, p.code_id): p.ends_on for p in current if p.ends_on}
    return [
        SelectChoice(
            f"{s.value}:{c.id}",
            f"{service_label(s)} – {c.code}"
            + (
                f" ({_('upphör den %(day)s', day=ends[(s, c.id)].isoformat())})"
                if (s, c.id) in ends
                else ""
            ),
        )
        for c in codes
        if authority.covers(c.id)
        for s in SelfService
        if authority.service_allowed(c.id, s)
    ]


def _parse(values: list[str]) -> set[m.Permission]:
    chosen = set()
    for value in values:
        name, _sep, code = value.partition(":")
        if name in set(SelfService) and code.isdigit():
            chosen.add((SelfService(name), int(code)))
    return chosen


@bp.route("/hantera-behorigheter/anvandare/<int:person_id>", methods=["GET", "POST"])
@in_context
def user(actor: m.Actor, person_id: int) -> ResponseReturnValue:
    authority = actor.authority
    person = m.visible_person(db(), authority, person_id)
    codes = m.employer_codes(db(), authority.employer_id)
    current = m.permissions_of(db(), person_id, authority.covered_code_ids)
    form = PermissionsForm(permissions=[f"{p.service.value}:{p.code_id}" for p in current])
    form.permissions.choices = _permission_choices(authority, codes, current)
    if form.validate_on_submit():
        wanted = _parse(form.permissions.data or [])
        had = {(p.service, p.code_id) for p in current}
        if _done(
            lambda: m.change_permissions(
                db(),
                actor,
                person_id,
                grant=wanted - had,
                revoke=had - wanted,
                reason=form.reason.data or "",
                ends_on=form.ends_on.data,
            ),
            _("Behörigheterna är sparade. Personen får ett e-postmeddelande."),
        ):
            return redirect(url_for("access.user", person_id=person_id))
    return _render(
        "access/person.html",
        actor,
        person=person,
        form=form,
        remove_form=ReasonForm(),
        extend_form=_extend_form(min((p.ends_on for p in current if p.ends_on), default=None)),
        time_limited=[p for p in current if p.ends_on],
        codes=[c for c in codes if authority.covers(c.id)],
        is_self=person_id == authority.person_id,
    )


def _extend_form(current_end: date | None) -> ExtendForm | None:
    """The "Förläng" form, proposing ``MANDATE_EXTENSION_DAYS`` after the current end
    (None without one)."""
    if current_end is None:
        return None
    days = runtime().settings.mandate_extension_days
    return ExtendForm(ends_on=mandates.proposed_extension(current_end, days))


@bp.post("/hantera-behorigheter/anvandare/<int:person_id>/forlang")
@in_context
def extend_permissions(actor: m.Actor, person_id: int) -> ResponseReturnValue:
    """The user's time-limited permissions get a new end in one action ("Förläng")."""
    m.visible_person(db(), actor.authority, person_id)
    form = ExtendForm()
    if form.validate_on_submit():
        _done(
            lambda: mandates.extend_permissions(
                db(), actor, person_id, form.ends_on.data, reason=form.reason.data or ""
            ),
            _("Behörigheterna är förlängda. Personen får ett e-postmeddelande."),
        )
    else:
        _flash_errors(form)
    return redirect(url_for("access.user", person_id=person_id))


def _flash_errors(form: ExtendForm) -> None:
    for errors in form.errors.values():
        for error in errors:
            flash(str(error), "error")


@bp.post("/hantera-behorigheter/anvandare/<int:person_id>/ta-bort-alla")
@in_context
def remove_all(actor: m.Actor, person_id: int) -> ResponseReturnValue:
    person = m.visible_person(db(), actor.authority, person_id)
    form = ReasonForm()
    if form.validate_on_submit() and not confirmed():
        return _confirm_removal(
            _("Ta bort alla behörigheter för %(name)s?", name=person.full_name),
            _(
                "Alla personens behörigheter på dina arbetsgivarkoder tas bort. Det går inte "
                "att ångra, och personen får ett e-postmeddelande."
            ),
            _("Ja, ta bort alla behörigheter"),
            url_for("access.user", person_id=person_id),
            form,
        )
    if form.validate_on_submit():
        _done(
            lambda: m.remove_all_permissions(db(), actor, person_id, form.reason.data or ""),
            _("Alla behörigheter för personen är borttagna. Personen får ett e-postmeddelande."),
        )
    return redirect(url_for("access.user", person_id=person_id))


@bp.route("/hantera-behorigheter/ny-anvandare", methods=["GET", "POST"])
@in_context
def new_user(actor: m.Actor) -> ResponseReturnValue:
    authority = actor.authority
    if not authority.manages_permissions:
        abort(404)
    codes = m.employer_codes(db(), authority.employer_id)
    form = NewUserForm()
    form.permissions.choices = _permission_choices(authority, codes)
    if form.validate_on_submit():
        added: list[Person] = []
        if _done(
            lambda: added.append(
                m.add_user(
                    db(),
                    actor,
                    m.check_person(
                        form.personnummer.data or "",
                        form.given_name.data or "",
                        form.family_name.data or "",
                        form.email.data or "",
                    ),
                    _parse(form.permissions.data or []),
                    form.reason.data or "",
                    ends_on=form.ends_on.data,
                )
            ),
            _("Användaren har fått behörigheterna och får ett e-postmeddelande."),
        ):
            return redirect(url_for("access.user", person_id=added[0].id))
    return _render(
        "access/new_user.html",
        actor,
        form=form,
        codes=[c for c in codes if authority.covers(c.id)],
    )


# ---- administrators ----------------------------------------------------------------------


def _code_choices(authority: Authority) -> list[SelectChoice]:
    return [
        SelectChoice(c.id, f"{c.code} {c.name}")
        for c in m.employer_codes(db(), authority.employer_id)
        if authority.covers(c.id)
    ]


@bp.route("/hantera-behorigheter/administratorer/ny", methods=["GET", "POST"])
@in_context
def new_administrator(actor: m.Actor) -> ResponseReturnValue:
    if not actor.authority.manages_administrators:
        abort(404)
    form = AdministratorForm()
    form.codes.choices = _code_choices(actor.authority)
    if form.validate_on_submit() and _done(
        lambda: m.appoint_administrator(
            db(),
            actor,
            m.check_person(
                form.personnummer.data or "",
                form.given_name.data or "",
                form.family_name.data or "",
                form.email.data or "",
            ),
            all_codes=form.scope.data == "all",
            code_ids=form.codes.data or [],
            reason=form.reason.data or "",
            ends_on=form.ends_on.data,
        ),
        _("Administratören är utsedd. Hen och arbetsgivarens beställare får e-post."),
    ):
        return redirect(url_for("access.overview"))
    return _render("access/administrator.html", actor, form=form, grant=None)


def _administrator(actor: m.Actor, grant_id: int) -> RoleGrant:
    grant = db().get(RoleGrant, grant_id)
    if (
        grant is None
        or grant.employer_id != actor.authority.employer_id
        or grant.valid_to_dt is not None
        or not actor.authority.manages_administrators
    ):
        raise m.NotFound
    return grant


@bp.route("/hantera-behorigheter/administratorer/<int:grant_id>", methods=["GET", "POST"])
@in_context
def administrator(actor: m.Actor, grant_id: int) -> ResponseReturnValue:
    grant = _administrator(actor, grant_id)
    form = ScopeForm(
        scope="all" if grant.is_all_codes else "chosen", codes=[c.id for c in grant.codes]
    )
    form.codes.choices = _code_choices(actor.authority)
    if form.validate_on_submit() and _done(
        lambda: m.change_administrator_scope(
            db(),
            actor,
            grant_id,
            all_codes=form.scope.data == "all",
            code_ids=form.codes.data or [],
            reason=form.reason.data or "",
        ),
        _("Administratörens arbetsgivarkoder är ändrade."),
    ):
        return redirect(url_for("access.overview"))
    return _render(
        "access/administrator.html",
        actor,
        form=form,
        grant=grant,
        remove_form=ReasonForm(),
        extend_form=_extend_form(grant.ends_on),
    )


@bp.post("/hantera-behorigheter/administratorer/<int:grant_id>/forlang")
@in_context
def extend_administrator(actor: m.Actor, grant_id: int) -> ResponseReturnValue:
    """The administrator's role gets a new end in one action ("Förläng")."""
    _administrator(actor, grant_id)
    form = ExtendForm()
    if form.validate_on_submit():
        _done(
            lambda: mandates.extend_administrator(
                db(), actor, grant_id, form.ends_on.data, reason=form.reason.data or ""
            ),
            _("Administratörens roll är förlängd. Hen får ett e-postmeddelande."),
        )
    else:
        _flash_errors(form)
    return redirect(url_for("access.administrator", grant_id=grant_id))


@bp.post("/hantera-behorigheter/administratorer/<int:grant_id>/ta-bort")
@in_context
def remove_administrator(actor: m.Actor, grant_id: int) -> ResponseReturnValue:
    grant = _administrator(actor, grant_id)
    form = ReasonForm()
    if form.validate_on_submit() and not confirmed():
        return _confirm_removal(
            _("Ta bort administratören %(name)s?", name=grant.person.full_name),
            _(
                "Administratören förlorar rollen hos arbetsgivaren. Det går inte att ångra; "
                "hen och arbetsgivarens beställare får e-post."
            ),
            _("Ja, ta bort administratören"),
            url_for("access.administrator", grant_id=grant_id),
            form,
        )
    if form.validate_on_submit() and _done(
        lambda: m.remove_administrator(db(), actor, grant_id, form.reason.data or ""),
        _("Administratören är borttagen. Hen och arbetsgivarens beställare får e-post."),
    ):
        return redirect(url_for("access.overview"))
    return redirect(url_for("access.administrator", grant_id=grant_id))


# ---- requests ----------------------------------------------------------------------------


def _request_form(authority: Authority, codes: list[Any]) -> RequestForm:
    form = RequestForm()
    form.service.choices = [SelectChoice(s.value, service_label(s)) for s in SelfService]
    form.code_id.choices = [
        SelectChoice(
            c.id,
            f"{c.code} {c.name}"
            + (" – " + _("nedlagd") if c.id in authority.closed_code_ids else ""),
        )
        for c in codes
    ]
    return form


@bp.post("/hantera-behorigheter/be-om-behorighet")
@in_context
def ask(actor: m.Actor) -> ResponseReturnValue:
    form = _request_form(actor.authority, m.employer_codes(db(), actor.authority.employer_id))
    if form.validate_on_submit():
        _done(
            lambda: m.request_permission(
                db(),
                actor,
                form.code_id.data,
                SelfService(form.service.data),
                form.message.data or "",
            ),
            _("Din förfrågan är skickad till arbetsgivarens administratörer."),
        )
    else:
        flash(_("Välj tjänst och arbetsgivarkod."), "error")
    return redirect(url_for("access.overview"))


@bp.get("/hantera-behorigheter/forfragningar")
@in_context
def requests(actor: m.Actor) -> ResponseReturnValue:
    if not actor.authority.manages_permissions:
        abort(404)
    return _render(
        "access/requests.html",
        actor,
        requests=m.pending_requests(db(), actor.authority),
        form=DecisionForm(),
    )


@bp.post("/hantera-behorigheter/forfragningar/<int:request_id>")
@in_context
def decide(actor: m.Actor, request_id: int) -> ResponseReturnValue:
    form = DecisionForm()
    if form.validate_on_submit() and form.decision.data in ("grant", "decline"):
        grant = form.decision.data == "grant"
        _done(
            lambda: m.decide_request(
                db(), actor, request_id, grant=grant, reason=form.reason.data or ""
            ),
            _("Behörigheten är given.") if grant else _("Förfrågan är avslagen."),
        )
    return redirect(url_for("access.requests"))
