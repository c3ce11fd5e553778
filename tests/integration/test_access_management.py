"""Hantera behörigheter, the services: scoped to one employer, the rules on the server,
one audited transaction and one email per change (rules 2, 3 and 5)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.access import management as m
from app.access.models import (
    Employer,
    EmployerCode,
    PermissionRequest,
    Role,
    RoleGrant,
    SelfService,
    ServicePermission,
)
from app.access.service import active_grants
from app.audit.models import AuditEvent
from app.notifications.models import EmailMessage
from tests.conftest import ANNA, DAVID, person_id

BERTIL = "199001019810"
CECILIA = "197205119824"
GRETA = "198703159817"  # a user at Statens testmyndighet and at Provverket
BASE_URL = "https://behorighet.spv.example"
INV, EMP, STAT = SelfService.INVOICES, SelfService.EMPLOYMENT_REPORTING, SelfService.STATISTICS


def _employer(session: Session, orgnr: str = "2021005489") -> Employer:
    return session.scalars(select(Employer).where(Employer.orgnr == orgnr)).one()


def _code(session: Session, code: str) -> int:
    return session.scalars(select(EmployerCode.id).where(EmployerCode.code == code)).one()


def _actor(session: Session, personnummer: str, orgnr: str = "2021005489") -> m.Actor:
    authority = m.authority_at(
        session, person_id(session, personnummer), _employer(session, orgnr).id
    )
    return m.Actor(authority, BASE_URL)


def _emails(session: Session, template: str) -> list[EmailMessage]:
    return list(session.scalars(select(EmailMessage).where(EmailMessage.template == template)))


def _newcomer(personnummer: str = "198703159809") -> m.NewPerson:
    return m.check_person(personnummer, "Frida", "Fors", "frida.fors@testmyndighet.example")


def test_the_overview_shows_the_employers_users_and_pages(session: Session) -> None:
    bertil = _actor(session, BERTIL)
    page = m.overview(session, bertil.authority, m.OverviewQuery())
    assert [row.person.personnummer for row in page.rows] == [CECILIA, GRETA]
    assert len(page.rows[0].permissions) == 4
    assert not page.has_next
    by_code = m.overview(
        session, bertil.authority, m.OverviewQuery(code_id=_code(session, "A1002"))
    )
    assert [row.person.personnummer for row in by_code.rows] == [CECILIA, GRETA]
    assert m.overview(session, bertil.authority, m.OverviewQuery(service=STAT)).rows == []
    by_number = m.overview(session, bertil.authority, m.OverviewQuery(sort="personnummer"))
    assert [row.person.personnummer for row in by_number.rows] == [CECILIA, GRETA]
    assert m.overview(session, bertil.authority, m.OverviewQuery(search="cecil")).rows
    assert m.overview(session, bertil.authority, m.OverviewQuery(search="19720511-9824")).rows
    assert not m.overview(session, bertil.authority, m.OverviewQuery(search="anna")).rows


def test_the_overview_takes_two_queries_whatever_the_page_holds(session: Session) -> None:
    from sqlalchemy import event

    anna = _actor(session, ANNA)
    for n in range(30):
        number = f"1990010{n:02d}"
        person = m.person_for(
            session, m.NewPerson(f"{number}000"[:12], f"Test{n}", "Person", f"t{n}@x.example")
        )
        session.add(
            ServicePermission(
                person_id=person.id, employer_code_id=_code(session, "A1001"), service=INV
            )
        )
    session.flush()
    statements: list[str] = []
    event.listen(session.get_bind(), "before_cursor_execute", lambda *a: statements.append(a[2]))
    page = m.overview(session, anna.authority, m.OverviewQuery(page_size=20))
    assert len(page.rows) == 20 and page.has_next
    assert len(statements) == 2
    second = m.overview(session, anna.authority, m.OverviewQuery(page_size=20, page=2))
    assert len(second.rows) == 12 and not second.has_next


def test_one_employer_never_sees_or_changes_anothers(session: Session) -> None:
    david = _actor(session, DAVID, "2021004920")
    [greta] = m.overview(session, david.authority, m.OverviewQuery()).rows
    assert [p.code for p in greta.permissions] == ["B2001"]  # not her Statens permission
    cecilia = person_id(session, CECILIA)
    with pytest.raises(m.NotFound):
        m.visible_person(session, david.authority, cecilia)
    with pytest.raises(m.NotFound):
        m.change_permissions(
            session, david, cecilia, revoke=[(INV, _code(session, "A1001"))], reason="x"
        )
    bertil_grant = session.scalars(
        select(RoleGrant.id).where(RoleGrant.role == Role.ADMINISTRATOR)
    ).one()
    with pytest.raises(m.NotFound):
        m.remove_administrator(session, david, bertil_grant)
    with pytest.raises(m.NotFound):
        m.authority_at(session, person_id(session, DAVID), _employer(session).id)


def test_only_orderers_manage_administrators(session: Session) -> None:
    bertil = _actor(session, BERTIL)
    with pytest.raises(m.NotFound):
        m.appoint_administrator(session, bertil, _newcomer(), all_codes=True)
    cecilia = _actor(session, CECILIA)
    with pytest.raises(m.NotFound):
        m.change_permissions(session, cecilia, person_id(session, BERTIL), grant=[(INV, 1)])


def test_nobody_grants_themselves_anything(session: Session) -> None:
    bertil = _actor(session, BERTIL)
    with pytest.raises(m.Refused) as refused:
        m.change_permissions(
            session, bertil, person_id(session, BERTIL), grant=[(STAT, _code(session, "A1001"))]
        )
    assert refused.value.code == "own_permissions"
    anna = _actor(session, ANNA)
    with pytest.raises(m.Refused):
        m.appoint_administrator(
            session,
            anna,
            m.check_person(ANNA, "Anna", "Andersson", "anna.andersson@testmyndighet.example"),
            all_codes=True,
        )


def test_the_last_orderer_cannot_be_removed_here(session: Session) -> None:
    anna = _actor(session, ANNA)
    orderer = session.scalars(
        select(RoleGrant.id).where(
            RoleGrant.role == Role.ORDERER, RoleGrant.employer_id == anna.authority.employer_id
        )
    ).one()
    with pytest.raises(m.Refused) as refused:
        m.remove_administrator(session, anna, orderer)
    assert refused.value.code == "orderer_not_here"


def test_a_closed_code_allows_only_invoices(session: Session) -> None:
    bertil = _actor(session, BERTIL)
    closed = _code(session, "A1003")
    with pytest.raises(m.Refused) as refused:
        m.change_permissions(session, bertil, person_id(session, CECILIA), grant=[(STAT, closed)])
    assert refused.value.code == "closed_code"


@pytest.mark.parametrize(
    ("given", "email"),
    [
        ("Fre\u202edrik", "fredrik@testmyndighet.example"),
        ("Fred\nrik", "fredrik@testmyndighet.example"),
        ("Fredrik", "fredrik\u200f@testmyndighet.example"),
        ("Fredrik", "not-an-address"),
    ],
)
def test_names_and_emails_are_validated(given: str, email: str) -> None:
    with pytest.raises(m.Refused):
        m.check_person("198507049859", given, "Falk", email)


def test_a_change_of_several_permissions_is_one_audited_change_and_one_email(
    session: Session,
) -> None:
    bertil = _actor(session, BERTIL)
    before = session.scalar(select(func.max(AuditEvent.id)))
    person = m.add_user(
        session,
        bertil,
        _newcomer(),
        [(INV, _code(session, "A1001")), (STAT, _code(session, "A1002"))],
        reason="Ny ekonom",
    )
    events = session.scalars(select(AuditEvent).where(AuditEvent.id > (before or 0))).all()
    assert [e.action for e in events] == ["service_permission.created"] * 2
    assert {e.data["code"] for e in events} == {"A1001", "A1002"}
    assert all(e.actor == f"person:{person_id(session, BERTIL)}" for e in events)
    assert all(e.data["reason"] == "Ny ekonom" for e in events)
    emails = _emails(session, "permissions_changed")
    assert [e.to_address for e in emails] == ["frida.fors@testmyndighet.example"]
    assert "Statistik och rapporter, A1002" in emails[0].text_body
    assert "Bertil Berg" in emails[0].text_body

    ended = m.remove_all_permissions(session, bertil, person.id, reason="Slutat")
    assert len(ended) == 2
    assert len(_emails(session, "permissions_changed")) == 2
    assert m.permissions_of(session, person.id, bertil.authority.employer_code_ids) == []


def test_an_orderer_appoints_changes_and_removes_an_administrator(session: Session) -> None:
    anna = _actor(session, ANNA)
    grant = m.appoint_administrator(
        session, anna, _newcomer(), all_codes=False, code_ids=[_code(session, "A1002")]
    )
    assert grant.role is Role.ADMINISTRATOR and not grant.is_all_codes
    assert grant.granted_by_person_id == anna.authority.person_id
    granted = _emails(session, "role_granted")
    assert {e.to_address for e in granted} == {
        "frida.fors@testmyndighet.example",
        "anna.andersson@testmyndighet.example",
    }
    m.change_administrator_scope(session, anna, grant.id, all_codes=True, reason="Hela")
    assert grant.is_all_codes
    assert len(_emails(session, "role_changed")) == 2
    m.remove_administrator(session, anna, grant.id, reason="Slutat")
    assert grant.valid_to_dt is not None
    assert len(_emails(session, "role_ended")) == 2
    holders = m.role_holders(session, active_grants(session, anna.authority.employer_id))
    bertil = next(h for h in holders if h.grant.role is Role.ADMINISTRATOR)
    assert bertil.appointed_by is not None and bertil.appointed_by.given_name == "Anna"


def test_a_user_asks_for_a_permission_and_an_administrator_grants_it(session: Session) -> None:
    cecilia = _actor(session, CECILIA)
    request = m.request_permission(
        session, cecilia, _code(session, "A1002"), STAT, "Behövs för årsrapporten"
    )
    asked = _emails(session, "permission_requested")
    assert [e.to_address for e in asked] == ["bertil.berg@testmyndighet.example"]
    with pytest.raises(m.Refused):
        m.request_permission(session, cecilia, _code(session, "A1002"), STAT)
    bertil = _actor(session, BERTIL)
    assert [r.id for r in m.pending_requests(session, bertil.authority)] == [request.id]
    m.decide_request(session, bertil, request.id, grant=True)
    assert (STAT, _code(session, "A1002")) in {
        (p.service, p.code_id) for p in m.my_permissions(session, cecilia.authority)
    }
    assert m.pending_requests(session, bertil.authority) == []
    david = _actor(session, DAVID, "2021004920")
    second = m.request_permission(session, cecilia, _code(session, "A1001"), STAT)
    with pytest.raises(m.NotFound):
        m.decide_request(session, david, second.id, grant=True)
    m.decide_request(session, bertil, second.id, grant=False, reason="Inte nu")
    assert session.get_one(PermissionRequest, second.id).outcome == "declined"
    assert len(_emails(session, "permission_request_declined")) == 1


def test_the_overview_filters_users_not_seen_for_a_year(session: Session) -> None:
    """The slot rule 11 fills: users whose last e-ID login is older than a date (or none)."""
    from datetime import timedelta

    from app.access.models import Person
    from app.db import utcnow

    greta = session.get_one(Person, person_id(session, GRETA))
    greta.last_login_dt = utcnow() - timedelta(days=3)
    session.flush()
    anna = _actor(session, ANNA)
    query = m.OverviewQuery(inactive_before=utcnow() - timedelta(days=365))
    assert [r.person.personnummer for r in m.overview(session, anna.authority, query).rows] == [
        CECILIA
    ]


def test_an_orderer_with_chosen_codes_gives_no_more_than_them(session: Session) -> None:
    anna = _actor(session, ANNA)
    narrow = m.Actor(
        replace(
            anna.authority,
            all_codes=False,
            explicit_code_ids=frozenset({_code(session, "A1001")}),
        ),
        BASE_URL,
    )
    with pytest.raises(m.Refused) as refused:
        m.appoint_administrator(session, narrow, _newcomer(), all_codes=True)
    assert refused.value.code == "scope_beyond_yours"
    grant = m.appoint_administrator(
        session, narrow, _newcomer(), all_codes=False, code_ids=[_code(session, "A1001")]
    )
    assert [c.code for c in grant.codes] == ["A1001"]
    assert (
        m.overview(session, narrow.authority, m.OverviewQuery(code_id=_code(session, "A1002"))).rows
        == []
    )
