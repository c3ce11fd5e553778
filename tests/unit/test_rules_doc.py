"""docs/rules.md names the home and the tests of every rule: each reference must exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RULES = (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")
REFERENCE = re.compile(r"`([\w/.-]+\.py)(?:(::|:)([\w.]+))?`")


def _defines(source: str, name: str) -> bool:
    """A function, class, constant or attribute of that name, or a constraint so named."""
    return bool(
        re.search(rf"^\s*(?:async def|def|class) {name}\b", source, re.M)
        or re.search(rf"^\s*{name}\s*(?::[^=\n]+)?=", source, re.M)
        or re.search(rf"""["']{name}["']""", source)
    )


REFERENCES = sorted({m.groups() for m in REFERENCE.finditer(RULES)}, key=str)


def test_the_rules_page_names_homes_and_tests() -> None:
    assert len([r for r in REFERENCES if r[1] == "::"]) >= 30
    assert len([r for r in REFERENCES if r[1] == ":"]) >= 30


@pytest.mark.parametrize(("path", "kind", "name"), REFERENCES, ids=lambda v: str(v))
def test_every_reference_exists(path: str, kind: str | None, name: str | None) -> None:
    file = ROOT / path
    assert file.is_file(), f"docs/rules.md names {path}, which does not exist"
    if name is None:
        return
    source = file.read_text(encoding="utf-8")
    if kind == "::":
        assert re.search(rf"^def {name}\(", source, re.M), f"no test {name} in {path}"
    else:
        for part in name.split("."):
            assert _defines(source, part), f"{path} defines no {part}"
