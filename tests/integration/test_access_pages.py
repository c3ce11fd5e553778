"""Hantera behörigheter through the pages: each role sees and does what it should, and a
guessed id in a URL or a form from another employer is 404 (rules 2, 3 and 5)."""

from __future__ import annotations

import re

from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.access.models import (
    Employer,
    EmployerCode,
    PermissionRequest,
    Person,
    Role,
    RoleGrant,
    SelfService,
    ServicePermission,
)
from app.notifications.models import EmailMessage
from tests.conftest import ANNA, DAVID, login, person_id
from tests.support import csrf_token

BERTIL = "199001019810"
CECILIA = "197205119824"
PAGE = "/hantera-behorigheter"


def _code(session: Session, code: str) -> int:
    return session.scalars(select(EmployerCode.id).where(EmployerCode.code == code)).one()


def _bertil_grant(session: Session) -> int:
    return session.scalars(select(RoleGrant.id).where(RoleGrant.role == Role.ADMINISTRATOR)).one()


def test_an_orderer_sees_users_and_roles_and_appoints_an_administrator(
    client: FlaskClient, session: Session
) -> None:
    login(client, session, ANNA)
    page = client.get(PAGE).get_data(as_text=True)
    assert "Carlsson, Cecilia" in page and "Bertil Berg" in page
    assert "Utse administratör" in page
    assert "Cecilia" in client.get(f"{PAGE}?sok=cecilia&tjanst=invoices").get_data(as_text=True)
    assert "Carlsson" not in client.get(f"{PAGE}?sok=nobody").get_data(as_text=True)
    form = client.get(f"{PAGE}/administratorer/ny").get_data(as_text=True)
    response = client.post(
        f"{PAGE}/administratorer/ny",
        data={
            "csrf_token": csrf_token(form),
            "personnummer": "19870315-9809",
            "given_name": "Frida",
            "family_name": "Fors",
            "email": "frida.fors@testmyndighet.example",
            "scope": "chosen",
            "codes": [str(_code(session, "A1002"))],
            "reason": "Ny på Regionkontor Norr",
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    grant = session.scalars(
        select(RoleGrant).where(RoleGrant.contact_email == "frida.fors@testmyndighet.example")
    ).one()
    assert grant.role is Role.ADMINISTRATOR and [c.code for c in grant.codes] == ["A1002"]


def test_an_administrator_grants_two_permissions_in_one_email_and_cannot_appoint(
    client: FlaskClient, session: Session
) -> None:
    login(client, session, BERTIL)
    assert client.get(f"{PAGE}/administratorer/ny").status_code == 404
    cecilia = person_id(session, CECILIA)
    page = client.get(f"{PAGE}/anvandare/{cecilia}").get_data(as_text=True)
    assert "nedlagd" not in page or "fakturaspecifikationer" in page
    current = [
        f"{p.service.value}:{p.employer_code_id}"
        for p in session.scalars(
            select(ServicePermission).where(
                ServicePermission.person_id == cecilia, ServicePermission.valid_to_dt.is_(None)
            )
        )
    ]
    a1001, a1002 = _code(session, "A1001"), _code(session, "A1002")
    wanted = [*current, f"statistics:{a1001}", f"pension_cases:{a1002}"]
    response = client.post(
        f"{PAGE}/anvandare/{cecilia}",
        data={"csrf_token": csrf_token(page), "permissions": wanted, "reason": "Nya uppgifter"},
    )
    assert response.status_code == 302
    emails = session.scalars(
        select(EmailMessage).where(EmailMessage.template == "permissions_changed")
    ).all()
    assert len(emails) == 1 and "Pensionsärenden, A1002" in emails[0].text_body
    # A closed code offers invoices only; a forged box for it is refused.
    closed = _code(session, "A1003")
    assert f"statistics:{closed}" not in page
    client.post(
        f"{PAGE}/anvandare/{cecilia}",
        data={"csrf_token": csrf_token(page), "permissions": [*wanted, f"statistics:{closed}"]},
    )
    assert not session.scalar(
        select(ServicePermission.id).where(
            ServicePermission.employer_code_id == closed,
            ServicePermission.service == SelfService.STATISTICS,
        )
    )
    # Nobody changes their own permissions.
    own = client.post(
        f"{PAGE}/anvandare/{person_id(session, BERTIL)}",
        data={"csrf_token": csrf_token(page), "permissions": [f"statistics:{a1001}"]},
    )
    assert own.status_code == 200
    assert "Du kan inte ändra dina egna behörigheter." in own.get_data(as_text=True)


def test_another_employers_ids_are_not_found(client: FlaskClient, session: Session) -> None:
    cecilia = person_id(session, CECILIA)
    request = PermissionRequest(
        person_id=cecilia,
        employer_id=session.get_one(EmployerCode, _code(session, "A1001")).employer_id,
        employer_code_id=_code(session, "A1001"),
        service=SelfService.STATISTICS,
    )
    session.add(request)
    session.commit()
    login(client, session, DAVID)
    token = csrf_token(client.get(PAGE).get_data(as_text=True))
    assert "Cecilia" not in client.get(PAGE).get_data(as_text=True)
    assert client.get(f"{PAGE}/anvandare/{cecilia}").status_code == 404
    assert (
        client.post(
            f"{PAGE}/anvandare/{cecilia}/ta-bort-alla", data={"csrf_token": token}
        ).status_code
        == 404
    )
    grant = _bertil_grant(session)
    assert client.get(f"{PAGE}/administratorer/{grant}").status_code == 404
    assert (
        client.post(
            f"{PAGE}/administratorer/{grant}/ta-bort", data={"csrf_token": token}
        ).status_code
        == 404
    )
    assert (
        client.post(
            f"{PAGE}/forfragningar/{request.id}", data={"csrf_token": token, "decision": "grant"}
        ).status_code
        == 404
    )
    other_code = _code(session, "A1001")
    assert (
        client.post(
            f"{PAGE}/anvandare/{person_id(session, DAVID)}",
            data={"csrf_token": token, "permissions": [f"invoices:{other_code}"]},
        ).status_code
        == 200
    )
    assert not session.scalar(
        select(ServicePermission.id).where(
            ServicePermission.employer_code_id == other_code,
            ServicePermission.person_id == person_id(session, DAVID),
        )
    )


def test_a_user_sees_their_permissions_and_asks_for_another(
    client: FlaskClient, session: Session
) -> None:
    login(client, session, CECILIA)
    page = client.get(PAGE).get_data(as_text=True)
    assert "Dina behörigheter" in page and "Fakturor och fakturaspecifikationer" in page
    assert page.count("Anna Andersson") == 1 and "anna.andersson@testmyndighet.example" in page
    assert "Lägg till användare" not in page
    assert client.get(f"{PAGE}/forfragningar").status_code == 404
    assert client.get(f"{PAGE}/ny-anvandare").status_code == 404
    response = client.post(
        f"{PAGE}/be-om-behorighet",
        data={
            "csrf_token": csrf_token(page),
            "service": "statistics",
            "code_id": str(_code(session, "A1002")),
            "message": "Till årsrapporten",
        },
    )
    assert response.status_code == 302
    assert session.scalars(select(PermissionRequest)).one().service is SelfService.STATISTICS
    english = client.get(f"{PAGE}?lang=en").get_data(as_text=True)
    assert "Your permissions" in english


def test_a_person_at_two_employers_chooses_one_and_switches(
    client: FlaskClient, session: Session
) -> None:
    login(client, session, "198703159817")  # Greta: a user at Statens testmyndighet and Provverket
    page = client.get(PAGE).get_data(as_text=True)
    assert "Vilken arbetsgivare vill du hantera?" in page and "Pensionsärenden" not in page
    employers = {e.name: e.id for e in session.scalars(select(Employer).order_by(Employer.id))}
    token = csrf_token(page)
    client.post(
        f"{PAGE}/arbetsgivare",
        data={"csrf_token": token, "employer_id": employers["Statens testmyndighet"]},
    )
    page = client.get(PAGE).get_data(as_text=True)
    assert "Pensionsärenden" in page and "Anna Andersson" in page and "David Dahl" not in page
    # The switch is in the site header on every page, and leads back to that page.
    errands = client.get("/mina-arenden").get_data(as_text=True)
    header = errands[errands.index("<header") : errands.index("</header>")]
    assert 'id="header-employer"' in header and "Provverket" in header
    switched = client.post(
        f"{PAGE}/arbetsgivare",
        data={"csrf_token": token, "employer_id": employers["Provverket"], "next": "/mina-arenden"},
    )
    assert switched.headers["Location"] == "/mina-arenden"
    page = client.get(PAGE).get_data(as_text=True)
    assert "David Dahl" in page and "Anna Andersson" not in page
    # From a page of the previous employer's own, to the new employer's overview.
    person_page = client.post(
        f"{PAGE}/arbetsgivare",
        data={
            "csrf_token": token,
            "employer_id": employers["Provverket"],
            "next": f"{PAGE}/anvandare/1",
        },
    )
    assert person_page.headers["Location"] == PAGE
    # Nothing chosen: told so, nothing changes.
    client.post(f"{PAGE}/arbetsgivare", data={"csrf_token": token, "employer_id": ""})
    page = client.get(PAGE).get_data(as_text=True)
    assert "Välj en arbetsgivare." in page and "David Dahl" in page
    # An employer she has nothing at is not offered.
    refused = client.post(
        f"{PAGE}/arbetsgivare",
        data={"csrf_token": token, "employer_id": employers["Exempelhögskolan"]},
    )
    assert refused.status_code == 404


def test_the_overview_links_to_the_review(client: FlaskClient, session: Session) -> None:
    """Rule 11: from the overview the orderer reaches "Gå igenom behörigheterna"."""
    login(client, session, ANNA)
    page = client.get(PAGE).get_data(as_text=True)
    review = re.search(r'href="(/hantera-behorigheter/granska/\d+)"', page)
    assert review, "no link to the review"
    assert "Gå igenom behörigheterna" in client.get(review.group(1)).get_data(as_text=True)


def test_emails_are_in_the_language_the_person_logged_in_with(
    client: FlaskClient, session: Session
) -> None:
    """Rule 5: Greta logs in in English; Bertil's change reaches her in English, while
    Cecilia, who never chose, is told in Swedish."""
    greta = person_id(session, "198703159817")
    client.get("/?lang=en")
    login(client, session, "198703159817")
    assert session.get_one(Person, greta).language == "en"
    client.get("/?lang=sv")
    client.post(
        "/logga-ut", data={"csrf_token": csrf_token(client.get("/").get_data(as_text=True))}
    )
    login(client, session, BERTIL)
    codes = {c.code: c.id for c in session.scalars(select(EmployerCode))}
    for person, code in ((greta, "A1001"), (person_id(session, CECILIA), "A1002")):
        page = client.get(f"{PAGE}/anvandare/{person}").get_data(as_text=True)
        response = client.post(
            f"{PAGE}/anvandare/{person}",
            data={"csrf_token": csrf_token(page), "permissions": [f"statistics:{codes[code]}"]},
        )
        assert response.status_code == 302
    emails = {
        e.to_address: e
        for e in session.scalars(
            select(EmailMessage).where(EmailMessage.template == "permissions_changed")
        )
    }
    greta_email = emails["greta.gron@lonecenter.example"]
    assert greta_email.language == "en"
    assert greta_email.subject == "Your permissions at Statens testmyndighet have changed"
    assert "Statistics and reports, A1001" in greta_email.text_body
    cecilia_email = emails["cecilia.carlsson@testmyndighet.example"]
    assert cecilia_email.language == "sv" and "har ändrats" in cecilia_email.subject


def test_removals_are_confirmed_on_a_page_of_their_own(
    client: FlaskClient, session: Session
) -> None:
    login(client, session, ANNA)
    cecilia, grant = person_id(session, CECILIA), _bertil_grant(session)
    token = csrf_token(client.get(PAGE).get_data(as_text=True))
    for url, confirm in (
        (f"{PAGE}/anvandare/{cecilia}/ta-bort-alla", "Ja, ta bort alla behörigheter"),
        (f"{PAGE}/administratorer/{grant}/ta-bort", "Ja, ta bort administratören"),
    ):
        asked = client.post(url, data={"csrf_token": token, "reason": "Slutat"})
        text = asked.get_data(as_text=True)
        assert asked.status_code == 200 and confirm in text and "Avbryt" in text
        assert 'name="reason" value="Slutat"' in text
    session.expire_all()
    assert session.get_one(RoleGrant, grant).valid_to_dt is None
    done = client.post(
        f"{PAGE}/administratorer/{grant}/ta-bort",
        data={"csrf_token": token, "reason": "Slutat", "confirmed": "1"},
    )
    assert done.status_code == 302
    session.expire_all()
    assert session.get_one(RoleGrant, grant).valid_to_dt is not None


def test_search_text_the_database_cannot_store_finds_nothing(
    client: FlaskClient, session: Session
) -> None:
    login(client, session, ANNA)
    assert client.get(f"{PAGE}?sok=Ceci%00lia").status_code == 200
