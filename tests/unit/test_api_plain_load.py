"""The checks' shortcut past webargs (``PlainLoad.plain_load``) gives exactly what the
schema's ``load`` gives, and only for bodies ``load`` accepts (hypothesis)."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from hypothesis import given, settings
from hypothesis import strategies as st

from app.access.authority import Access
from app.access.models import SelfService
from app.api.schemas import BatchIn, CheckIn, PlainLoad

_texts = st.one_of(
    st.text(max_size=14),
    st.from_regex(r"[0-9]{12}\n?", fullmatch=True),
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,21}", fullmatch=True),
    st.sampled_from([s.value for s in SelfService] + [a.value for a in Access]),
)
_values = st.one_of(_texts, st.integers(), st.none(), st.booleans(), st.lists(st.integers()))
_KEYS = ["subject", "service", "access", "employer_code"]
_valid_check = st.fixed_dictionaries(
    {
        "subject": st.from_regex(r"[0-9]{12}", fullmatch=True),
        "service": st.sampled_from([s.value for s in SelfService]),
        "access": st.sampled_from([a.value for a in Access]),
        "employer_code": st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,19}", fullmatch=True),
    }
)
_any_check = st.one_of(
    _valid_check,
    st.dictionaries(st.sampled_from([*_KEYS, "extra"]), _values, max_size=5),
    _values,
)


def _load(schema: ma.Schema, data: Any) -> Any:
    try:
        return schema.load(data)
    except ma.ValidationError:
        return None


def _agrees(schema: PlainLoad, data: Any) -> None:
    plain = schema.plain_load(data)
    if plain is not None:
        assert plain == _load(schema, data)


@settings(max_examples=300, deadline=None)
@given(_any_check)
def test_a_check_body_is_taken_plainly_only_as_load_takes_it(data: Any) -> None:
    _agrees(CheckIn(), data)


@settings(max_examples=100, deadline=None)
@given(_valid_check)
def test_a_plainly_valid_check_takes_the_shortcut(data: dict[str, str]) -> None:
    assert CheckIn().plain_load(data) is not None


@settings(max_examples=150, deadline=None)
@given(st.one_of(st.fixed_dictionaries({"checks": st.lists(_any_check, max_size=102)}), _values))
def test_a_batch_is_taken_plainly_only_as_load_takes_it(data: Any) -> None:
    _agrees(BatchIn(), data)
