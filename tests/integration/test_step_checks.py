"""Checks at the step where the data is entered: a signatory not in the signatory register
and a choice of closed codes only are said at once (the person may go on; the caseworker
sees the first); conditional fields apply only when chosen; "Jag tar bort mig själv" takes
the person from the login; "Spara och fortsätt senare" keeps whatever is typed."""

from __future__ import annotations

from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.registrations.data import RegistrationDraft
from app.registrations.models import Errand
from tests.conftest import ANNA, DAVID, EVA, login
from tests.factories import in_review
from tests.support import REGISTRATION, go_on_despite_warning, post_step

NOT_IN_REGISTER = "finns inte i firmateckningsregistret för Provverket"


def _errand(session: Session, reference: str) -> Errand:
    session.expire_all()
    return session.scalars(select(Errand).where(Errand.reference == reference)).one()


def _draft_at(client: FlaskClient, orgnr: str, kind: str = "anmalan-behorig-bestallare") -> str:
    response = post_step(client, f"/{kind}", {"orgnr": orgnr})
    return str(response.headers["Location"].rsplit("/", 1)[0])


PERSON = {
    k: REGISTRATION[k] for k in ("personnummer", "given_name", "family_name", "email", "role")
} | {"title": "HR-chef", "phone": ""}


def test_a_signatory_not_in_the_register_is_said_at_once_and_the_form_goes_on(
    client: FlaskClient, session: Session
) -> None:
    login(client, session, DAVID)
    base = _draft_at(client, "2021004920")
    post_step(client, f"{base}/arbetsgivarkoder", {"scope": "all"})
    post_step(client, f"{base}/person", PERSON)
    anna_signs = {
        "signatory_name": "Anna Andersson",
        "signatory_personnummer": ANNA,
        "signatory_title": "Chef",
    }
    response = post_step(client, f"{base}/underskrift", anna_signs)
    assert response.headers["Location"] == f"{base}/underskrift"
    assert NOT_IN_REGISTER in client.get(f"{base}/underskrift").get_data(as_text=True)
    response = go_on_despite_warning(client, f"{base}/underskrift", anna_signs)
    assert response.headers["Location"] == f"{base}/granska"

    # Eva is in the register: no warning, straight on.
    eva_signs = {**anna_signs, "signatory_name": "Eva Ek", "signatory_personnummer": EVA}
    response = post_step(client, f"{base}/underskrift", eva_signs)
    assert response.headers["Location"] == f"{base}/granska"
    assert NOT_IN_REGISTER not in client.get(f"{base}/underskrift").get_data(as_text=True)


def test_the_caseworker_sees_a_signatory_not_in_the_register(session: Session) -> None:
    errand = in_review(session, signatory_personnummer=ANNA, signatory_name="Anna Andersson")
    check = next(c for c in errand.checks if c.name == "signatory")
    assert (check.outcome.value, check.findings) == ("flagged", ["not_in_signatory_register"])


def test_choosing_only_closed_codes_warns(client: FlaskClient, session: Session) -> None:
    login(client, session, ANNA)
    base = _draft_at(client, "202100-5489")
    page = client.get(f"{base}/arbetsgivarkoder").get_data(as_text=True)
    # The code list applies only to "Bara de koder jag väljer" (shown without JavaScript).
    assert 'data-shown-when="scope=chosen"' in page and 'value="A1003"' in page
    assert "js/conditional.js" in page
    closed = {"scope": "chosen", "codes": ["A1003"]}
    response = post_step(client, f"{base}/arbetsgivarkoder", closed)
    assert response.headers["Location"] == f"{base}/arbetsgivarkoder"
    assert "Alla koder du valt är avslutade" in client.get(response.headers["Location"]).get_data(
        as_text=True
    )
    gone_on = go_on_despite_warning(client, f"{base}/arbetsgivarkoder", closed)
    assert gone_on.headers["Location"] == f"{base}/person"
    mixed = {"scope": "chosen", "codes": ["A1001", "A1003"]}
    assert post_step(client, f"{base}/arbetsgivarkoder", mixed).headers["Location"] == (
        f"{base}/person"
    )
    # Codes ticked but "all codes" chosen: the codes do not apply and are ignored.
    post_step(client, f"{base}/arbetsgivarkoder", {"scope": "all", "codes": ["A1003"]})
    draft = _errand(session, base.rsplit("/", 1)[-1]).progress
    assert isinstance(draft, RegistrationDraft) and draft.all_codes


def test_removing_oneself_takes_the_person_from_the_login(
    client: FlaskClient, session: Session
) -> None:
    login(client, session, ANNA)
    base = _draft_at(client, "202100-5489", "ta-bort-behorig-bestallare")
    page = client.get(f"{base}/bestallare").get_data(as_text=True)
    assert "Du tar bort dig själv: <bdi>Anna Andersson</bdi>" in page
    assert 'data-shown-when="reason=left"' in page
    response = post_step(client, f"{base}/bestallare", {"reason": "self"})
    assert response.headers["Location"] == f"{base}/ersattare"
    orderer = _errand(session, base.rsplit("/", 1)[-1]).progress.orderer  # type: ignore[union-attr]
    assert (orderer.personnummer, orderer.given_name, orderer.family_name) == (
        ANNA,
        "Anna",
        "Andersson",
    )
    # Someone who left: the fields are needed.
    refused = post_step(client, f"{base}/bestallare", {"reason": "left"})
    assert refused.status_code == 200 and "Ange personnummer." in refused.get_data(as_text=True)


def test_save_and_continue_later_keeps_whatever_is_typed(
    client: FlaskClient, session: Session
) -> None:
    login(client, session, DAVID)
    base = _draft_at(client, "2021004920")
    post_step(client, f"{base}/arbetsgivarkoder", {"scope": "all"})
    half = {**PERSON, "personnummer": "1985070", "family_name": "Fa\x00lk", "email": "fredrik@"}
    response = post_step(client, f"{base}/person", {**half, "save_and_exit": "1"})
    assert response.headers["Location"] == "/mina-arenden"
    errand = _errand(session, base.rsplit("/", 1)[-1])
    assert errand.progress.next_step() is not None and errand.progress.next_step().value == "person"  # type: ignore[union-attr]
    # Back from Mina ärenden: the typed values are there, not yet checked.
    page = client.get(f"{base}/person").get_data(as_text=True)
    assert 'value="1985070"' in page and 'value="Falk"' in page and 'value="fredrik@"' in page
    assert client.get(f"{base}/granska").headers["Location"] == f"{base}/person"
    # Going on checks them.
    checked = post_step(client, f"{base}/person", half)
    assert checked.status_code == 200
    assert "Ange en giltig e-postadress" in checked.get_data(as_text=True)
    done = post_step(client, f"{base}/person", PERSON)
    assert done.headers["Location"] == f"{base}/underskrift"
    assert _errand(session, base.rsplit("/", 1)[-1]).progress.typed == {}
