"""Swedish id numbers as the forms and the pipeline accept them."""

from __future__ import annotations

import pytest

from app.core.ids import (
    InvalidIdNumber,
    is_coordination_number,
    mask_personnummer,
    mask_personnummer_in_text,
    normalise_orgnr,
    normalise_personnummer,
)


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("19811218-9876", "198112189876"),  # 12 digits with separator
        ("198112189876", "198112189876"),  # 12 digits
        ("811218-9876", "198112189876"),  # 10 digits: century from the date
        ("8112189876", "198112189876"),
        ("121212+1212", "191212121212"),  # '+': over 100 years old
        ("701063-9909", "197010639909"),  # samordningsnummer (day + 60)
        ("19701063-9909", "197010639909"),
        (" 19811218-9876 ", "198112189876"),
    ],
)
def test_valid_personnummer_is_stored_with_century(given: str, stored: str) -> None:
    assert normalise_personnummer(given) == stored


@pytest.mark.parametrize(
    "given",
    [
        "19811218-9877",  # wrong check digit
        "19811318-9876",  # month 13
        "701093-9909",  # samordningsnummer with day 33
        "1981121898",  # too short
        "abcdefgh-ijkl",
        "",
    ],
)
def test_invalid_personnummer_is_refused(given: str) -> None:
    with pytest.raises(InvalidIdNumber):
        normalise_personnummer(given)


def test_samordningsnummer_is_recognised() -> None:
    assert is_coordination_number("197010639909")
    assert not is_coordination_number("198112189876")


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("202100-5489", "2021005489"),
        ("2021005489", "2021005489"),
        ("16202100-5489", "2021005489"),  # 12-digit form with the '16' prefix
        ("212000-0142", "2120000142"),
    ],
)
def test_valid_orgnr(given: str, stored: str) -> None:
    assert normalise_orgnr(given) == stored


@pytest.mark.parametrize(
    "given",
    [
        "202100-5488",  # wrong check digit
        "551234-5674",  # digits 3–4 below 20: not an organisation number
        "811218-9876",  # a personnummer (sole trader) is not accepted as an employer
        "12345",
        "",
    ],
)
def test_invalid_orgnr_is_refused(given: str) -> None:
    with pytest.raises(InvalidIdNumber):
        normalise_orgnr(given)


def test_masking_hides_the_last_four_digits() -> None:
    assert mask_personnummer("198112189876") == "19811218-****"
    assert mask_personnummer("garbage") == "****"


def test_masking_in_free_text_covers_every_written_form() -> None:
    text = "login 198112189876, 19811218-9876 and 811218-9876 and 121212+1212"
    masked = mask_personnummer_in_text(text)
    assert "9876" not in masked and "1212+1212" not in masked
    assert "19811218-****" in masked


@pytest.mark.parametrize(
    "hostile",
    [
        "٢٠٠٠٠١٠٢٩٨٣٤",  # Arabic-Indic digits
        "۲۰۰۰۰۱۰۲۹۸۳۴",  # Eastern Arabic-Indic digits
        "200001029834\x00",
        "20000102\u202e9834",  # a right-to-left override
        "2000\u200b01029834",  # a zero-width space
    ],
)
def test_only_ascii_digits_make_an_identity_number(hostile: str) -> None:
    """Issue 14: digits of other scripts passed the check and made a second "David"."""
    with pytest.raises(InvalidIdNumber):
        normalise_personnummer(hostile)


def test_full_width_digits_are_the_same_person() -> None:
    assert normalise_personnummer("２００００１０２－９８３４") == "200001029834"
    assert normalise_orgnr("２０２１００５４８９") == "2021005489"


def test_age_from_a_personnummer_and_a_samordningsnummer() -> None:
    from datetime import date

    from app.core.ids import age_on

    assert age_on("201605059805", date(2031, 5, 4)) == 14
    assert age_on("201605059805", date(2031, 5, 5)) == 15
    assert age_on("201605659809", date(2031, 5, 5)) == 15  # samordningsnummer: day + 60
