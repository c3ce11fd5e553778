"""Signatory register changes (issue 18 item 5), on PostgreSQL: ``behorighet signatories
import FILE`` reads an extract of the company register strictly (every bad row reported
with its line, nothing imported from a file with one), records each change with its audit
event, and is idempotent. When the signatory who signed an orderer's registration is gone,
the role is flagged for review (not revoked), the employer's orderers are emailed, and a
caseworker errand is opened in the queue; the caseworker's approval resolves the flag.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.access import service as access
from app.access.models import RoleGrant, RoleReviewFlag
from app.audit.models import AuditEvent
from app.casework import service as casework
from app.cli import main
from app.core.agents import Agent
from app.notifications.models import EmailMessage
from app.registers.changes import import_extract
from app.registers.extract import BadExtract, read_extract
from app.registers.models import (
    RegisterChangeKind,
    SignatoryRegisterChange,
    SignatoryRegisterEntry,
)
from app.registrations import service as registrations
from app.registrations.models import Errand, ErrandKind, RejectionReason
from tests.conftest import ANNA, DAVID, INGRID, login, person_id
from tests.factories import caseworker, public_base_url
from tests.support import csrf_token
from workflows import pipeline
from workflows.states import ErrandState, IllegalTransition

DEMO_EXTRACT = Path(__file__).resolve().parents[2] / "devtools" / "signatory_extract_demo.csv"
HEADER = "organisationsnummer;personnummer;namn;befattning;firmateckning;registreringsdatum"
MYNDIGHET = "2021005489"
GUNILLA = "196408239868"  # signed Anna's registration (the seed)
TODAY = date(2026, 12, 3)
SYSTEM = Agent.system("test")


def _import(session: Session, data: bytes) -> object:
    report = import_extract(session, read_extract(data, today=TODAY), base_url=public_base_url())
    session.commit()
    return report


def _count(session: Session, model: type) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


def _anna_grant(session: Session) -> RoleGrant:
    grant = session.scalars(
        select(RoleGrant).where(RoleGrant.person_id == person_id(session, ANNA))
    ).one()
    return grant


def _review_errand(session: Session) -> Errand:
    return session.scalars(select(Errand).where(Errand.kind == ErrandKind.SIGNATORY_CHANGE)).one()


def test_a_bad_extract_is_refused_whole_with_the_lines(session: Session) -> None:
    rows = [
        HEADER,
        "202100-5489;19730512-9814;Lars Nygård;Generaldirektör;ensam;2026-11-30",
        "202100-5489;19730512-9815;Fel Nummer;Styrelseledamot;ensam;2026-11-30",
        "123;19521003-9847;Eva Ek;Myndighetschef;ensam;2019-04-01",
        "202100-4920;7305129814;Tio Siffror;Ledamot;ensam;2019-04-01",
        "202100-4920;19521003-9847;Eva Ek;Myndighetschef;var för sig;2019-04-01",
        "202100-4920;19521003-9847;Eva Ek;Myndighetschef;ensam;i fjol",
        "202100-4920;19521003-9847;Eva Ek;Myndighetschef;ensam;2030-01-01",
        "202100-4920;19521003-9847;Eva Ek;;ensam;2019-04-01",
        "202100-4920;19521003-9847;Eva Ek",
        "202100-5489;197305129814;Lars Nygård;Generaldirektör;ensam;2026-11-30",
    ]
    with pytest.raises(BadExtract) as refused:
        read_extract("\n".join(rows).encode(), today=TODAY)
    assert [p.line for p in refused.value.problems] == [3, 4, 5, 6, 7, 8, 9, 10, 11]
    messages = [p.message for p in refused.value.problems]
    assert "personnummer is not a valid personnummer" in messages[0]
    assert "twelve digits" in messages[2]
    assert "firmateckning must be" in messages[3]
    assert "the same signatory as on line 2" in messages[-1]
    with pytest.raises(BadExtract, match="line 1: the header must be"):
        read_extract(b"orgnr;personnummer\n2021005489;196408239868\n", today=TODAY)
    with pytest.raises(BadExtract, match="not UTF-8"):
        read_extract(HEADER.encode("utf-16"), today=TODAY)
    with pytest.raises(BadExtract, match="names no signatory"):
        read_extract(HEADER.encode(), today=TODAY)


def test_a_departed_signatory_flags_the_roles_they_signed_for(session: Session) -> None:
    before = _count(session, SignatoryRegisterEntry)
    report = _import(session, DEMO_EXTRACT.read_bytes())

    # The changes, each recorded once with its audit event.
    changes = session.scalars(select(SignatoryRegisterChange)).all()
    kinds = sorted((c.kind.value, c.name) for c in changes)
    assert kinds == [
        ("added", "Lars Nygård"),
        ("added", "Olle Ordförande"),
        ("changed", "Eva Ek"),  # the extract gives her signing rule and date
        ("removed", "Gunilla Generaldirektör"),
    ]
    events = session.scalars(
        select(AuditEvent).where(AuditEvent.action.like("signatory_register.%"))
    ).all()
    assert sorted(e.object_id for e in events) == sorted(str(c.id) for c in changes)
    assert all(GUNILLA not in str(e.data) for e in events)  # masked
    assert _count(session, SignatoryRegisterEntry) == before + 1
    olle = session.scalars(
        select(SignatoryRegisterEntry).where(SignatoryRegisterEntry.name == "Olle Ordförande")
    ).one()
    assert (olle.signing_rule, olle.registered_on) == ("two_jointly", date(2026, 11, 30))

    # Anna's role is flagged, not revoked.
    grant = _anna_grant(session)
    assert grant.valid_to_dt is None
    assert access.orderer_grants(session, grant.employer_id, ANNA) == [grant]
    flag = session.scalars(select(RoleReviewFlag)).one()
    assert (flag.role_grant_id, flag.signatory_name) == (grant.id, "Gunilla Generaldirektör")
    assert flag.resolved_dt is None

    # A caseworker errand, in review and in the unassigned queue.
    errand = _review_errand(session)
    assert flag.errand_id == errand.id
    assert errand.state is ErrandState.IN_REVIEW
    assert errand.subject_personnummer == ANNA and errand.due_dt is not None
    staff = caseworker(session)
    queued = casework.queue(session, staff, casework.QueueFilter())
    assert errand.id in [e.id for e in queued.rows]
    assert [f.value for f in casework.findings_to_acknowledge(errand)] == [
        "signatory_left_register"
    ]

    # The employer is emailed (its orderer, Anna).
    emails = session.scalars(
        select(EmailMessage).where(EmailMessage.template == "signatory_changed")
    ).all()
    assert [e.to_address for e in emails] == ["anna.andersson@testmyndighet.example"]
    assert (
        "Gunilla Generaldirektör" in emails[0].text_body and errand.reference in emails[0].text_body
    )
    assert report.errands == [errand.reference]

    # The same file again records nothing.
    counts = [
        _count(session, m)
        for m in (SignatoryRegisterChange, RoleReviewFlag, Errand, EmailMessage, AuditEvent)
    ]
    again = _import(session, DEMO_EXTRACT.read_bytes())
    assert again.changes == [] and again.flags == []
    assert counts == [
        _count(session, m)
        for m in (SignatoryRegisterChange, RoleReviewFlag, Errand, EmailMessage, AuditEvent)
    ]


def test_the_review_is_approved_and_the_role_stands(session: Session) -> None:
    _import(session, DEMO_EXTRACT.read_bytes())
    errand = _review_errand(session)
    staff = caseworker(session)
    assert casework.claim(session, staff, errand)
    with pytest.raises(IllegalTransition):
        casework.reject_errand(
            session, staff, errand, RejectionReason.OTHER, "Nej.", base_url=public_base_url()
        )
    with pytest.raises(IllegalTransition):  # a note on the finding is needed
        casework.approve_errand(session, staff, errand, {})
    assert casework.approve_errand(
        session, staff, errand, {"signatory_left_register": "Ny GD bekräftar Anna."}
    )
    assert pipeline.apply(session, errand.id, SYSTEM, base_url=public_base_url())
    assert pipeline.archive(session, errand.id, SYSTEM)
    session.commit()
    assert errand.state is ErrandState.CLOSED
    assert not errand.documents  # no decision letter: nobody applied for anything
    flag = session.scalars(select(RoleReviewFlag)).one()
    assert flag.resolved_dt is not None and flag.resolved_by_staff_id == staff.id
    assert _anna_grant(session).valid_to_dt is None


def test_the_review_errand_is_not_the_submitters(session: Session) -> None:
    """David submitted Anna's registration: SPV's own review is neither in his errands nor
    in the way of a removal of Anna."""
    _import(session, DEMO_EXTRACT.read_bytes())
    errand = _review_errand(session)
    david = Agent.__new__(Agent)
    from app.core.agents import AgentKind

    david = Agent(AgentKind.PERSON, person_id(session, DAVID), DAVID)
    assert errand.id not in [e.id for e in registrations.own_errands(session, david).rows]
    with pytest.raises(registrations.NotYours):
        registrations.own_errand(session, david, errand.reference)
    assert errand.employer_id is not None
    roster = registrations.load_roster(session, errand.employer_id)
    assert not roster.errands


def test_the_flag_on_the_employers_page_and_the_caseworkers(
    client: FlaskClient, session: Session
) -> None:
    _import(session, DEMO_EXTRACT.read_bytes())
    errand = _review_errand(session)
    login(client, session, ANNA)
    page = client.get("/hantera-behorigheter").get_data(as_text=True)
    assert "Granskas av SPV" in page and "Gunilla Generaldirektör" in page
    client.get("/logga-ut")
    other = client.application.test_client()
    login(other, session, INGRID, staff=True)
    queue = other.get("/handlaggning").get_data(as_text=True)
    assert errand.reference in queue and "Ändrad firmatecknare" in queue
    page = other.get(f"/handlaggning/{errand.reference}").get_data(as_text=True)
    assert 'id="review-flag"' in page and "Gunilla Generaldirektör" in page
    assert "Begär komplettering" not in page


def test_the_command(app: Flask, tmp_path: Path, session: Session) -> None:
    from flask.cli import ScriptInfo

    info = ScriptInfo(create_app=lambda: app)
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "\n2021005489;196408239868;Gunilla;GD;ensam;igår\n", "utf-8")
    result = CliRunner().invoke(main, ["signatories", "import", str(bad)], obj=info)
    assert result.exit_code == 1
    assert "line 2: registreringsdatum" in result.output
    assert "nothing was imported" in result.output
    assert _count(session, SignatoryRegisterChange) == 0

    result = CliRunner().invoke(main, ["signatories", "import", str(DEMO_EXTRACT)], obj=info)
    assert result.exit_code == 0, result.output
    assert "changes recorded: 2 added, 1 removed, 1 changed" in result.output
    assert "Orderers' roles flagged for review: 1." in result.output
    assert "19640823-****" in result.output and GUNILLA not in result.output
    assert (
        session.scalar(
            select(func.count()).where(SignatoryRegisterChange.kind == RegisterChangeKind.REMOVED)
        )
        == 1
    )


def test_the_demo_button_imports_the_demo_extract(client: FlaskClient, session: Session) -> None:
    """The demo's stand-in for the company register's delivery: the caseworker's button on
    the queue runs the same import as the command, once however often it is pressed."""
    login(client, session, INGRID, staff=True)
    for _ in range(2):
        queue = client.get("/handlaggning").get_data(as_text=True)
        assert "Demo: importera Bolagsverkets utdrag" in queue
        done = client.post("/demo/bolagsverket", data={"csrf_token": csrf_token(queue)})
        assert done.status_code == 302
    assert client.post("/demo/bolagsverket").status_code == 400  # no CSRF token
    errand = _review_errand(session)
    assert errand.reference in client.get("/handlaggning").get_data(as_text=True)
    assert _count(session, RoleReviewFlag) == 1
