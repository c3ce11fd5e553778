"""The recurring review (issue 18 item 4), with moved clocks: once a year each employer's
orderers get a campaign (once, however often the scheduled actor runs); reminders before
the deadline, the signatory told when it passes, a final warning, and what nobody
confirmed ended through the removal's own path (audit, change log, the person emailed);
confirmations and removals from the campaign's page, for the employer's own reviewers
only; SPV's caseworkers see each employer's progress, also as CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.access import campaigns
from app.access.models import (
    Employer,
    InactivityConfirmation,
    ReviewCampaign,
    ReviewDecision,
    ReviewItem,
    RoleGrant,
    ServicePermission,
)
from app.audit.models import AuditEvent
from app.core.agents import Agent, AgentKind
from app.db import utcnow
from app.notifications.models import EmailMessage
from tests.conftest import ANNA, DAVID, EVA, INGRID, login, person_id
from tests.support import csrf_token
from workflows import actors

BERTIL = "199001019810"  # administrator at Statens testmyndighet
CECILIA = "197205119824"  # user there (four permissions)
GRETA = "198703159817"  # user there and at Provverket
YEAR = timedelta(days=366)
MYNDIGHET, PROVVERKET = "2021005489", "2021004920"


def _employer_id(session: Session, orgnr: str) -> int:
    return session.scalars(select(Employer.id).where(Employer.orgnr == orgnr)).one()


def _campaigns(session: Session, orgnr: str) -> list[ReviewCampaign]:
    return list(
        session.scalars(
            select(ReviewCampaign).where(ReviewCampaign.employer_id == _employer_id(session, orgnr))
        )
    )


def _emails(session: Session, template: str) -> list[EmailMessage]:
    return list(
        session.scalars(
            select(EmailMessage).where(EmailMessage.template == template).order_by(EmailMessage.id)
        )
    )


def _addresses(session: Session, template: str) -> set[str]:
    return {e.to_address for e in _emails(session, template)}


def _events(session: Session, action: str) -> list[AuditEvent]:
    return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def _active(session: Session, personnummer: str, orgnr: str) -> int:
    from app.access.models import EmployerCode

    return (
        session.scalar(
            select(func.count(ServicePermission.id))
            .join(EmployerCode, EmployerCode.id == ServicePermission.employer_code_id)
            .where(
                ServicePermission.person_id == person_id(session, personnummer),
                ServicePermission.valid_to_dt.is_(None),
                EmployerCode.employer_id == _employer_id(session, orgnr),
            )
        )
        or 0
    )


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[timedelta], datetime]:
    """Moves the recurring review's clock (the scheduled step's and the confirmations')
    to a time from the real now."""
    start = utcnow()

    def move(by: timedelta) -> datetime:
        moved = start + by
        monkeypatch.setattr(campaigns, "utcnow", lambda: moved)
        return moved

    return move


def _run() -> None:
    actors.run_review_campaigns()


def _started(session: Session, clock: Callable[[timedelta], datetime]) -> datetime:
    started = clock(YEAR)
    _run()
    session.expire_all()
    return started


# ---- the start ------------------------------------------------------------------------


def test_a_campaign_starts_once_a_year_per_employer_however_often_it_runs(
    session: Session, clock: Callable[[timedelta], datetime]
) -> None:
    clock(timedelta(days=300))
    _run()  # the employers were added less than a year ago
    assert session.scalar(select(func.count(ReviewCampaign.id))) == 0

    started = clock(YEAR)
    _run()
    _run()  # scheduled twice: still one each
    session.expire_all()
    [myndighet] = _campaigns(session, MYNDIGHET)
    assert len(_campaigns(session, PROVVERKET)) == 1
    assert _campaigns(session, "2120000142") == []  # no orderer: nobody to ask
    assert myndighet.started_dt == started
    assert myndighet.deadline_dt == started + timedelta(days=30)
    assert myndighet.ends_dt == started + timedelta(days=44)
    items = session.scalars(select(ReviewItem).where(ReviewItem.campaign_id == myndighet.id)).all()
    # Cecilia's four permissions, Greta's one there, and Bertil's role.
    assert sorted(i.kind.value for i in items) == ["administrator"] + ["service_permission"] * 5
    assert len(_events(session, "review_campaign.started")) == 2
    started_to = _addresses(session, "review_started")
    assert started_to == {
        "anna.andersson@testmyndighet.example",
        "david.dahl@provverket.example",
    }
    [to_anna] = [e for e in _emails(session, "review_started") if "anna" in e.to_address]
    assert f"/hantera-behorigheter/granska/{myndighet.employer_id}/arlig" in to_anna.text_body

    # Anna confirms everything: it closes. The next one a year after it started.
    clock(YEAR + timedelta(days=3))
    campaigns.confirm(
        session,
        Agent(AgentKind.PERSON, person_id(session, ANNA), ANNA),
        myndighet,
        code_ids=None,
        orderer=True,
        person_ids=[person_id(session, CECILIA), person_id(session, GRETA)],
        grant_ids=[i.role_grant_id for i in items if i.role_grant_id],
    )
    session.commit()
    for days in (4, 364):
        clock(YEAR + timedelta(days=days))
        _run()
    session.expire_all()
    assert myndighet.closed_dt is not None
    assert len(_campaigns(session, MYNDIGHET)) == 1
    clock(YEAR + timedelta(days=365))
    _run()
    _run()
    session.expire_all()
    assert len(_campaigns(session, MYNDIGHET)) == 2


# ---- the clock: reminders, escalation, final warning, ending ---------------------------


def test_reminders_then_the_signatory_then_a_final_warning_then_the_ending(
    session: Session, clock: Callable[[timedelta], datetime]
) -> None:
    _started(session, clock)
    [campaign] = _campaigns(session, PROVVERKET)
    david, eva, greta = (
        "david.dahl@provverket.example",
        "eva.ek@provverket.example",
        "greta.gron@lonecenter.example",
    )

    clock(YEAR + timedelta(days=15))
    _run()
    assert _addresses(session, "review_reminder") == set()
    clock(YEAR + timedelta(days=16))  # 14 days before the deadline
    _run()
    _run()
    session.expire_all()
    assert [e.to_address for e in _emails(session, "review_reminder")].count(david) == 1
    clock(YEAR + timedelta(days=27))  # 3 days before
    _run()
    session.expire_all()
    assert [e.to_address for e in _emails(session, "review_reminder")].count(david) == 2
    assert _addresses(session, "review_escalation") == set()

    clock(YEAR + timedelta(days=30))  # the deadline: the signatory is told
    _run()
    _run()
    session.expire_all()
    escalation = [e for e in _emails(session, "review_escalation") if "provverket" in e.to_address]
    assert sorted(e.to_address for e in escalation) == [david, eva]
    assert campaign.escalated_dt is not None and campaign.final_warning_dt is None
    assert _active(session, GRETA, PROVVERKET) == 1

    clock(YEAR + timedelta(days=37))  # the final warning, 7 days before the ending
    _run()
    _run()
    session.expire_all()
    assert {david, eva} <= _addresses(session, "review_final_warning")
    [to_greta] = [
        e
        for e in _emails(session, "review_final_warning_person")
        if e.to_address == greta and "Provverket" in e.subject
    ]
    assert "Fakturor och fakturaspecifikationer, B2001" in to_greta.text_body
    assert _active(session, GRETA, PROVVERKET) == 1

    clock(YEAR + timedelta(days=44) - timedelta(minutes=1))
    _run()
    session.expire_all()
    assert _active(session, GRETA, PROVVERKET) == 1 and campaign.closed_dt is None

    clock(YEAR + timedelta(days=44))  # the ending
    _run()
    _run()
    session.expire_all()
    assert _active(session, GRETA, PROVVERKET) == 0
    assert campaign.closed_dt is not None and campaign.ended_count == 1
    # The same path as a removal by hand: an audit event per permission, by the system,
    # and one email to the person, saying why.
    [ended] = [
        e
        for e in _events(session, "service_permission.ended")
        if e.data["person_id"] == person_id(session, GRETA)
        and e.data["employer_id"] == campaign.employer_id
    ]
    assert ended.actor == "system:review_campaign"
    [changed] = [
        e
        for e in _emails(session, "permissions_changed")
        if e.to_address == greta and "Provverket" in e.subject
    ]
    assert "Fakturor och fakturaspecifikationer, B2001" in changed.text_body
    assert "årliga granskningen" in changed.text_body
    assert len(_events(session, "review_campaign.ended")) >= 1
    items = session.scalars(select(ReviewItem).where(ReviewItem.campaign_id == campaign.id)).all()
    assert {i.decision for i in items} == {ReviewDecision.ENDED}


def test_the_ending_waits_a_full_final_warning_after_a_late_one(
    session: Session, clock: Callable[[timedelta], datetime]
) -> None:
    _started(session, clock)
    [campaign] = _campaigns(session, PROVVERKET)
    late = clock(YEAR + timedelta(days=60))  # the worker was down for weeks
    _run()
    session.expire_all()
    assert campaign.escalated_dt == late and campaign.final_warning_dt == late
    assert campaign.ends_dt == late + timedelta(days=7)
    assert _active(session, GRETA, PROVVERKET) == 1 and campaign.closed_dt is None
    clock(YEAR + timedelta(days=67))
    _run()
    session.expire_all()
    assert _active(session, GRETA, PROVVERKET) == 0 and campaign.closed_dt is not None


# ---- the reviewers' page ---------------------------------------------------------------


def _page(client: FlaskClient, employer_id: int) -> str:
    response = client.get(f"/hantera-behorigheter/granska/{employer_id}/arlig")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_confirmed_and_removed_are_kept_and_the_campaign_closes_when_nothing_is_open(
    client: FlaskClient, session: Session, clock: Callable[[timedelta], datetime]
) -> None:
    _started(session, clock)
    employer_id = _employer_id(session, MYNDIGHET)
    [campaign] = _campaigns(session, MYNDIGHET)
    path = f"/hantera-behorigheter/granska/{employer_id}/arlig"

    # Bertil (administrator) confirms Cecilia; he sees no administrators' rows.
    login(client, session, BERTIL)
    page = _page(client, employer_id)
    assert "Cecilia Carlsson" in page and "19720511-****" in page
    assert "19720511-9824" not in page
    assert 'name="one_grant"' not in page
    cecilia = person_id(session, CECILIA)
    bertils_grant = session.scalars(
        select(RoleGrant.id).where(RoleGrant.person_id == person_id(session, BERTIL))
    ).one()
    token = csrf_token(page)
    assert client.post(f"{path}/bekrafta", data={"one": cecilia}).status_code == 400  # no CSRF
    refused = client.post(
        f"{path}/bekrafta", data={"csrf_token": token, "one_grant": bertils_grant}
    )
    assert refused.status_code == 302
    assert (
        client.post(f"{path}/bekrafta", data={"csrf_token": token, "one": cecilia}).status_code
        == 302
    )
    session.expire_all()
    confirmed = session.scalars(
        select(ReviewItem).where(ReviewItem.decision == ReviewDecision.CONFIRMED)
    ).all()
    assert {i.person_id for i in confirmed} == {cecilia} and len(confirmed) == 4
    # The confirmation also clears her inactivity mark, as "Behövs fortfarande" does there.
    assert session.scalars(select(InactivityConfirmation.person_id)).all() == [cecilia]
    [event] = _events(session, "review_campaign.confirmed")
    assert event.actor == f"person:{person_id(session, BERTIL)}" and event.data["items"] == 4

    # Anna (orderer) confirms Bertil and removes Greta's permission there, by the
    # removal's own pages (a reason, then the removal).
    anna_client = client.application.test_client()
    login(anna_client, session, ANNA)
    start = anna_client.get("/hantera-behorigheter").get_data(as_text=True)
    assert "Årlig granskning pågår: 2 av 6 behörigheter och administratörer" in start
    page = _page(anna_client, employer_id)
    assert "Bertil Berg" in page and 'name="one_grant"' in page
    token = csrf_token(page)
    anna_client.post(f"{path}/bekrafta", data={"csrf_token": token, "one_grant": bertils_grant})
    greta = person_id(session, GRETA)
    check = anna_client.post(
        f"/hantera-behorigheter/granska/{employer_id}/ta-bort",
        data={"csrf_token": token, "person": greta, "campaign": "1"},
    )
    assert check.status_code == 200 and 'name="campaign" value="1"' in check.get_data(True)
    done = anna_client.post(
        f"/hantera-behorigheter/granska/{employer_id}/ta-bort",
        data={
            "csrf_token": token,
            "person": greta,
            "campaign": "1",
            "confirmed": "1",
            "reason": "Har slutat",
        },
    )
    assert done.status_code == 302 and done.headers["Location"].endswith(path)
    session.expire_all()
    assert _active(session, GRETA, MYNDIGHET) == 0
    progress = campaigns.progress_of(session, [campaign.id])[campaign.id]
    assert (progress.total, progress.confirmed, progress.removed, progress.open) == (6, 5, 1, 0)

    # Nothing open: the next run closes it, and the ending ends nothing.
    clock(YEAR + timedelta(days=1))
    _run()
    session.expire_all()
    assert campaign.closed_dt is not None and campaign.ended_count == 0
    assert _active(session, CECILIA, MYNDIGHET) == 4
    assert "Granskningen är avslutad" in _page(anna_client, employer_id)


@pytest.mark.parametrize("who", [CECILIA, DAVID])
def test_only_the_employers_own_reviewers_see_or_act_on_its_campaign(
    client: FlaskClient, session: Session, clock: Callable[[timedelta], datetime], who: str
) -> None:
    _started(session, clock)
    employer_id = _employer_id(session, MYNDIGHET)
    login(client, session, who)
    path = f"/hantera-behorigheter/granska/{employer_id}/arlig"
    assert client.get(path).status_code == 404
    token = csrf_token(client.get("/hantera-behorigheter").get_data(as_text=True))
    cecilia = person_id(session, CECILIA)
    assert (
        client.post(f"{path}/bekrafta", data={"csrf_token": token, "one": cecilia}).status_code
        == 404
    )
    grant = session.scalars(
        select(RoleGrant.id).where(RoleGrant.person_id == person_id(session, BERTIL))
    ).one()
    removal = client.post(
        f"{path}/administrator/{grant}/ta-bort",
        data={"csrf_token": token, "confirmed": "1", "reason": "x"},
    )
    assert removal.status_code == 404
    session.expire_all()
    assert (
        session.scalar(select(func.count(ReviewItem.id)).where(ReviewItem.decision.is_not(None)))
        == 0
    )
    assert session.get_one(RoleGrant, grant).valid_to_dt is None


def test_an_orderer_on_chosen_codes_confirms_no_administrator_beyond_them(
    session: Session, clock: Callable[[timedelta], datetime]
) -> None:
    """An orderer whose registration chose some codes may not change or remove Bertil, who
    administers all of them (rule 2): nor may they confirm him in the campaign."""
    from app.access.models import EmployerCode

    _started(session, clock)
    [campaign] = _campaigns(session, MYNDIGHET)
    bertils_grant = session.scalars(
        select(RoleGrant.id).where(RoleGrant.person_id == person_id(session, BERTIL))
    ).one()
    one_code = session.scalars(
        select(EmployerCode.id).where(EmployerCode.employer_id == campaign.employer_id)
    ).first()
    assert one_code is not None
    with pytest.raises(campaigns.NotAReviewer):
        campaigns.confirm(
            session,
            Agent(AgentKind.PERSON, person_id(session, ANNA), ANNA),
            campaign,
            code_ids=frozenset({one_code}),
            orderer=True,
            grant_ids=[bertils_grant],
        )
    item = session.scalars(
        select(ReviewItem).where(ReviewItem.role_grant_id == bertils_grant)
    ).one()
    assert item.decision is None


def test_an_orderer_removes_an_administrator_from_the_campaign(
    client: FlaskClient, session: Session, clock: Callable[[timedelta], datetime]
) -> None:
    _started(session, clock)
    employer_id = _employer_id(session, MYNDIGHET)
    login(client, session, ANNA)
    token = csrf_token(_page(client, employer_id))
    grant = session.scalars(
        select(RoleGrant.id).where(RoleGrant.person_id == person_id(session, BERTIL))
    ).one()
    path = f"/hantera-behorigheter/granska/{employer_id}/arlig/administrator/{grant}/ta-bort"
    check = client.post(path, data={"csrf_token": token})
    assert check.status_code == 200 and "Ta bort administratören Bertil Berg?" in check.get_data(
        True
    )
    done = client.post(path, data={"csrf_token": token, "confirmed": "1", "reason": "Har slutat"})
    assert done.status_code == 302
    session.expire_all()
    assert session.get_one(RoleGrant, grant).valid_to_dt is not None
    [event] = [e for e in _events(session, "role_grant.ended") if e.object_id == str(grant)]
    assert event.data["reason"] == "Har slutat"
    assert "bertil.berg@testmyndighet.example" in _addresses(session, "role_ended")


# ---- SPV's overview -------------------------------------------------------------------


def test_caseworkers_see_each_employers_progress_and_its_csv(
    client: FlaskClient, session: Session, clock: Callable[[timedelta], datetime]
) -> None:
    _started(session, clock)
    clock(YEAR + timedelta(days=31))
    _run()
    login(client, session, INGRID, staff=True)
    page = client.get("/handlaggning/oversikt?lista=granskning").get_data(as_text=True)
    assert "Årlig granskning" in page and "Provverket" in page and "Statens testmyndighet" in page
    assert "Sista dagen passerad" in page
    assert "0 av 6" not in page and "6 av 6" in page
    export = client.get("/handlaggning/oversikt/granskning.csv")
    assert export.status_code == 200
    rows = list(
        csv.reader(io.StringIO(export.get_data(as_text=True).lstrip("\ufeff")), delimiter=";")
    )
    assert rows[0][:3] == ["Organisationsnummer", "Arbetsgivare", "Läge"]
    by_name = {r[1]: r for r in rows[1:]}
    assert by_name["Provverket"][6] == "1" and by_name["Statens testmyndighet"][10] == "6"
    # Not for the employers' own people.
    login(client, session, EVA)
    assert client.get("/handlaggning/oversikt?lista=granskning").status_code in (302, 403, 404)
