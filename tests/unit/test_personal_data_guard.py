"""What production writes to its logs never holds a whole personnummer, wherever in a record
it was put; and the suite's guard (``tests/personal_data_guard.py``) sees one if it did."""

from __future__ import annotations

import io
import logging
import uuid
from types import SimpleNamespace

import pytest
import structlog

from app.logging import configure_logging, new_request_id
from tests.personal_data_guard import PersonalDataGuard, whole_personnummer_in

PNR = "198112189876"


def test_the_guard_tells_a_personnummer_from_other_numbers() -> None:
    assert whole_personnummer_in(f"person {PNR} signed") == [PNR]
    assert whole_personnummer_in("person 811218-9876 signed") == ["811218-9876"]
    assert whole_personnummer_in("employer 5560360793, errand BB-000012345") == []
    assert whole_personnummer_in("person 19811218-****") == []
    assert whole_personnummer_in("person 198112189875") == []  # wrong check digit


def _written(**event: object) -> str:
    stream = io.StringIO()
    configure_logging(json_logs=True, stream=stream)
    try:
        structlog.get_logger("test").info("looked up", **event)
        logging.getLogger("library").info("plain %s", event)
    finally:
        configure_logging(json_logs=False)
    return stream.getvalue()


def test_a_personnummer_is_masked_in_text_lists_mappings_and_numbers() -> None:
    written = _written(
        text=f"subject {PNR}",
        listed=[PNR, "x"],
        nested={"person": {"pnr": PNR}},
        number=int(PNR),
    )
    assert "19811218-****" in written
    assert whole_personnummer_in(written) == []


def test_the_guard_keeps_a_line_that_would_be_written_unmasked() -> None:
    guard = PersonalDataGuard()
    record = logging.LogRecord("library", logging.INFO, __file__, 1, "%s", (PNR,), None)
    guard.handle(record)
    # the product's formatter masks it: nothing to keep
    assert guard.take() == []
    guard.setFormatter(logging.Formatter("%(message)s"))  # a writer that does not mask
    guard.handle(record)
    assert [find.startswith("log library") for find in guard.take()] == [True]


class _Person:
    def __repr__(self) -> str:
        return f"Person(personnummer={PNR!r})"


def test_an_object_logged_as_it_is_is_written_masked() -> None:
    written = _written(person=_Person())
    assert "Person(personnummer='19811218-****')" in written
    assert whole_personnummer_in(written) == []


def test_a_new_request_id_never_reads_as_a_personnummer(monkeypatch: pytest.MonkeyPatch) -> None:
    """Request ids are logged unmasked: one whose digits read as a personnummer is drawn again."""
    drawn = iter(["73fd97bfdff2401890369deb2afdd674", "5de4f2c53d1d46a5b9cbaeccb46835c5"])
    monkeypatch.setattr(uuid, "uuid4", lambda: SimpleNamespace(hex=next(drawn)))
    assert new_request_id() == "5de4f2c53d1d46a5b9cbaeccb46835c5"
