"""Rule 11: inactive users are marked, reviewed ("Gå igenom behörigheterna"), confirmed or
removed, summarised monthly to the administrators; and the employer's own export."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.access.inactivity import (
    Mark,
    add_months,
    count_users,
    marks_of,
    review_scope,
    send_inactivity_summaries,
    users_with_marks,
)
from app.access.management import Actor, Refused, authority_at, remove_all_permissions
from app.access.models import (
    Employer,
    EmployerCode,
    InactivityConfirmation,
    Person,
    Role,
    RoleGrant,
    SelfService,
    ServicePermission,
)
from app.audit.models import AuditEvent
from app.audit.service import record_event, verify_chain
from app.core.agents import Agent, AgentKind
from app.db import utcnow
from app.notifications.models import EmailMessage
from tests.conftest import ANNA, DAVID, login, person_id
from tests.smtp import (  # noqa: F401 (fixtures: app_settings, smtp, smtp_server)
    BASE_URL,
    SmtpRecorder,
    app_settings_fixture,
    plain_text,
    smtp_fixture,
    smtp_server_fixture,
)
from tests.support import csrf_token, wait_for
from workflows.outbox import add_message
from workflows.runtime import Runtime

BERTIL = "199001019810"  # administrator at Statens testmyndighet
CECILIA = "197205119824"  # user there, not seen for 600 days
GRETA = "198703159817"  # user there and at Provverket
CECILIA_EMAIL = "cecilia.carlsson@testmyndighet.example"
BERTIL_EMAIL = "bertil.berg@testmyndighet.example"
REVIEW = "/hantera-behorigheter/granska"

# The app sends to a real SMTP server, as in the notification tests.


def _myndighet(session: Session) -> int:
    return session.scalars(select(Employer.id).where(Employer.orgnr == "2021005489")).one()


def _provverket(session: Session) -> int:
    return session.scalars(select(Employer.id).where(Employer.orgnr == "2021004920")).one()


def _active_permissions(session: Session, personnummer: str) -> int:
    return (
        session.scalar(
            select(func.count(ServicePermission.id)).where(
                ServicePermission.person_id == person_id(session, personnummer),
                ServicePermission.valid_to_dt.is_(None),
            )
        )
        or 0
    )


def _person_agent(session: Session, personnummer: str) -> Agent:
    return Agent(AgentKind.PERSON, person_id(session, personnummer), personnummer)


# --- the last login ---------------------------------------------------------------------


def test_a_bankid_login_records_the_last_login(client: FlaskClient, session: Session) -> None:
    before = utcnow()
    login(client, session, CECILIA)
    session.expire_all()
    cecilia = session.get_one(Person, person_id(session, CECILIA))
    assert cecilia.last_login_dt is not None and cecilia.last_login_dt >= before
    assert users_with_marks(session, _myndighet(session), marked_only=True) == []


# --- the marks --------------------------------------------------------------------------


def test_the_demo_user_unseen_for_600_days_is_marked_red(session: Session) -> None:
    employer_id = _myndighet(session)
    users = users_with_marks(session, employer_id, marked_only=True)
    assert [(u.name, u.mark, u.permissions) for u in users] == [
        ("Cecilia Carlsson", Mark.LONG_INACTIVE, 4)
    ]
    cecilia = session.get_one(Person, person_id(session, CECILIA))
    cecilia.last_login_dt = add_months(utcnow(), -13)
    session.flush()
    assert users_with_marks(session, employer_id, marked_only=True)[0].mark is Mark.INACTIVE
    cecilia.last_login_dt = add_months(utcnow(), -11)
    session.flush()
    assert users_with_marks(session, employer_id, marked_only=True) == []


def test_the_overviews_marks_are_the_reviews_marks(session: Session) -> None:
    """The overview marks its page of users (``marks_of``) as the review does, including a
    confirmation that clears a mark and one at another employer that does not."""
    employer_id = _myndighet(session)
    cecilia = session.get_one(Person, person_id(session, CECILIA))
    greta = session.get_one(Person, person_id(session, GRETA))
    greta.last_login_dt = add_months(utcnow(), -13)
    # Never logged in: counted from when they became a person here.
    cecilia.last_login_dt = None
    cecilia.created_dt = add_months(utcnow(), -20)
    session.add(
        InactivityConfirmation(
            employer_id=_provverket(session),
            person_id=greta.id,
            confirmed_by_person_id=person_id(session, BERTIL),
        )
    )
    session.flush()

    def both() -> dict[int, tuple[Mark, Mark]]:
        users = users_with_marks(session, employer_id)
        marks = marks_of(
            session, employer_id, [session.get_one(Person, u.person_id) for u in users]
        )
        return {u.person_id: (u.mark, marks[u.person_id]) for u in users}

    before = both()
    assert before[cecilia.id] == (Mark.LONG_INACTIVE, Mark.LONG_INACTIVE)
    assert before[greta.id] == (Mark.INACTIVE, Mark.INACTIVE)  # confirmed elsewhere only
    assert all(review == overview for review, overview in before.values())
    session.add(
        InactivityConfirmation(
            employer_id=employer_id,
            person_id=cecilia.id,
            confirmed_by_person_id=person_id(session, BERTIL),
        )
    )
    session.flush()
    assert both()[cecilia.id] == (Mark.NONE, Mark.NONE)
    assert marks_of(session, employer_id, []) == {}


def test_the_overview_shows_the_marks_of_its_users(client: FlaskClient, session: Session) -> None:
    login(client, session, BERTIL)
    page = client.get("/hantera-behorigheter").get_data(as_text=True)
    row = page[page.index("Carlsson, Cecilia") :].split("</tr>", 1)[0]
    assert "Inaktiv länge (18 månader)" in row
    greta = page[page.index("Grön, Greta") :].split("</tr>", 1)[0]
    assert "Inaktiv" not in greta


# --- the review page --------------------------------------------------------------------


def test_the_review_lists_inactive_users_for_the_employers_administrator(
    client: FlaskClient, session: Session
) -> None:
    login(client, session, BERTIL)
    chosen = client.get(REVIEW)
    assert chosen.status_code == 302
    assert chosen.headers["Location"].endswith(f"{REVIEW}/{_myndighet(session)}")
    page = client.get(chosen.headers["Location"]).get_data(as_text=True)
    assert "Gå igenom behörigheterna" in page
    assert "Cecilia Carlsson" in page and "19720511-****" in page  # masked in the list
    assert "19720511-9824" not in page
    assert "Inaktiv länge (18 månader)" in page
    english = client.get(f"{REVIEW}/{_myndighet(session)}?lang=en").get_data(as_text=True)
    assert "Review the permissions" in english and "Inactive for long (18 months)" in english


@pytest.mark.parametrize("who", [CECILIA, DAVID])
def test_only_the_employers_orderers_and_administrators_may_review_or_export(
    client: FlaskClient, session: Session, who: str
) -> None:
    login(client, session, who)
    employer_id = _myndighet(session)
    for path in ("", "/behorigheter.csv", "/historik.csv"):
        assert client.get(f"{REVIEW}/{employer_id}{path}").status_code == 404
    token = csrf_token(client.get("/hantera-behorigheter").get_data(as_text=True))
    cecilia = person_id(session, CECILIA)
    for action in ("bekrafta", "ta-bort"):
        response = client.post(
            f"{REVIEW}/{employer_id}/{action}",
            data={"csrf_token": token, "person": cecilia, "confirmed": "1", "reason": "x"},
        )
        assert response.status_code == 404
    assert client.get(f"{REVIEW}/999999/behorigheter.csv").status_code == 404
    assert _active_permissions(session, CECILIA) == 4


def test_still_needed_clears_the_mark_and_is_recorded(
    client: FlaskClient, session: Session
) -> None:
    login(client, session, BERTIL)
    employer_id = _myndighet(session)
    page = client.get(f"{REVIEW}/{employer_id}").get_data(as_text=True)
    cecilia = person_id(session, CECILIA)
    # Without the CSRF token nothing happens.
    assert client.post(f"{REVIEW}/{employer_id}/bekrafta", data={"one": cecilia}).status_code == 400
    response = client.post(
        f"{REVIEW}/{employer_id}/bekrafta", data={"csrf_token": csrf_token(page), "one": cecilia}
    )
    assert response.status_code == 302
    assert "Cecilia Carlsson" not in client.get(f"{REVIEW}/{employer_id}").get_data(as_text=True)
    confirmation = session.scalars(select(InactivityConfirmation)).one()
    assert (confirmation.person_id, confirmation.confirmed_by_person_id) == (
        cecilia,
        person_id(session, BERTIL),
    )
    event = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "inactivity.confirmed")
    ).one()
    assert event.data == {"employer_id": employer_id, "person_id": cecilia}
    # The mark comes back after twelve months (the last login is still 600 days ago).
    later = add_months(utcnow(), 12) + timedelta(minutes=1)
    assert users_with_marks(session, employer_id, now=later, marked_only=True)[0].name == (
        "Cecilia Carlsson"
    )
    assert _active_permissions(session, CECILIA) == 4


def test_bulk_removal_ends_every_permission_and_emails_the_person_once(
    client: FlaskClient, session: Session
) -> None:
    login(client, session, BERTIL)
    employer_id = _myndighet(session)
    token = csrf_token(client.get(f"{REVIEW}/{employer_id}").get_data(as_text=True))
    cecilia = person_id(session, CECILIA)
    check = client.post(
        f"{REVIEW}/{employer_id}/ta-bort", data={"csrf_token": token, "person": cecilia}
    )
    assert check.status_code == 200 and "Ta bort alla behörigheter" in check.get_data(True)
    assert _active_permissions(session, CECILIA) == 4
    done = client.post(
        f"{REVIEW}/{employer_id}/ta-bort",
        data={"csrf_token": token, "person": cecilia, "confirmed": "1", "reason": "Har slutat"},
    )
    assert done.status_code == 302
    session.expire_all()
    assert _active_permissions(session, CECILIA) == 0
    emails = session.scalars(select(EmailMessage)).all()
    assert [(e.to_address, e.template) for e in emails] == [(CECILIA_EMAIL, "permissions_changed")]
    assert "Har slutat" in emails[0].text_body and "Bertil Berg" in emails[0].text_body
    assert emails[0].text_body.count("\n- ") == 4
    ended = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "service_permission.ended")
    ).all()
    assert len(ended) == 4 and all(e.actor == f"person:{person_id(session, BERTIL)}" for e in ended)
    assert verify_chain(session).is_intact


def test_nobody_removes_their_own_permissions(session: Session) -> None:
    bertil = person_id(session, BERTIL)
    actor = Actor(authority_at(session, bertil, _myndighet(session)), BASE_URL)
    with pytest.raises(Refused):
        remove_all_permissions(session, actor, bertil, "x")


# --- the export -------------------------------------------------------------------------


def _rows(body: bytes) -> list[list[str]]:
    assert body.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs to read UTF-8
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig")), delimiter=";"))


def test_the_export_has_the_permissions_and_their_history(
    client: FlaskClient, session: Session
) -> None:
    login(client, session, ANNA)
    employer_id = _myndighet(session)
    response = client.get(f"{REVIEW}/{employer_id}/behorigheter.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv" and response.mimetype_params["charset"] == "utf-8"
    assert response.headers["Content-Disposition"].startswith(
        'attachment; filename="behorigheter-2021005489-'
    )
    assert response.headers["Cache-Control"] == "no-store"
    rows = _rows(response.data)
    assert rows[0][:4] == ["Personnummer", "Namn", "E-post", "Roll eller tjänst"]
    by_person = {(r[1], r[3], r[4]) for r in rows[1:]}
    assert ("Anna Andersson", "behörig beställare", "alla") in by_person
    assert ("Bertil Berg", "administratör", "alla") in by_person
    assert ("Cecilia Carlsson", "Fakturor och fakturaspecifikationer", "A1003") in by_person
    cecilia_rows = [r for r in rows if r[1] == "Cecilia Carlsson"]
    assert {(r[0], r[7]) for r in cecilia_rows} == {("19720511-9824", "Inaktiv länge (18 månader)")}

    token = csrf_token(client.get(f"{REVIEW}/{employer_id}").get_data(as_text=True))
    client.post(
        f"{REVIEW}/{employer_id}/ta-bort",
        data={
            "csrf_token": token,
            "person": person_id(session, CECILIA),
            "confirmed": "1",
            "reason": "=Har slutat",
        },
    )
    bertil_grant = session.scalars(
        select(RoleGrant).where(RoleGrant.person_id == person_id(session, BERTIL))
    ).one()
    record_event(  # as appointing an administrator records it
        session,
        actor=f"person:{person_id(session, ANNA)}",
        action="role_grant.created",
        object_type="role_grant",
        object_id=bertil_grant.id,
        data={"employer_id": employer_id},
    )
    session.commit()
    history = client.get(f"{REVIEW}/{employer_id}/historik.csv")
    assert history.headers["Cache-Control"] == "no-store"
    events = _rows(history.data)
    assert events[0][:3] == ["Tidpunkt", "Händelse", "Utförd av"]
    assert ["Roll tilldelad", "Anna Andersson (19811218-9876)", "Bertil Berg (19900101-9810)"] in [
        e[1:4] for e in events
    ]
    assert ["administratör", "alla"] in [e[4:6] for e in events]
    removed = [e for e in events if e[1] == "Behörighet borttagen"]
    assert len(removed) == 4
    assert {e[2] for e in removed} == {"Anna Andersson (19811218-9876)"}
    assert {e[3] for e in removed} == {"Cecilia Carlsson (19720511-9824)"}
    assert {e[6] for e in removed} == {"'=Har slutat"}  # never a formula in Excel
    # Provverket's events are not Statens testmyndighet's.
    provverket_grants = session.scalars(
        select(RoleGrant.id).where(RoleGrant.employer_id == _provverket(session))
    ).all()
    assert provverket_grants and "David Dahl" not in history.get_data(as_text=True)
    english = _rows(client.get(f"{REVIEW}/{employer_id}/behorigheter.csv?lang=en").data)
    assert english[0][:2] == ["Personal identity number", "Name"]


# --- the monthly summary ----------------------------------------------------------------


def test_the_monthly_summary_goes_once_a_month_to_the_administrators(session: Session) -> None:
    now = utcnow()
    assert send_inactivity_summaries(session, now, base_url=BASE_URL) == 1
    email = session.scalars(select(EmailMessage)).one()
    assert (email.to_address, email.template) == (BERTIL_EMAIL, "inactivity_summary")
    assert "Cecilia Carlsson" in email.text_body and "minst 18 månader" in email.text_body
    assert f"{BASE_URL}{REVIEW}/{_myndighet(session)}" in email.text_body
    assert "9824" not in email.text_body  # no personnummer in an email
    assert send_inactivity_summaries(session, now, base_url=BASE_URL) == 0
    next_month = add_months(now, 1).replace(day=1)
    assert send_inactivity_summaries(session, next_month, base_url=BASE_URL) == 1
    assert send_inactivity_summaries(session, next_month, base_url=BASE_URL) == 0


def test_without_administrators_the_orderers_get_the_summary(session: Session) -> None:
    bertil = session.scalars(
        select(RoleGrant).where(RoleGrant.person_id == person_id(session, BERTIL))
    ).one()
    bertil.valid_to_dt = utcnow()
    session.flush()
    assert send_inactivity_summaries(session, base_url=BASE_URL) == 1
    email = session.scalars(select(EmailMessage)).one()
    assert email.to_address == "anna.andersson@testmyndighet.example"


def test_confirmed_users_are_not_summarised(session: Session) -> None:
    employer_id = _myndighet(session)
    session.add(
        InactivityConfirmation(
            employer_id=employer_id,
            person_id=person_id(session, CECILIA),
            confirmed_by_person_id=person_id(session, BERTIL),
        )
    )
    session.flush()
    assert send_inactivity_summaries(session, base_url=BASE_URL) == 0
    in_a_year = add_months(utcnow(), 12) + timedelta(days=1)
    greta = session.get_one(Person, person_id(session, GRETA))
    greta.last_login_dt = in_a_year  # the other user here is seen then: Cecilia alone counts
    session.flush()
    assert send_inactivity_summaries(session, in_a_year, base_url=BASE_URL) == 1


def test_the_scheduled_actor_emails_the_summary_through_the_mail_server(
    runtime: Runtime, worker: object, smtp: SmtpRecorder
) -> None:
    for _run in range(2):  # scheduled twice (two workers, say): sent once
        with runtime.unit_of_work() as s:
            add_message(s, "summarise_inactivity")  # as the sweeper schedules it
    wait_for(lambda: len(smtp.received) >= 1, message="the summary at the SMTP server")
    (recipients, message), *rest = smtp.received
    assert recipients == [BERTIL_EMAIL] and rest == []
    assert message["Subject"] == (
        "Användare som inte har loggat in på länge hos Statens testmyndighet"
    )
    assert "Cecilia Carlsson" in plain_text(message)

    def sent() -> bool:
        with runtime.session_factory() as s:
            return s.scalar(select(func.count()).where(EmailMessage.sent_dt.is_not(None))) == 1

    wait_for(sent, message="the summary marked sent")
    with runtime.session_factory() as s:
        assert s.scalar(select(func.count(EmailMessage.id))) == 1


def test_the_review_pages_and_the_query_agrees_with_the_mark(session: Session) -> None:
    employer_id = _myndighet(session)
    code_id = session.scalars(
        select(EmployerCode.id).where(EmployerCode.employer_id == employer_id)
    ).first()
    now = utcnow()
    for n, days in enumerate((300, 367, 500, 560, 800)):
        person = Person(
            personnummer=f"19000101{n:04d}",
            given_name="Test",
            family_name=f"Nummer{n}",
            last_login_dt=now - timedelta(days=days),
        )
        session.add(person)
        session.flush()
        session.add(
            ServicePermission(
                person_id=person.id, employer_code_id=code_id, service=SelfService.INVOICES
            )
        )
    session.flush()
    everyone = users_with_marks(session, employer_id, now=now)
    marked = users_with_marks(session, employer_id, now=now, marked_only=True)
    assert [u.person_id for u in marked] == [
        u.person_id for u in everyone if u.mark is not Mark.NONE
    ]
    assert count_users(session, employer_id, now=now, marked_only=True) == len(marked) == 5
    assert [u.mark for u in marked] == [Mark.LONG_INACTIVE] * 3 + [Mark.INACTIVE] * 2
    pages = [
        users_with_marks(session, employer_id, now=now, marked_only=True, page=p, per_page=2)
        for p in (1, 2, 3)
    ]
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [u for p in pages for u in p] == marked
    assert [u.name for u in marked[:2]] == ["Test Nummer4", "Cecilia Carlsson"]  # longest first


def test_a_reviewer_at_several_employers_chooses_one(client: FlaskClient, session: Session) -> None:
    anna = person_id(session, ANNA)
    session.add(
        RoleGrant(
            person_id=anna,
            employer_id=_provverket(session),
            role=Role.ADMINISTRATOR,
            granted_by_person_id=person_id(session, DAVID),
        )
    )
    session.commit()
    login(client, session, ANNA)
    page = client.get(REVIEW).get_data(as_text=True)
    assert f"{REVIEW}/{_myndighet(session)}" in page and f"{REVIEW}/{_provverket(session)}" in page
    assert client.get(f"{REVIEW}/{_provverket(session)}").status_code == 200


def test_an_administrator_of_some_codes_reviews_and_removes_only_those(
    session: Session,
) -> None:
    employer_id = _myndighet(session)
    a1001 = session.scalars(select(EmployerCode).where(EmployerCode.code == "A1001")).one()
    bertil_grant = session.scalars(
        select(RoleGrant).where(RoleGrant.person_id == person_id(session, BERTIL))
    ).one()
    bertil_grant.is_all_codes = False
    bertil_grant.codes = [a1001]
    session.flush()
    scope = review_scope(session, person_id(session, BERTIL), employer_id)
    assert scope is not None and scope.code_ids == {a1001.id}
    (cecilia,) = users_with_marks(session, employer_id, code_ids=scope.code_ids, marked_only=True)
    assert cecilia.permissions == 2  # of her four, two are at A1001
    actor = Actor(authority_at(session, person_id(session, BERTIL), employer_id), BASE_URL)
    ended = remove_all_permissions(session, actor, cecilia.person_id, "Slutat")
    assert {code_id for _service, code_id in ended} == {a1001.id} and len(ended) == 2
    assert _active_permissions(session, CECILIA) == 2
    assert review_scope(session, person_id(session, CECILIA), employer_id) is None
