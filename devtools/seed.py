"""Demo data: three employers, their codes and people, grants, staff and the signatory register.

Every personnummer is in Skatteverket's test series (birth numbers 980–999);
Johan Handläggare has a samordningsnummer.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.access import changelog
from app.access.models import (
    CodeStatus,
    Employer,
    EmployerCode,
    Person,
    Role,
    RoleGrant,
    SelfService,
    ServicePermission,
)
from app.audit.service import record_event
from app.core.agents import Agent
from app.db import utcnow
from app.registers.models import SignatoryRegisterEntry, SigningRule
from app.registrations.models import Channel, Errand, ErrandKind
from app.staff.models import StaffMember
from workflows.states import ErrandState

EMPLOYERS = [
    # orgnr, name, [(code, name, status)]
    (
        "2021005489",
        "Statens testmyndighet",
        [
            ("A1001", "Huvudkontoret", CodeStatus.ACTIVE),
            ("A1002", "Regionkontor Norr", CodeStatus.ACTIVE),
            ("A1003", "Nedlagt kontor Söder (fakturor kvar)", CodeStatus.CLOSED),
        ],
    ),
    ("2021004920", "Provverket", [("B2001", "Provverket", CodeStatus.ACTIVE)]),
    ("2120000142", "Exempelhögskolan", [("C3001", "Exempelhögskolan", CodeStatus.ACTIVE)]),
]

PERSONS = [
    # personnummer, given, family, email
    ("198112189876", "Anna", "Andersson", "anna.andersson@testmyndighet.example"),
    ("199001019810", "Bertil", "Berg", "bertil.berg@testmyndighet.example"),
    ("197205119824", "Cecilia", "Carlsson", "cecilia.carlsson@testmyndighet.example"),
    ("200001029834", "David", "Dahl", "david.dahl@provverket.example"),
    ("195210039847", "Eva", "Ek", "eva.ek@provverket.example"),
    ("198507049859", "Fredrik", "Falk", "fredrik.falk@hogskolan.example"),
    ("198703159817", "Greta", "Grön", "greta.gron@lonecenter.example"),
]

# orgnr, personnummer, name, capacity
SIGNATORIES = [
    ("2021005489", "196408239868", "Gunilla Generaldirektör", "Generaldirektör"),
    ("2021004920", "195210039847", "Eva Ek", "Myndighetschef"),
    ("2120000142", "197802029889", "Hans Rektorsson", "Rektor"),
    ("2120000142", "196903119854", "Ingela Förvaltningschef", "Förvaltningschef"),
]
SIGNING_JOINTLY = {"2120000142"}
"""Exempelhögskolan signs two jointly: its forms need both Hans's and Ingela's signatures."""

STAFF = [
    # personnummer, name, email, caseworker, intake clerk, team lead
    ("196211289894", "Ingrid Handläggare", "ingrid.handlaggare@spv.example", True, False, False),
    ("197010639909", "Johan Handläggare", "johan.handlaggare@spv.example", True, False, True),
    ("199104239919", "Karin Registrator", "karin.registrator@spv.example", False, True, False),
]


def is_seeded(session: Session) -> bool:
    return session.scalar(select(Employer.id).limit(1)) is not None


def seed_demo(session: Session) -> None:
    """Insert the demo data once; does nothing if employers exist already."""
    if is_seeded(session):
        return
    seeder = Agent.system("seed-demo")
    employers = {}
    for orgnr, name, codes in EMPLOYERS:
        employer = Employer(orgnr=orgnr, name=name)
        employer.codes = [EmployerCode(code=c, name=n, status=s) for c, n, s in codes]
        session.add(employer)
        employers[orgnr] = employer
    persons = {
        p: Person(personnummer=p, given_name=g, family_name=f, email=e) for p, g, f, e in PERSONS
    }
    session.add_all(persons.values())
    session.add_all(
        SignatoryRegisterEntry(
            orgnr=o,
            personnummer=p,
            name=n,
            capacity=c,
            signing_rule=SigningRule.TWO_JOINTLY if o in SIGNING_JOINTLY else SigningRule.ALONE,
        )
        for o, p, n, c in SIGNATORIES
    )
    session.add_all(
        StaffMember(
            personnummer=p, name=n, email=e, is_caseworker=cw, is_intake_clerk=ic, is_team_lead=tl
        )
        for p, n, e, cw, ic, tl in STAFF
    )
    session.flush()

    caseworker = session.scalars(select(StaffMember).where(StaffMember.is_caseworker)).first()
    assert caseworker is not None
    anna, bertil, cecilia = (
        persons["198112189876"],
        persons["199001019810"],
        persons["197205119824"],
    )
    david = persons["200001029834"]
    myndighet, provverket = employers["2021005489"], employers["2021004920"]

    # Orderers exist only through an applied registration (rule 7), also in the seed.
    # Anna's registration was signed by the director-general (the signatory register's
    # extract in devtools/ says she left: ``behorighet signatories import``).
    anna_grant = _seeded_orderer(
        session, myndighet, anna, david, caseworker, signatory=SIGNATORIES[0]
    )
    _seeded_orderer(session, provverket, david, david, caseworker)
    session.add(
        RoleGrant(
            person_id=bertil.id,
            employer_id=myndighet.id,
            role=Role.ADMINISTRATOR,
            granted_by_person_id=anna.id,
        )
    )
    long_ago = utcnow() - timedelta(days=600)
    cecilia.last_login_dt = long_ago
    anna.last_login_dt = utcnow() - timedelta(days=3)
    for code in myndighet.codes:
        session.add(
            ServicePermission(
                person_id=cecilia.id,
                employer_code_id=code.id,
                service=SelfService.INVOICES,
                granted_by_person_id=bertil.id,
            )
        )
    session.add(
        ServicePermission(
            person_id=cecilia.id,
            employer_code_id=myndighet.codes[0].id,
            service=SelfService.EMPLOYMENT_REPORTING,
            granted_by_person_id=bertil.id,
        )
    )
    # Greta works for two employers' payroll: she chooses one in Hantera behörigheter.
    greta = persons["198703159817"]
    session.add_all(
        [
            ServicePermission(
                person_id=greta.id,
                employer_code_id=myndighet.codes[1].id,
                service=SelfService.PENSION_CASES,
                granted_by_person_id=bertil.id,
            ),
            ServicePermission(
                person_id=greta.id,
                employer_code_id=provverket.codes[0].id,
                service=SelfService.INVOICES,
                granted_by_person_id=david.id,
            ),
        ]
    )
    session.flush()
    # The seed fills the store directly: its grants join the change log as granted.
    changelog.log_current_state(session)
    record_event(
        session,
        actor=seeder.audit_label,
        action="demo.seeded",
        object_type="system",
        object_id="seed",
        data={"employers": len(EMPLOYERS), "orderer": anna_grant.id},
    )


def _seeded_orderer(
    session: Session,
    employer: Employer,
    person: Person,
    submitter: Person,
    caseworker: StaffMember,
    *,
    signatory: tuple[str, str, str, str] | None = None,
) -> RoleGrant:
    """An orderer through a closed posted registration, signed by ``signatory`` (a row of
    ``SIGNATORIES``) or by nobody the register knows."""
    now = utcnow()
    _orgnr, signatory_pnr, signatory_name, signatory_title = signatory or ("", "", "", "")
    errand = Errand(
        kind=ErrandKind.REGISTRATION,
        channel=Channel.PAPER,
        state=ErrandState.CLOSED,
        employer_id=employer.id,
        subject_personnummer=person.personnummer,
        submitted_by_id=submitter.id,
        received_dt=now,
        decided_dt=now,
        decided_by_staff_id=caseworker.id,
        form_data={
            "orgnr": employer.orgnr,
            "personnummer": person.personnummer,
            "given_name": person.given_name,
            "family_name": person.family_name,
            "email": person.email,
            "role": Role.ORDERER.value,
            "employer_codes": [],
            "signatory_name": signatory_name,
            "signatory_personnummer": signatory_pnr,
            **({"signatory_title": signatory_title} if signatory else {}),
            "seeded": True,
        },
    )
    session.add(errand)
    session.flush()
    grant = RoleGrant(
        person_id=person.id,
        employer_id=employer.id,
        role=Role.ORDERER,
        source_errand_id=errand.id,
    )
    session.add(grant)
    session.flush()
    return grant
