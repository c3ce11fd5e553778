"""Every code that can reach a page has a Swedish label and an English translation."""

from __future__ import annotations

import enum
from collections.abc import Mapping

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

from app import labels
from app.access.roster import Conflict
from app.privacy.models import ViewKind
from app.registrations.codes import CheckName, Finding, ProblemCode
from app.registrations.status import NextStep, SubmitterStatus
from workflows.states import Action, Refusal
from workflows.verification import CONFLICT_FINDINGS

EN_CATALOG = labels.__file__.replace("labels.py", "translations/en/LC_MESSAGES/messages.po")

LABELLED: list[tuple[type[enum.StrEnum], Mapping[object, object]]] = [
    (ProblemCode, labels.PROBLEM_MESSAGES),
    (Finding, labels.FINDING_LABELS),
    (CheckName, labels.CHECK_LABELS),
    (Refusal, labels.REFUSAL_LABELS),
    (SubmitterStatus, labels.SUBMITTER_STATUS_LABELS),
    (NextStep, labels.NEXT_STEP_LABELS),
    (ViewKind, labels.VIEW_LABELS),
]


@pytest.fixture(scope="module")
def english() -> Catalog:
    with open(EN_CATALOG, "rb") as f:
        return read_po(f)


@pytest.mark.parametrize(("codes", "names"), LABELLED, ids=[c.__name__ for c, _ in LABELLED])
def test_every_member_has_a_swedish_label(
    codes: type[enum.StrEnum], names: Mapping[object, object]
) -> None:
    assert set(names) == set(codes)
    assert all(str(names[code]).strip() for code in codes)


@pytest.mark.parametrize(("codes", "names"), LABELLED, ids=[c.__name__ for c, _ in LABELLED])
def test_every_member_has_an_english_label(
    english: Catalog, codes: type[enum.StrEnum], names: Mapping[object, object]
) -> None:
    missing = [
        code.value
        for code in codes
        if not ((entry := english.get(str(names[code]))) and entry.string and not entry.fuzzy)
    ]
    assert not missing, f"{codes.__name__} members without an English label: {missing}"


def test_every_conflict_of_the_roster_is_a_finding() -> None:
    assert set(CONFLICT_FINDINGS) == set(Conflict)


def test_every_action_has_a_line_in_the_history() -> None:
    assert {a.value for a in Action} <= set(labels.HISTORY_LABELS)


def test_a_code_that_is_no_member_is_refused_not_shown() -> None:
    with pytest.raises(ValueError):
        labels.problem_message("made_up")
