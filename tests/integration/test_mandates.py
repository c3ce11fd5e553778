"""Mandates that end (issue 18 item 3), on PostgreSQL: a time-limited administrator or
user permission (and an orderer's end date from the registration form, both channels) is
reminded of before its end to the person and whoever granted it, extended in one action,
and ended on the day by the scheduled actor (moved clocks) through the removal's path:
the change log, audit events, emails; once however often it runs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.cli import ScriptInfo
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.access import exports, mandates
from app.access import management as m
from app.access.models import (
    ChangeAction,
    ChangeKind,
    Employer,
    EmployerCode,
    PermissionChange,
    RoleGrant,
    SelfService,
    ServicePermission,
)
from app.audit.models import AuditEvent
from app.cli import main
from app.core.agents import Agent
from app.db import utcnow
from app.notifications.models import EmailMessage
from app.registrations import documents, signing
from app.registrations.data import RegistrationData
from app.registrations.models import Errand
from tests.conftest import ANNA, DAVID, login, person_id
from tests.factories import claim_and_approve, in_review, running_settings
from tests.support import REGISTRATION, csrf_token, pdf_page_texts, post_step
from workflows import actors, pipeline
from workflows.outbox import OutboxMessage
from workflows.runtime import Runtime
from workflows.worker import run_maintenance

BERTIL = "199001019810"  # administrator at Statens testmyndighet
FRIDA = "198703159809"
FRIDA_MAIL = "frida.fors@testmyndighet.example"
ANNA_MAIL = "anna.andersson@testmyndighet.example"
BASE_URL = "https://behorighet.spv.example"
INV, EMP = SelfService.INVOICES, SelfService.EMPLOYMENT_REPORTING
PAGE = "/hantera-behorigheter"


def _actor(session: Session, personnummer: str, orgnr: str = "2021005489") -> m.Actor:
    employer = session.scalars(select(Employer).where(Employer.orgnr == orgnr)).one()
    return m.Actor(m.authority_at(session, person_id(session, personnummer), employer.id), BASE_URL)


def _code(session: Session, code: str) -> int:
    return session.scalars(select(EmployerCode.id).where(EmployerCode.code == code)).one()


def _frida() -> m.NewPerson:
    return m.check_person(FRIDA, "Frida", "Fors", FRIDA_MAIL)


def _emails(session: Session, template: str) -> list[EmailMessage]:
    return list(
        session.scalars(
            select(EmailMessage).where(EmailMessage.template == template).order_by(EmailMessage.id)
        )
    )


def _events(session: Session, action: str) -> list[AuditEvent]:
    return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def _ended_in_log(session: Session, person: int, kind: ChangeKind) -> int:
    return session.scalar(
        select(func.count(PermissionChange.id)).where(
            PermissionChange.person_id == person,
            PermissionChange.kind == kind,
            PermissionChange.action == ChangeAction.REVOKED,
        )
    )


@pytest.fixture
def move_to(monkeypatch: pytest.MonkeyPatch) -> Callable[[date], None]:
    """Moves the scheduled actor's clock (and the check of a new end) to noon on a day."""

    def move(day: date) -> None:
        noon = datetime.combine(day, time(11), tzinfo=UTC)
        monkeypatch.setattr(mandates, "today_in_sweden", lambda: day)
        monkeypatch.setattr(m, "today_in_sweden", lambda: day)
        monkeypatch.setattr(mandates, "utcnow", lambda: noon)

    return move


def _in_days(days: int) -> date:
    return mandates.today_in_sweden() + timedelta(days=days)


def _frida_appointed_until(session: Session, ends: date) -> tuple[m.Actor, RoleGrant]:
    """Anna (orderer) appoints Frida administrator over all codes until ``ends``."""
    anna = _actor(session, ANNA)
    return anna, m.appoint_administrator(session, anna, _frida(), all_codes=True, ends_on=ends)


def test_an_administrator_until_a_day_is_reminded_then_ended_on_the_day_once(
    session: Session, move_to: Callable[[date], None]
) -> None:
    anna, grant = _frida_appointed_until(session, ends := _in_days(30))
    frida = grant.person_id
    [granted] = [e for e in _emails(session, "role_granted") if e.to_address == FRIDA_MAIL]
    assert "tidsbegränsad och upphör den" in granted.text_body
    session.commit()

    move_to(ends - timedelta(days=15))
    actors.end_mandates()  # before the reminder's day: nothing
    assert _emails(session, "mandate_ending") == []

    move_to(ends - timedelta(days=14))
    actors.end_mandates()
    actors.end_mandates()  # twice: reminded once
    reminders = _emails(session, "mandate_ending")
    assert sorted(e.to_address for e in reminders) == sorted([FRIDA_MAIL, ANNA_MAIL])
    to_anna = next(e for e in reminders if e.to_address != FRIDA_MAIL)
    assert f"{PAGE}/administratorer/{grant.id}" in to_anna.text_body  # where she extends it
    assert len(_events(session, "role_grant.end_reminded")) == 1

    move_to(ends - timedelta(days=1))
    actors.end_mandates()
    session.expire_all()
    assert session.get_one(RoleGrant, grant.id).valid_to_dt is None

    move_to(ends)
    actors.end_mandates()
    actors.end_mandates()  # twice: ended once
    session.expire_all()
    assert session.get_one(RoleGrant, grant.id).valid_to_dt is not None
    assert _ended_in_log(session, frida, ChangeKind.ROLE) == 1  # sessions and the API see it
    [event] = _events(session, "role_grant.ended")
    assert event.actor == "system:end_mandates" and event.data["reason"] == "ends_on"
    ended = _emails(session, "role_ended")
    assert FRIDA_MAIL in {e.to_address for e in ended}
    assert ANNA_MAIL in {e.to_address for e in ended}  # Anna, who appointed
    assert all("tidsbegränsad och upphörde" in e.text_body for e in ended)
    with pytest.raises(m.NotFound):
        m.authority_at(session, frida, anna.authority.employer_id)


def test_a_granter_whose_own_role_has_ended_is_told_nothing_more(
    session: Session, move_to: Callable[[date], None]
) -> None:
    anna, grant = _frida_appointed_until(session, ends := _in_days(30))
    anna_grant = session.scalars(
        select(RoleGrant).where(
            RoleGrant.person_id == anna.authority.person_id,
            RoleGrant.employer_id == grant.employer_id,
            RoleGrant.valid_to_dt.is_(None),
        )
    ).one()
    anna_grant.valid_to_dt = utcnow()  # Anna has left the employer
    session.commit()

    move_to(ends - timedelta(days=14))
    actors.end_mandates()
    assert [e.to_address for e in _emails(session, "mandate_ending")] == [FRIDA_MAIL]
    move_to(ends)
    actors.end_mandates()
    assert ANNA_MAIL not in {e.to_address for e in _emails(session, "role_ended")}
    assert ANNA_MAIL not in {e.to_address for e in _emails(session, "mandate_ended")}


def test_a_users_time_limited_permissions_are_extended_in_one_action_then_end(
    session: Session, move_to: Callable[[date], None]
) -> None:
    today = mandates.today_in_sweden()
    ends = today + timedelta(days=10)
    bertil = _actor(session, BERTIL)
    a1001 = _code(session, "A1001")
    frida = m.add_user(session, bertil, _frida(), [(INV, a1001), (EMP, a1001)], ends_on=ends)
    rows = m.permissions_of(session, frida.id, [a1001])
    assert {r.ends_on for r in rows} == {ends}
    session.commit()

    move_to(today)
    actors.end_mandates()
    reminders = _emails(session, "mandate_ending")
    assert len(reminders) == 2  # Frida, and Bertil who granted them: both in one each
    to_bertil = next(e for e in reminders if e.to_address != FRIDA_MAIL)
    assert "Fakturor" in to_bertil.text_body and "Anmäla anställning" in to_bertil.text_body
    assert f"{PAGE}/anvandare/{frida.id}" in to_bertil.text_body

    later = ends + timedelta(days=30)
    extended = mandates.extend_permissions(session, bertil, frida.id, later, reason="Förlängt")
    assert {p.ends_on for p in extended} == {later}
    assert len(_events(session, "service_permission.end_changed")) == 2
    [told] = _emails(session, "mandate_extended")
    assert told.to_address == FRIDA_MAIL and "Bertil Berg" in told.text_body
    session.commit()

    move_to(ends)
    actors.end_mandates()  # the old day: nothing ends
    assert len(m.permissions_of(session, frida.id, [a1001])) == 2

    move_to(later - timedelta(days=14))
    actors.end_mandates()
    assert len(_emails(session, "mandate_ending")) == 4  # reminded anew of the new end

    move_to(later)
    actors.end_mandates()
    actors.end_mandates()
    session.expire_all()
    assert m.permissions_of(session, frida.id, [a1001]) == []
    assert _ended_in_log(session, frida.id, ChangeKind.SERVICE_PERMISSION) == 2
    assert len(_events(session, "service_permission.ended")) == 2
    ended = _emails(session, "mandate_ended")
    assert len(ended) == 2 and FRIDA_MAIL in {e.to_address for e in ended}
    # The employer's history (CSV) says what happened, and why, in words.
    history = exports.history_csv(session, bertil.authority.employer_id, lang="sv")
    assert "Behörighetens slutdag ändrad" in history
    assert "Tidsbegränsad: slutdagen kom" in history


def test_an_end_is_a_day_after_today_and_only_the_granting_side_extends(session: Session) -> None:
    today = mandates.today_in_sweden()
    anna, bertil = _actor(session, ANNA), _actor(session, BERTIL)
    a1001 = _code(session, "A1001")
    with pytest.raises(m.Refused) as refused:
        m.appoint_administrator(session, anna, _frida(), all_codes=True, ends_on=today)
    assert refused.value.code == "end_not_in_future"
    with pytest.raises(m.Refused):
        m.add_user(session, bertil, _frida(), [(INV, a1001)], ends_on=today)
    frida = m.add_user(session, bertil, _frida(), [(INV, a1001)])
    with pytest.raises(m.Refused) as refused:  # until further notice: nothing to extend
        mandates.extend_permissions(session, bertil, frida.id, today + timedelta(days=5))
    assert refused.value.code == "nothing_time_limited"
    grant = session.scalars(
        select(RoleGrant).where(
            RoleGrant.person_id == person_id(session, BERTIL), RoleGrant.valid_to_dt.is_(None)
        )
    ).one()
    with pytest.raises(m.Refused):
        mandates.extend_administrator(session, anna, grant.id, today - timedelta(days=1))
    mandates.extend_administrator(session, anna, grant.id, today + timedelta(days=90))
    assert grant.ends_on == today + timedelta(days=90)
    mandates.extend_administrator(session, anna, grant.id, None)  # until further notice
    assert grant.ends_on is None
    david = _actor(session, DAVID, "2021004920")  # another employer's orderer
    with pytest.raises(m.NotFound):
        mandates.extend_administrator(session, david, grant.id, today + timedelta(days=9))
    with pytest.raises(m.NotFound):
        mandates.extend_permissions(session, david, frida.id, today + timedelta(days=9))
    assert (
        session.scalar(
            select(func.count(ServicePermission.id)).where(ServicePermission.ends_on.is_not(None))
        )
        == 0
    )


def test_the_orderers_end_date_is_signed_shown_and_applied(session: Session) -> None:
    ends = mandates.today_in_sweden() + timedelta(days=200)
    errand = in_review(session, ends_on=ends.isoformat())
    assert errand.data.person.end_date == ends
    assert f"Rollen upphör den: {ends.isoformat()}" in signing.visible_text(errand)
    pages = pdf_page_texts(documents.signable_form(errand, running_settings()))
    assert any(ends.isoformat() in page and "Rollen upphör den" in page for page in pages)
    assert claim_and_approve(session, errand)
    assert pipeline.apply(session, errand.id, Agent.system("test"), base_url=BASE_URL)
    grant = session.scalars(select(RoleGrant).where(RoleGrant.source_errand_id == errand.id)).one()
    assert grant.ends_on == ends
    # A form without an end stores no key: forms printed before keep their QR digest.
    assert "ends_on" not in RegistrationData.from_json(dict(REGISTRATION)).to_json()


def test_the_pages_set_an_end_and_extend_it(client: FlaskClient, session: Session) -> None:
    today = mandates.today_in_sweden()
    login(client, session, ANNA)
    form = client.get(f"{PAGE}/administratorer/ny").get_data(as_text=True)
    assert 'type="date"' in form
    fields = {
        "csrf_token": csrf_token(form),
        "personnummer": FRIDA,
        "given_name": "Frida",
        "family_name": "Fors",
        "email": FRIDA_MAIL,
        "scope": "all",
    }
    past = client.post(f"{PAGE}/administratorer/ny", data={**fields, "ends_on": today.isoformat()})
    assert past.status_code == 200 and "Ange en dag efter i dag." in past.get_data(as_text=True)
    ends = today + timedelta(days=60)
    done = client.post(f"{PAGE}/administratorer/ny", data={**fields, "ends_on": ends.isoformat()})
    assert done.status_code == 302
    grant = session.scalars(
        select(RoleGrant).where(RoleGrant.person_id == person_id(session, FRIDA))
    ).one()
    assert grant.ends_on == ends
    overview = client.get(PAGE).get_data(as_text=True)
    assert ends.isoformat() in overview
    page = client.get(f"{PAGE}/administratorer/{grant.id}").get_data(as_text=True)
    assert "Förläng" in page and (ends + timedelta(days=365)).isoformat() in page
    extended = client.post(
        f"{PAGE}/administratorer/{grant.id}/forlang",
        data={"csrf_token": csrf_token(page), "ends_on": (ends + timedelta(days=365)).isoformat()},
    )
    assert extended.status_code == 302
    session.expire_all()
    assert session.get_one(RoleGrant, grant.id).ends_on == ends + timedelta(days=365)
    assert _emails(session, "mandate_extended")
    login(client, session, DAVID)  # another employer's orderer: as if there were no such grant
    other = client.get(PAGE).get_data(as_text=True)
    for path in (f"administratorer/{grant.id}/forlang", f"anvandare/{grant.person_id}/forlang"):
        refused = client.post(f"{PAGE}/{path}", data={"csrf_token": csrf_token(other)})
        assert refused.status_code == 404


def test_the_worker_schedules_it_and_the_command_runs_it(
    app: Flask, runtime: Runtime, session: Session, move_to: Callable[[date], None]
) -> None:
    run_maintenance(runtime, check_deadlines=True)
    assert "end_mandates" in session.scalars(select(OutboxMessage.actor_name)).all()
    ends = mandates.today_in_sweden() + timedelta(days=3)
    bertil = _actor(session, BERTIL)
    frida = m.add_user(session, bertil, _frida(), [(INV, _code(session, "A1001"))], ends_on=ends)
    session.commit()
    info = ScriptInfo(create_app=lambda: app)
    with app.app_context():
        reminded = CliRunner().invoke(main, ["mandates", "run"], obj=info)
        move_to(ends)
        ended = CliRunner().invoke(main, ["mandates", "run"], obj=info)
    assert reminded.exit_code == 0 and "sent 1 reminders" in reminded.output, reminded.output
    assert ended.exit_code == 0 and "Ended 1 roles and permissions" in ended.output, ended.output
    session.expire_all()
    assert m.permissions_of(session, frida.id, [_code(session, "A1001")]) == []


def test_a_user_is_given_permissions_until_a_day_and_they_are_extended_on_the_page(
    client: FlaskClient, session: Session
) -> None:
    today = mandates.today_in_sweden()
    ends = today + timedelta(days=20)
    login(client, session, BERTIL)
    form = client.get(f"{PAGE}/ny-anvandare").get_data(as_text=True)
    a1001 = _code(session, "A1001")
    added = client.post(
        f"{PAGE}/ny-anvandare",
        data={
            "csrf_token": csrf_token(form),
            "personnummer": FRIDA,
            "given_name": "Frida",
            "family_name": "Fors",
            "email": FRIDA_MAIL,
            "permissions": [f"invoices:{a1001}"],
            "ends_on": ends.isoformat(),
        },
    )
    assert added.status_code == 302
    frida = person_id(session, FRIDA)
    page = client.get(f"{PAGE}/anvandare/{frida}").get_data(as_text=True)
    assert "Tidsbegränsade behörigheter" in page and f"upphör den {ends.isoformat()}" in page
    wrong = client.post(
        f"{PAGE}/anvandare/{frida}/forlang",
        data={"csrf_token": csrf_token(page), "ends_on": today.isoformat()},
        follow_redirects=True,
    )
    assert "Ange en dag efter i dag." in wrong.get_data(as_text=True)
    extended = client.post(
        f"{PAGE}/anvandare/{frida}/forlang",
        data={"csrf_token": csrf_token(page), "ends_on": ""},  # until further notice
        follow_redirects=True,
    )
    assert "Behörigheterna är förlängda." in extended.get_data(as_text=True)
    assert [p.ends_on for p in m.permissions_of(session, frida, [a1001])] == [None]
    assert _emails(session, "mandate_extended")[0].to_address == FRIDA_MAIL


def test_the_e_form_step_saves_the_orderers_end(client: FlaskClient, session: Session) -> None:
    ends = mandates.today_in_sweden() + timedelta(days=100)
    login(client, session, DAVID)
    base = (
        post_step(client, "/anmalan-behorig-bestallare", {"orgnr": "202100-4920"})
        .headers["Location"]
        .rsplit("/", 1)[0]
    )
    post_step(client, f"{base}/arbetsgivarkoder", {"scope": "all"})
    person = {k: REGISTRATION[k] for k in ("personnummer", "given_name", "family_name", "email")}
    step = post_step(
        client,
        f"{base}/person",
        {**person, "role": "orderer", "title": "HR-chef", "ends_on": ends.isoformat()},
    )
    assert step.status_code == 302
    draft = session.scalars(select(Errand).where(Errand.state == "draft")).one()
    assert draft.progress.subject is not None and draft.progress.subject.ends_on == ends.isoformat()
