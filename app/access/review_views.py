"""Gå igenom behörigheterna: an employer's orderers and administrators review its inactive
users (rule 11), confirm or remove them, and export the permissions and their history;
and the recurring review's campaign (``app.access.campaigns``: "Årlig granskning")."""

from __future__ import annotations

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask import session as browser
from flask.typing import ResponseReturnValue
from flask_babel import get_locale
from flask_babel import gettext as _

from app.access import campaigns, exports, inactivity, management
from app.access.models import ReviewCampaign, RoleGrant
from app.web import carry_out, csv_download, db, person_required, runtime, signed_in

bp = Blueprint("access_review", __name__, template_folder="templates")

REVIEW = "/hantera-behorigheter/granska"
CONTEXT_KEY = "employer_id"
"""Where the session remembers the chosen employer (the employer context), if it does."""


def _scope(employer_id: int) -> inactivity.ReviewScope:
    """The signed-in person's scope at the employer; 404 unless they review there."""
    agent = signed_in()
    assert agent.id is not None
    scope = inactivity.review_scope(db(), agent.id, employer_id)
    if scope is None:
        abort(404)
    return scope


def _chosen_people() -> list[int]:
    one = request.form.get("one", type=int)
    return [one] if one is not None else request.form.getlist("person", type=int)


@bp.get(REVIEW)
@person_required
def choose() -> ResponseReturnValue:
    agent = signed_in()
    assert agent.id is not None
    employers = inactivity.reviewable_employers(db(), agent.id)
    chosen = browser.get(CONTEXT_KEY)
    if len(employers) == 1 or chosen in {e.id for e in employers}:
        target = chosen if chosen in {e.id for e in employers} else employers[0].id
        return redirect(url_for(".review", employer_id=target))
    return render_template("access/review_choose.html", employers=employers)


@bp.get(f"{REVIEW}/<int:employer_id>")
@person_required
def review(employer_id: int) -> ResponseReturnValue:
    scope = _scope(employer_id)
    total = inactivity.count_users(db(), employer_id, code_ids=scope.code_ids, marked_only=True)
    pages = max(1, -(-total // inactivity.PER_PAGE))
    page = min(max(request.args.get("sida", 1, type=int) or 1, 1), pages)
    users = inactivity.users_with_marks(
        db(), employer_id, code_ids=scope.code_ids, marked_only=True, page=page
    )
    return render_template(
        "access/review.html",
        employer=scope.employer,
        users=users,
        total=total,
        page=page,
        pages=pages,
    )


@bp.post(f"{REVIEW}/<int:employer_id>/bekrafta")
@person_required
def confirm(employer_id: int) -> ResponseReturnValue:
    scope = _scope(employer_id)
    people = _chosen_people()
    if not people:
        flash(_("Välj minst en användare."), "error")
        return redirect(url_for(".review", employer_id=employer_id))
    done, count = carry_out(
        lambda: inactivity.confirm_still_needed(
            db(), signed_in(), employer_id, people, code_ids=scope.code_ids
        ),
        {
            inactivity.NotYourOwn: lambda _e: _("Du kan inte bekräfta dina egna behörigheter."),
            inactivity.NotAUser: lambda _e: _("Någon av de valda har inga behörigheter här."),
        },
    )
    if done:
        flash(
            _(
                "Bekräftat att %(count)s användare fortfarande behöver sina behörigheter.",
                count=count,
            ),
            "success",
        )
    return redirect(url_for(".review", employer_id=employer_id))


@bp.post(f"{REVIEW}/<int:employer_id>/ta-bort")
@person_required
def remove(employer_id: int) -> ResponseReturnValue:
    """First a page to check the choice and give a reason; then, confirmed, the removal."""
    scope = _scope(employer_id)
    people = set(_chosen_people())
    users = inactivity.users_with_marks(
        db(), employer_id, code_ids=scope.code_ids, person_ids=people
    )
    if not users or len(users) != len(people):
        flash(_("Välj minst en användare."), "error")
        return redirect(url_for(_back(), employer_id=employer_id))
    reason = _reason(_("Skriv varför behörigheterna tas bort."))
    if reason is None:
        return render_template(
            "access/review_remove.html",
            employer=scope.employer,
            users=users,
            reason=_typed_reason(),
            campaign=request.form.get("campaign") == "1",
        )
    reviewer = signed_in()
    assert reviewer.id is not None
    actor = management.Actor(
        management.authority_at(db(), reviewer.id, employer_id),
        runtime().settings.public_base_url,
    )

    def end_all() -> int:
        for user in users:
            management.remove_all_permissions(db(), actor, user.person_id, reason)
        return len(users)

    done, count = carry_out(
        end_all,
        {management.Refused: lambda _e: _("Du kan inte ta bort dina egna behörigheter.")},
    )
    if done:
        flash(_("Behörigheterna är borttagna för %(count)s användare.", count=count), "success")
    return redirect(url_for(_back(), employer_id=employer_id))


def _typed_reason() -> str:
    return " ".join(request.form.get("reason", "").split())[:200]


def _reason(missing: str) -> str | None:
    """The reason given on the removal's check page, once confirmed there; None: show the
    check page (with ``missing`` flashed when it was confirmed without a reason)."""
    reason = _typed_reason()
    if request.form.get("confirmed") == "1" and reason:
        return reason
    if request.form.get("confirmed") == "1":
        flash(missing, "error")
    return None


def _back() -> str:
    """Back to the campaign when the removal was asked for there, else to the review."""
    return ".campaign" if request.form.get("campaign") == "1" else ".review"


def _csv(body: str, kind: str, orgnr: str) -> Response:
    return csv_download(body, exports.export_filename(kind, orgnr))


@bp.get(f"{REVIEW}/<int:employer_id>/behorigheter.csv")
@person_required
def export_permissions(employer_id: int) -> ResponseReturnValue:
    scope = _scope(employer_id)
    body = exports.permissions_csv(
        db(), employer_id, code_ids=scope.code_ids, lang=str(get_locale())
    )
    return _csv(body, "behorigheter", scope.employer.orgnr)


@bp.get(f"{REVIEW}/<int:employer_id>/historik.csv")
@person_required
def export_history(employer_id: int) -> ResponseReturnValue:
    scope = _scope(employer_id)
    body = exports.history_csv(db(), employer_id, code_ids=scope.code_ids, lang=str(get_locale()))
    return _csv(body, "historik", scope.employer.orgnr)


# ---- the recurring review ("Årlig granskning") ----------------------------------------

CAMPAIGN = f"{REVIEW}/<int:employer_id>/arlig"


def _is_orderer(employer_id: int) -> bool:
    agent = signed_in()
    assert agent.id is not None
    return management.authority_at(db(), agent.id, employer_id).is_orderer


@bp.get(CAMPAIGN)
@person_required
def campaign(employer_id: int) -> ResponseReturnValue:
    scope = _scope(employer_id)
    orderer = _is_orderer(employer_id)
    current = campaigns.open_campaign(db(), employer_id) or campaigns.latest_campaign(
        db(), employer_id
    )
    rows = campaigns.review_rows(db(), current, scope.code_ids, orderer) if current else []
    progress = campaigns.progress_of(db(), [current.id]) if current else {}
    return render_template(
        "access/campaign.html",
        employer=scope.employer,
        campaign=current,
        progress=progress.get(current.id) if current else None,
        administrators=[r for r in rows if r.is_administrator],
        users=[r for r in rows if not r.is_administrator],
        orderer=orderer,
        me=signed_in().id,
    )


@bp.app_template_global()
def open_review(employer_id: int) -> tuple[ReviewCampaign, campaigns.Progress] | None:
    """The employer's open campaign and its progress, for Hantera behörigheter's notice."""
    current = campaigns.open_campaign(db(), employer_id)
    if current is None:
        return None
    return current, campaigns.progress_of(db(), [current.id]).get(current.id, campaigns.Progress())


def _open_campaign(employer_id: int) -> ReviewCampaign:
    current = campaigns.open_campaign(db(), employer_id)
    if current is None:
        flash(_("Granskningen är avslutad."), "error")
        abort(redirect(url_for(".campaign", employer_id=employer_id)))
    return current


@bp.post(f"{CAMPAIGN}/bekrafta")
@person_required
def campaign_confirm(employer_id: int) -> ResponseReturnValue:
    scope = _scope(employer_id)
    current = _open_campaign(employer_id)
    one, one_grant = request.form.get("one", type=int), request.form.get("one_grant", type=int)
    if one is not None or one_grant is not None:
        people = [one] if one is not None else []
        grants = [one_grant] if one_grant is not None else []
    else:
        people = request.form.getlist("person", type=int)
        grants = request.form.getlist("grant", type=int)
    if not people and not grants:
        flash(_("Välj minst en användare."), "error")
        return redirect(url_for(".campaign", employer_id=employer_id))
    done, count = carry_out(
        lambda: campaigns.confirm(
            db(),
            signed_in(),
            current,
            code_ids=scope.code_ids,
            orderer=_is_orderer(employer_id),
            person_ids=people,
            grant_ids=grants,
        ),
        {
            inactivity.NotYourOwn: lambda _e: _("Du kan inte bekräfta dina egna behörigheter."),
            inactivity.NotAUser: lambda _e: _("Någon av de valda har inga behörigheter här."),
            campaigns.NotAReviewer: lambda _e: _(
                "Bara arbetsgivarens behöriga beställare bekräftar administratörer."
            ),
        },
    )
    if done:
        flash(
            _("Bekräftat: %(count)s behörigheter och roller behövs fortfarande.", count=count),
            "success",
        )
    return redirect(url_for(".campaign", employer_id=employer_id))


@bp.post(f"{CAMPAIGN}/administrator/<int:grant_id>/ta-bort")
@person_required
def campaign_remove_administrator(employer_id: int, grant_id: int) -> ResponseReturnValue:
    """An orderer removes an administrator from the campaign's page: first the check with
    a reason, then the removal (``management.remove_administrator``)."""
    scope = _scope(employer_id)
    agent = signed_in()
    assert agent.id is not None
    authority = management.authority_at(db(), agent.id, employer_id)
    grant = db().get(RoleGrant, grant_id)
    if not authority.is_orderer or grant is None or grant.employer_id != employer_id:
        abort(404)
    reason = _reason(_("Skriv varför rollen tas bort."))
    if reason is None:
        return render_template(
            "access/campaign_remove_administrator.html",
            employer=scope.employer,
            grant=grant,
            reason=_typed_reason(),
        )
    actor = management.Actor(authority, runtime().settings.public_base_url)
    done, _result = carry_out(
        lambda: management.remove_administrator(db(), actor, grant_id, reason),
        {
            management.Refused: lambda _e: _("Du kan inte ta bort den administratören."),
            management.NotFound: lambda _e: _("Administratören finns inte längre."),
        },
    )
    if done:
        flash(
            _("Administratören är borttagen. Hen och arbetsgivarens beställare får e-post."),
            "success",
        )
    return redirect(url_for(".campaign", employer_id=employer_id))
