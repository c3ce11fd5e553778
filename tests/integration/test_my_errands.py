""" "Mina ärenden": the submitter's errands in pages, newest first, and a search over them."""

from __future__ import annotations

import re
from datetime import timedelta

from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.registrations.models import Errand
from tests.conftest import DAVID, login
from tests.factories import in_review, like_in_review, registration_draft


def _references(page: str) -> list[str]:
    return re.findall(r'href="/mina-arenden/(BB-[^"]+)"', page)


def _link(page: str, rel: str) -> str | None:
    found = re.search(rf'<a href="([^"]+)" rel="{rel}"', page)
    return found.group(1).replace("&amp;", "&") if found else None


def _many(session: Session, n: int) -> list[Errand]:
    """David's errand in review and ``n`` more like it, created over some days (ties
    included, which the id orders)."""
    first = in_review(session)
    errands = [first, *like_in_review(session, first, [f"19780202{i:04d}" for i in range(n)])]
    for i, errand in enumerate(errands):
        errand.created_dt = first.created_dt - timedelta(hours=i % 9)
    session.commit()
    return errands


def test_my_errands_come_in_pages_newest_first_and_each_once(
    client: FlaskClient, session: Session
) -> None:
    errands = _many(session, 56)
    every = session.scalars(  # with those the demo seed gave David
        select(Errand).where(Errand.submitted_by_id == errands[0].submitted_by_id)
    ).all()
    assert 56 < len(every) <= 75
    expected = [
        e.reference for e in sorted(every, key=lambda e: (e.created_dt, e.id), reverse=True)
    ]
    login(client, session, DAVID)
    path: str | None = "/mina-arenden"
    pages: list[str] = []
    seen: list[str] = []
    while path is not None:
        pages.append(path)
        page = client.get(path).get_data(as_text=True)
        seen += _references(page)
        assert f"Sida {len(pages)} av 3" in page
        path = _link(page, "next")
    assert seen == expected and len(pages) == 3
    # Back from the last page: the same second page.
    back = _link(page, "prev")
    assert back is not None
    assert _references(client.get(back).get_data(as_text=True)) == expected[25:50]


def test_my_errands_search_by_reference_person_and_employer(
    client: FlaskClient, session: Session
) -> None:
    errands = _many(session, 30)
    draft = registration_draft(
        session, personnummer="199001019810", given_name="Gustav", family_name="Grönlund"
    )
    session.commit()
    login(client, session, DAVID)

    def found(query: str) -> list[str]:
        return _references(client.get("/mina-arenden", query_string={"sok": query}).text)

    assert found(errands[7].reference) == [errands[7].reference]
    assert found(errands[7].reference.lower()[3:]) == [errands[7].reference]
    assert found("grönlund") == [draft.reference]
    assert len(found("Provverket")) == 25  # every one: a page of them
    assert "Sida 1 av 2" in client.get("/mina-arenden?sok=Provverket").text
    assert found("202100-4920") == found("Provverket")
    nothing = client.get("/mina-arenden?sok=Finns+inte_%25").text
    assert _references(nothing) == [] and "Inga ärenden matchar sökningen." in nothing
