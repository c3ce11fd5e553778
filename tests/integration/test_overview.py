"""SPV's overview (issue 18 item 7): employers with no orderer, with no administrator,
with many inactive users, and lead times by channel; each list as CSV; caseworkers only."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.access.inactivity import add_months
from app.access.models import (
    CodeStatus,
    Employer,
    EmployerCode,
    InactivityConfirmation,
    Person,
    Role,
    RoleGrant,
    SelfService,
    ServicePermission,
)
from app.db import utcnow
from app.overview import service
from app.registrations.models import Channel, Errand, ErrandKind
from tests.conftest import DAVID, INGRID, login, person_id, staff_id
from tests.support import skatteverket_test_personnummer
from workflows.states import ErrandState

OVERVIEW = "/handlaggning/oversikt"


def _employer(session: Session, orgnr: str, name: str, *roles: Role, open: bool = True) -> Employer:
    employer = Employer(orgnr=orgnr, name=name)
    session.add(employer)
    session.flush()
    status = CodeStatus.ACTIVE if open else CodeStatus.CLOSED
    session.add(
        EmployerCode(employer_id=employer.id, code=f"X{orgnr[-5:]}", name=name, status=status)
    )
    orderer_id = None
    for n, role in enumerate(roles):
        holder = _person(session, 900 + int(orgnr[-3:]) * 3 + n)
        registration = _errand(session, employer.id)  # orderers only so (rule 7)
        is_orderer = role is not Role.ADMINISTRATOR
        grant = RoleGrant(
            person_id=holder.id,
            employer_id=employer.id,
            role=role,
            source_errand_id=registration.id if is_orderer else None,
            granted_by_person_id=None if is_orderer else orderer_id,
        )
        session.add(grant)
        session.flush()
        orderer_id = orderer_id or holder.id
    return employer


def _person(session: Session, index: int, last_login_days: int | None = None) -> Person:
    personnummer = skatteverket_test_personnummer(index)
    person = session.scalars(select(Person).where(Person.personnummer == personnummer)).first()
    if person is None:
        person = Person(personnummer=personnummer, given_name="Test", family_name=f"Person {index}")
        session.add(person)
    if last_login_days is not None:
        person.last_login_dt = person.created_dt = utcnow() - timedelta(days=last_login_days)
    session.flush()
    return person


def _user(session: Session, employer: Employer, index: int, last_login_days: int) -> Person:
    user = _person(session, index, last_login_days)
    session.add(
        ServicePermission(
            person_id=user.id, employer_code_id=employer.codes[0].id, service=SelfService.INVOICES
        )
    )
    session.flush()
    return user


def _errand(
    session: Session,
    employer_id: int,
    *,
    channel: Channel = Channel.E_SIGN,
    received_days: float = 30,
    decided_days: float | None = 20,
    state: ErrandState = ErrandState.CLOSED,
) -> Errand:
    """An errand as far as the constraints want it: received, and decided by Ingrid."""
    now = utcnow()
    errand = Errand(
        kind=ErrandKind.REGISTRATION,
        channel=channel,
        state=state,
        employer_id=employer_id,
        submitted_by_id=person_id(session, DAVID),
        received_dt=now - timedelta(days=received_days),
        decided_dt=None if decided_days is None else now - timedelta(days=decided_days),
        decided_by_staff_id=None if decided_days is None else staff_id(session, INGRID),
    )
    session.add(errand)
    session.flush()
    return errand


def _orgnrs(found: service.EmployerList) -> set[str]:
    return {row.orgnr for row in found.rows}


def test_employers_with_no_orderer_or_no_administrator(session: Session) -> None:
    nobody = _employer(session, "5560000101", "Ingen AB")
    orderer_only = _employer(session, "5560000102", "Bara beställare AB", Role.ORDERER)
    delegated = _employer(session, "5560000103", "Delegerad AB", Role.DELEGATED_ORDERER)
    both = _employer(session, "5560000104", "Båda AB", Role.ORDERER, Role.ADMINISTRATOR)
    closed = _employer(session, "5560000105", "Stängd AB", open=False)
    _user(session, nobody, 1000, last_login_days=5)

    without_orderer = service.employers_without_orderer(session)
    assert nobody.orgnr in _orgnrs(without_orderer)
    assert not {orderer_only.orgnr, delegated.orgnr, both.orgnr, closed.orgnr} & _orgnrs(
        without_orderer
    )
    row = next(r for r in without_orderer.rows if r.orgnr == nobody.orgnr)
    assert (row.users, row.open_errands) == (1, 0)
    without_administrator = service.employers_without_administrator(session)
    assert {nobody.orgnr, orderer_only.orgnr, delegated.orgnr} <= _orgnrs(without_administrator)
    assert not {both.orgnr, closed.orgnr} & _orgnrs(without_administrator)
    assert without_administrator.total == len(service.employers_without_administrator(session).rows)
    assert len(service.employers_without_administrator(session, limit=1).rows) == 1


def test_employers_with_many_inactive_users(session: Session) -> None:
    employer = _employer(session, "5560000201", "Sömnig AB", Role.ORDERER)
    gone = [_user(session, employer, 1100 + n, last_login_days=400) for n in range(3)]
    _user(session, employer, 1110, last_login_days=30)
    orderer = session.scalars(select(RoleGrant).where(RoleGrant.employer_id == employer.id)).one()
    session.add(  # still needed: confirmed a month ago, so not counted
        InactivityConfirmation(
            employer_id=employer.id,
            person_id=gone[0].id,
            confirmed_by_person_id=orderer.person_id,
            confirmed_dt=add_months(utcnow(), -1),
        )
    )
    session.flush()
    found = service.employers_with_inactive_users(session, minimum=2)
    row = next(r for r in found.rows if r.orgnr == employer.orgnr)
    assert (row.inactive, row.users) == (2, 4)
    assert employer.orgnr not in _orgnrs(service.employers_with_inactive_users(session, minimum=3))


def test_lead_times_by_channel(session: Session) -> None:
    now = utcnow()
    employer_id = _employer(session, "5560000401", "Tidsmätt AB").id

    def errand(
        channel: Channel, received_days: float, decided_days: float | None, state: ErrandState
    ) -> None:
        _errand(
            session,
            employer_id,
            channel=channel,
            received_days=received_days,
            decided_days=decided_days,
            state=state,
        )

    before = {f.channel: f for f in service.lead_times(session, 30, now)}
    errand(Channel.PAPER, 20, 18, ErrandState.CLOSED)  # 2 days
    errand(Channel.PAPER, 25, 5, ErrandState.REJECTED)  # 20 days: over the ten
    errand(Channel.PAPER, 3, None, ErrandState.IN_REVIEW)
    errand(Channel.E_SIGN, 40, 1, ErrandState.CLOSED)  # received before the period
    after = {f.channel: f for f in service.lead_times(session, 30, now)}
    paper = after[Channel.PAPER]
    assert paper.received - before[Channel.PAPER].received == 3
    assert paper.approved - before[Channel.PAPER].approved == 1
    assert paper.rejected - before[Channel.PAPER].rejected == 1
    assert paper.open_now - before[Channel.PAPER].open_now == 1
    if before[Channel.PAPER].median_days is None:  # the seed decided nothing on paper lately
        assert (paper.median_days, paper.longest_days) == (11.0, 20.0)
        assert paper.within_decision_time == 0.5
    e_sign = after[Channel.E_SIGN]
    assert e_sign.received == before[Channel.E_SIGN].received
    assert e_sign.approved - before[Channel.E_SIGN].approved == 1


def test_caseworkers_see_the_lists_and_download_them(client: FlaskClient, session: Session) -> None:
    _employer(session, "5560000301", "Kontakta Oss AB")
    session.commit()
    login(client, session, INGRID, staff=True)
    page = client.get(OVERVIEW)
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "Kontakta Oss AB" in text and "556000-0301" in text
    assert 'aria-current="page"' in text
    for slug in ("utan-administrator", "inaktiva", "handlaggningstider"):
        assert client.get(f"{OVERVIEW}?lista={slug}").status_code == 200
    assert client.get(f"{OVERVIEW}?lista=okand").status_code == 404

    download = client.get(f"{OVERVIEW}/utan-bestallare.csv")
    assert download.status_code == 200 and download.mimetype == "text/csv"
    assert download.headers["Cache-Control"] == "no-store"
    body = download.get_data(as_text=True)
    assert body.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(body.lstrip("\ufeff")), delimiter=";"))
    assert rows[0][:2] == ["Organisationsnummer", "Arbetsgivare"]
    assert ["556000-0301", "Kontakta Oss AB", "0", "0"] in rows
    lead = client.get(f"{OVERVIEW}/handlaggningstider.csv?dagar=365")
    assert [
        r[0]
        for r in csv.reader(
            io.StringIO(lead.get_data(as_text=True).lstrip("\ufeff")), delimiter=";"
        )
    ][1:] == ["E-underskrift", "Papper"]


def test_only_caseworkers_reach_the_overview(client: FlaskClient, session: Session) -> None:
    assert client.get(OVERVIEW).status_code in (302, 401, 403)
    login(client, session, DAVID)
    assert client.get(OVERVIEW).status_code == 403
    assert client.get(f"{OVERVIEW}/utan-bestallare.csv").status_code == 403
