"""The caseworker queue: claiming, lists and filters, decisions, retries, notes, history,
the employer lookup, and two approvals for removing an employer's last orderer."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.casework import service as casework
from app.core.agents import Agent, AgentKind
from app.db import utcnow
from app.registrations import service as registrations
from app.registrations.codes import Finding
from app.registrations.models import (
    MINE_OPEN,
    Channel,
    CheckOutcome,
    Errand,
    ErrandComment,
    ErrandKind,
)
from tests.conftest import ANNA, INGRID, JOHAN, login, person_id
from tests.factories import (
    caseworker,
    in_review,
    like_in_review,
    public_base_url,
    received_by_esignature,
    registration_draft,
    verifiers,
)
from tests.support import csrf_token
from workflows import pipeline
from workflows.outbox import OutboxMessage
from workflows.state_machine import transition
from workflows.states import Action, ErrandState, IllegalTransition

SYSTEM = Agent.system("test")


def test_two_caseworkers_cannot_hold_the_same_errand(session: Session) -> None:
    errand = in_review(session)
    assert casework.claim(session, caseworker(session, INGRID), errand)
    assert not casework.claim(session, caseworker(session, JOHAN), errand)
    assert errand.assigned_staff_id == caseworker(session, INGRID).id


def test_only_the_holder_decides(session: Session) -> None:
    errand = in_review(session)
    with pytest.raises(casework.NotYourErrand):
        casework.approve_errand(session, caseworker(session, INGRID), errand)
    casework.claim(session, caseworker(session, INGRID), errand)
    with pytest.raises(casework.NotYourErrand):
        casework.reject_errand(
            session,
            caseworker(session, JOHAN),
            errand,
            casework.RejectionReason.OTHER,
            "nej",
            base_url=public_base_url(),
        )
    with pytest.raises(casework.NotYourErrand):
        casework.release(session, caseworker(session, JOHAN), errand)
    casework.reassign(session, caseworker(session, INGRID), errand, caseworker(session, JOHAN).id)  # type: ignore[arg-type]
    assert casework.approve_errand(session, caseworker(session, JOHAN), errand)
    assert errand.state is ErrandState.APPROVED


def test_rejection_keeps_its_coded_reason(session: Session) -> None:
    errand = in_review(session)
    agent = caseworker(session, INGRID)
    casework.claim(session, agent, errand)
    casework.reject_errand(
        session,
        agent,
        errand,
        casework.RejectionReason.SIGNATORY_NOT_ENTITLED,
        "Eva Ek kan inte teckna firma.",
        base_url=public_base_url(),
    )
    assert errand.state is ErrandState.REJECTED
    assert errand.decision_code == "signatory_not_entitled"
    events = audit.history(session, errand)
    assert events[-1].action == "errand.reject"
    assert events[-1].data["reason"] == "signatory_not_entitled"


def _lists(session: Session, agent: Agent, **filters: object) -> dict[str, list[str]]:
    return {
        which.value: [
            s.reference
            for s in casework.queue(
                session, agent, casework.QueueFilter(list=which, **filters)
            ).rows
        ]  # type: ignore[arg-type]
        for which in casework.QueueList
    }


def test_each_list_holds_what_its_name_says(session: Session) -> None:
    ingrid = caseworker(session, INGRID)
    unassigned = in_review(session)
    mine = in_review(
        session, personnummer="198112189876", given_name="Anna", family_name="Andersson"
    )
    casework.claim(session, ingrid, mine)
    overdue = in_review(
        session, personnummer="199001019810", given_name="Bertil", family_name="Berg"
    )
    overdue.due_dt = utcnow() - timedelta(days=1)
    completion = in_review(
        session, personnummer="197205119824", given_name="Cecilia", family_name="Carlsson"
    )
    transition(session, completion, Action.REQUEST_COMPLETION, ingrid, reason="saknas")
    session.flush()
    lists = _lists(session, ingrid)
    assert lists["mina"] == [mine.reference]
    assert set(lists["otilldelade"]) == {unassigned.reference, overdue.reference}
    assert lists["forsenade"] == [overdue.reference]
    assert lists["komplettering"] == [completion.reference]
    assert lists["fel"] == []
    # Sorted by due date: the overdue one first.
    assert lists["otilldelade"][0] == overdue.reference


def test_filters_and_pages(session: Session) -> None:
    ingrid = caseworker(session, INGRID)
    flagged = in_review(session, signatory_personnummer="198112189876")  # not in the register
    clean = in_review(
        session, personnummer="198112189876", given_name="Anna", family_name="Andersson"
    )
    base = casework.QueueFilter(list=casework.QueueList.UNASSIGNED)

    def pick(**kw: object) -> list[str]:
        f = casework.QueueFilter(**{**base.__dict__, **kw})  # type: ignore[arg-type]
        return [s.reference for s in casework.queue(session, ingrid, f).rows]

    assert pick(checks="flagged") == [flagged.reference]
    assert pick(checks="passed") == [clean.reference]
    assert pick(channel=Channel.PAPER) == []
    assert set(pick(kind=ErrandKind.REGISTRATION)) == {flagged.reference, clean.reference}
    assert pick(employer="provverk") and pick(employer="202100-4920")
    assert pick(employer="Exempelhögskolan") == []
    like_in_review(session, clean, [f"19780202{n:04d}" for n in range(26)])
    first = casework.queue(session, ingrid, base)
    second = casework.queue(session, ingrid, casework.QueueFilter(page=2))
    assert (first.total, first.pages, len(first.rows)) == (28, 2, casework.PAGE_SIZE)
    assert len(second.rows) == 3
    assert not {s.id for s in first.rows} & {s.id for s in second.rows}


def test_the_list_shows_each_errands_checks_to_review(
    client: FlaskClient, session: Session
) -> None:
    flagged = in_review(session, signatory_personnummer="198112189876")  # not in the register
    clean = in_review(
        session, personnummer="198112189876", given_name="Anna", family_name="Andersson"
    )
    to_review = [c for c in flagged.checks if c.outcome is not CheckOutcome.PASSED]
    assert to_review and clean.checks
    assert all(c.outcome is CheckOutcome.PASSED for c in clean.checks)
    login(client, session, INGRID, staff=True)
    page = client.get("/handlaggning").get_data(as_text=True)
    rows = {
        ref: page.split(ref, 2)[2].split("</tr>", 1)[0]
        for ref in (flagged.reference, clean.reference)
    }
    assert f"{len(to_review)} att granska" in rows[flagged.reference]
    assert "Alla utan anmärkning" in rows[clean.reference]
    assert "att granska" not in rows[clean.reference]


def _walk(session: Session, agent: Agent, f: casework.QueueFilter) -> list[casework.QueuePage]:
    """Every page of a list, by its "Nästa" links' cursors from the first page."""
    pages = [casework.queue(session, agent, f)]
    while pages[-1].next is not None:
        last = pages[-1]
        following = replace(f, after=str(last.next), page=last.page + 1)
        pages.append(casework.queue(session, agent, following))
    return pages


@pytest.mark.parametrize("sort", ["due", "age"])
def test_pages_keep_the_order_and_find_every_errand_both_ways(session: Session, sort: str) -> None:
    ingrid = caseworker(session, INGRID)
    first = in_review(session)
    copies = like_in_review(session, first, [f"19780202{n:04d}" for n in range(60)])
    assert first.due_dt is not None and first.received_dt is not None
    for n, errand in enumerate(copies):  # spread out, with ties the id breaks
        errand.due_dt = first.due_dt + timedelta(hours=n % 7)
        errand.received_dt = first.received_dt - timedelta(hours=n % 5)
    session.flush()
    everything = [first, *copies]
    key = (lambda e: e.due_dt) if sort == "due" else (lambda e: e.received_dt)
    expected = [e.id for e in sorted(everything, key=lambda e: (key(e), e.id))]

    pages = _walk(session, ingrid, casework.QueueFilter(sort=sort))
    assert [p.page for p in pages] == [1, 2, 3]
    assert {(p.total, p.pages) for p in pages} == {(61, 3)}
    assert [e.id for p in pages for e in p.rows] == expected
    # By number alone (offset), page 2 is the same page.
    by_number = casework.queue(session, ingrid, casework.QueueFilter(sort=sort, page=2))
    assert [e.id for e in by_number.rows] == [e.id for e in pages[1].rows]
    # "Föregående" from the last page goes back through the same pages.
    back = pages[-1]
    for earlier in reversed(pages[:-1]):
        assert back.previous is not None
        f = casework.QueueFilter(sort=sort, before=str(back.previous), page=back.page - 1)
        back = casework.queue(session, ingrid, f)
        assert (back.page, [e.id for e in back.rows]) == (
            earlier.page,
            [e.id for e in earlier.rows],
        )
    assert back.previous is None
    # A cursor that no page made is ignored: the page by its number, not an error.
    nonsense = casework.QueueFilter(sort=sort, after="'; drop", page=2)
    assert [e.id for e in casework.queue(session, ingrid, nonsense).rows] == expected[25:50]


def test_a_failed_errand_without_dates_is_paged_last(session: Session) -> None:
    ingrid = caseworker(session, INGRID)
    first = in_review(session)
    copies = like_in_review(session, first, [f"19780202{n:04d}" for n in range(30)])
    for errand in copies:
        errand.state = ErrandState.FAILED
        errand.failed_step, errand.failure_reason = "seal", "boom"
    for errand in copies[:3]:  # failed before they were received
        errand.received_dt = errand.due_dt = None
    session.flush()
    pages = _walk(session, ingrid, casework.QueueFilter(list=casework.QueueList.FAILED))
    found = [e.id for p in pages for e in p.rows]
    assert sorted(found) == sorted(e.id for e in copies) and len(set(found)) == len(found)
    assert found[-3:] == [e.id for e in copies[:3]]


def test_the_counts_are_the_lists_lengths(session: Session) -> None:
    ingrid = caseworker(session, INGRID)
    errands = [
        in_review(session, personnummer=p, given_name="Anna", family_name="Andersson")
        for p in ("198112189876", "199001019810", "197205119824")
    ]
    like_in_review(session, errands[0], [f"19780202{n:04d}" for n in range(30)])
    casework.claim(session, ingrid, errands[0])
    errands[1].due_dt = utcnow() - timedelta(days=1)
    casework.claim(session, ingrid, errands[2])
    transition(session, errands[2], Action.REQUEST_COMPLETION, ingrid, reason="saknas")
    errands[1].retrying_step = "apply"
    session.flush()
    counts = casework.counts(session, ingrid)
    for which in casework.QueueList:
        pages = _walk(session, ingrid, casework.QueueFilter(list=which))
        assert counts[which] == sum(len(p.rows) for p in pages) == pages[0].total, which
    assert counts[casework.QueueList.UNASSIGNED] == 31
    assert counts[casework.QueueList.MINE] == 2
    assert counts[casework.QueueList.FAILED] == 1
    # The page takes a list's total from the counts; a filtered list counts its own.
    unassigned = casework.QueueFilter(list=casework.QueueList.UNASSIGNED)
    assert casework.queue(session, ingrid, unassigned, counts).total == 31
    for narrowed in (
        replace(unassigned, kind=ErrandKind.REMOVAL),
        replace(unassigned, channel=Channel.PAPER),
        replace(unassigned, employer="Exempelhögskolan"),
        replace(unassigned, checks="flagged"),
    ):
        assert casework.queue(session, ingrid, narrowed, counts).total == 0, narrowed


def test_failed_step_is_retried(session: Session) -> None:
    errand = in_review(session)
    agent = caseworker(session, INGRID)
    casework.claim(session, agent, errand)
    casework.approve_errand(session, agent, errand)
    transition(session, errand, Action.FAIL, SYSTEM, failed_step="apply", reason="boom")
    assert _lists(session, agent)["fel"] == [errand.reference]
    casework.retry_failed(session, agent, errand)
    assert errand.state is ErrandState.APPROVED and errand.failure_reason is None
    sent = session.scalars(
        select(OutboxMessage.actor_name).where(OutboxMessage.errand_id == errand.id)
    ).all()
    assert sent.count("apply_errand") == 2


def _last_orderer_removal(session: Session) -> Errand:
    """Anna removes herself from Statens testmyndighet, naming nobody in her place."""
    anna = Agent(AgentKind.PERSON, person_id(session, ANNA), ANNA)
    errand = registrations.start_draft(session, anna, ErrandKind.REMOVAL, "2021005489")
    registrations.save_orderer_to_remove(session, anna, errand, "self", ANNA, "Anna", "Andersson")
    registrations.save_replacement(session, anna, errand, None)
    registrations.save_signatory(session, anna, errand, "Anna Andersson", ANNA, "HR")
    received_by_esignature(session, errand)
    pipeline.verify(session, errand.id, SYSTEM, verifiers(session))
    return errand


def test_removing_the_last_orderer_needs_two_caseworkers(session: Session) -> None:
    errand = _last_orderer_removal(session)
    assert casework.needs_second_approval(session, errand)
    ingrid, johan = caseworker(session, INGRID), caseworker(session, JOHAN)
    casework.claim(session, ingrid, errand)
    with pytest.raises(IllegalTransition, match="not acknowledged"):
        casework.approve_errand(session, ingrid, errand)
    notes = {Finding.WOULD_LEAVE_NO_ORDERER.value: "Arbetsgivaren anmäler en ny senare."}
    assert not casework.approve_errand(session, ingrid, errand, notes)
    assert errand.state is ErrandState.IN_REVIEW
    assert errand.first_approved_by_staff_id == ingrid.id
    casework.claim(session, ingrid, errand)
    with pytest.raises(IllegalTransition, match="another caseworker"):
        casework.approve_errand(session, ingrid, errand, notes)
    casework.release(session, ingrid, errand)
    casework.claim(session, johan, errand)
    assert casework.approve_errand(session, johan, errand, notes)
    assert errand.state is ErrandState.APPROVED


def test_employer_lookup_by_orgnr_and_code(client: FlaskClient, session: Session) -> None:
    login(client, session, INGRID, staff=True)
    by_orgnr = client.get("/handlaggning/arbetsgivare?q=202100-5489").get_data(as_text=True)
    assert "Anna Andersson" in by_orgnr and "Bertil Berg" in by_orgnr
    assert "Administratör" in by_orgnr
    by_code = client.get("/handlaggning/arbetsgivare?q=a1003").get_data(as_text=True)
    assert "Statens testmyndighet" in by_code
    assert "Ingen arbetsgivare hittades." in client.get(
        "/handlaggning/arbetsgivare?q=X999"
    ).get_data(as_text=True)


def test_errand_page_claim_comment_and_history(
    client: FlaskClient, session: Session, runtime: object
) -> None:
    errand = in_review(session)
    session.commit()
    login(client, session, INGRID, staff=True)
    page = client.get(f"/handlaggning/{errand.reference}").get_data(as_text=True)
    assert "Ta ärendet" in page and "Godkänn" not in page
    client.post(f"/handlaggning/{errand.reference}/ta", data={"csrf_token": csrf_token(page)})
    client.post(
        f"/handlaggning/{errand.reference}/anteckning",
        data={"csrf_token": csrf_token(page), "body": "Ringde HR, allt stämmer."},
    )
    page = client.get(f"/handlaggning/{errand.reference}").get_data(as_text=True)
    assert "Godkänn" in page and "Ringde HR, allt stämmer." in page
    assert "Taget av handläggare" in page and "Intern anteckning" in page
    assert "Ingrid Handläggare" in page.split("Historik")[-1]  # who, by name
    queue = client.get("/handlaggning?lista=mina").get_data(as_text=True)
    assert errand.reference in queue


def test_only_the_holder_or_a_team_lead_reassigns_a_claimed_errand(session: Session) -> None:
    errand = in_review(session)
    ingrid, johan = caseworker(session, INGRID), caseworker(session, JOHAN)  # Johan leads
    assert casework.claim(session, johan, errand)
    with pytest.raises(casework.NotYourErrand):
        casework.reassign(session, ingrid, errand, ingrid.id)  # taking another's errand
    assert errand.assigned_staff_id == johan.id
    casework.reassign(session, johan, errand, ingrid.id)  # the holder gives it away
    assert errand.assigned_staff_id == ingrid.id
    casework.reassign(session, johan, errand, johan.id)  # a team lead takes it back
    assert errand.assigned_staff_id == johan.id


def test_caseworkers_cannot_open_what_was_never_submitted(
    client: FlaskClient, session: Session
) -> None:
    draft = registration_draft(session)
    with pytest.raises(casework.NotFound):
        casework.errand(session, draft.reference)
    session.commit()
    login(client, session, INGRID, staff=True)
    assert client.get(f"/handlaggning/{draft.reference}").status_code == 404
    token = csrf_token(client.get("/handlaggning").get_data(as_text=True))
    for action, data in (("anteckning", {"body": "Tittade på utkastet."}), ("ta", {})):
        response = client.post(
            f"/handlaggning/{draft.reference}/{action}", data={"csrf_token": token, **data}
        )
        assert response.status_code == 404, action
    session.expire_all()
    assert draft.assigned_staff_id is None
    assert (
        session.scalars(select(ErrandComment).where(ErrandComment.errand_id == draft.id)).all()
        == []
    )


def test_the_own_lists_indexes_cover_exactly_its_open_states() -> None:
    listed = ", ".join(f"'{state.value}'" for state in casework.OPEN_STATES)
    assert f"state IN ({listed})" == MINE_OPEN
