"""An extract of the company register's signatories (Bolagsverket's firmatecknare), as
``behorighet signatories import FILE`` reads it: checked strictly, every bad row reported
with its line number, nothing taken from a file with one bad row.

The file is CSV, UTF-8 (a BOM is fine), separated by ``;``, with this header::

    organisationsnummer;personnummer;namn;befattning;firmateckning;registreringsdatum

one row per signatory of an organisation. An organisation in the file is listed whole:
whoever the local register holds for it and the file does not name has stopped being its
signatory. Organisations the file does not name are left as they are.

* ``organisationsnummer``: ten digits, a hyphen allowed (``202100-5489``);
* ``personnummer``: twelve digits, a hyphen allowed (samordningsnummer too);
* ``namn``: the signatory's name; ``befattning``: their function in the register
  (``Generaldirektör``, ``Styrelseledamot``, ``Verkställande direktör``);
* ``firmateckning``: how they sign, ``ensam`` (alone) or ``två i förening`` (two jointly);
* ``registreringsdatum``: when the register registered them, ``YYYY-MM-DD``.
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass
from datetime import date

from app.core.ids import InvalidIdNumber, normalise_orgnr, normalise_personnummer
from app.core.text import has_unsafe_characters
from app.registers.models import SigningRule

HEADER = (
    "organisationsnummer",
    "personnummer",
    "namn",
    "befattning",
    "firmateckning",
    "registreringsdatum",
)

SIGNING_RULES = {"ensam": SigningRule.ALONE.value, "två i förening": SigningRule.TWO_JOINTLY.value}
"""The extract's ``firmateckning`` and the value kept in ``signing_rule``."""

MAX_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True)
class ExtractRow:
    line: int
    orgnr: str
    personnummer: str
    name: str
    capacity: str
    signing_rule: str
    registered_on: date


@dataclass(frozen=True)
class Extract:
    rows: tuple[ExtractRow, ...]
    sha256: str

    @property
    def orgnrs(self) -> frozenset[str]:
        return frozenset(row.orgnr for row in self.rows)


@dataclass(frozen=True)
class BadRow:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


class BadExtract(ValueError):
    """The file is not an extract this command reads: each problem with its line."""

    def __init__(self, problems: list[BadRow]) -> None:
        super().__init__("; ".join(str(p) for p in problems[:5]))
        self.problems = problems


def read_extract(data: bytes, *, today: date) -> Extract:
    """The extract in ``data``, or ``BadExtract`` naming every bad line (line 1 is the
    header). A registration date after ``today`` is refused."""
    if len(data) > MAX_BYTES:
        raise BadExtract([BadRow(0, f"the file is larger than {MAX_BYTES} bytes")])
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadExtract([BadRow(0, "the file is not UTF-8")]) from None
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=";", strict=True)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise BadExtract([BadRow(1, f"not CSV: {exc}")]) from None
    if header is None or tuple(h.strip() for h in header) != HEADER:
        raise BadExtract([BadRow(1, "the header must be " + ";".join(HEADER))])
    rows: list[ExtractRow] = []
    problems: list[BadRow] = []
    seen: dict[tuple[str, str], int] = {}
    while True:
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problems.append(BadRow(reader.line_num, f"not CSV: {exc}"))
            break
        line = reader.line_num
        if not any(v.strip() for v in values):
            continue  # a blank line
        try:
            row = _row(line, values, today)
        except _Refused as refused:
            problems.append(BadRow(line, str(refused)))
            continue
        first = seen.setdefault((row.orgnr, row.personnummer), line)
        if first != line:
            problems.append(BadRow(line, f"the same signatory as on line {first}"))
            continue
        rows.append(row)
    if problems:
        raise BadExtract(problems)
    if not rows:
        raise BadExtract([BadRow(1, "the file names no signatory")])
    return Extract(tuple(rows), hashlib.sha256(data).hexdigest())


class _Refused(Exception):
    pass


def _row(line: int, values: list[str], today: date) -> ExtractRow:
    if len(values) != len(HEADER):
        raise _Refused(f"{len(values)} columns, {len(HEADER)} expected")
    if any(has_unsafe_characters(v) for v in values):
        raise _Refused("control or invisible characters")
    orgnr_text, pnr_text, name, capacity, rule_text, date_text = (v.strip() for v in values)
    try:
        orgnr = normalise_orgnr(orgnr_text)
    except InvalidIdNumber:
        raise _Refused("organisationsnummer is not a valid organisation number") from None
    digits = pnr_text.replace("-", "")
    if len(digits) != 12:
        raise _Refused("personnummer must have twelve digits (with the century)")
    try:
        personnummer = normalise_personnummer(pnr_text)
    except InvalidIdNumber:
        raise _Refused("personnummer is not a valid personnummer") from None
    if not name or len(name) > 200:
        raise _Refused("namn must be given (at most 200 characters)")
    if not capacity or len(capacity) > 100:
        raise _Refused("befattning must be given (at most 100 characters)")
    rule = SIGNING_RULES.get(" ".join(rule_text.lower().split()))
    if rule is None:
        raise _Refused("firmateckning must be " + " or ".join(f"'{r}'" for r in SIGNING_RULES))
    try:
        registered_on = date.fromisoformat(date_text)
    except ValueError:
        raise _Refused("registreringsdatum must be a date YYYY-MM-DD") from None
    if len(date_text) != 10 or registered_on > today:
        raise _Refused("registreringsdatum must be a date YYYY-MM-DD, not in the future")
    return ExtractRow(line, orgnr, personnummer, name, capacity, rule, registered_on)
