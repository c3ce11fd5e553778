"""An email's subject and plain-text body from its template, in the recipient's language."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from app.core.i18n import translations

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates" / "email"


@functools.cache
def environment(lang: str) -> Environment:
    """The Jinja environment for ``lang``: plain text, so no autoescaping."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=False,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=StrictUndefined,
    )
    env.install_gettext_translations(translations(lang), newstyle=True)  # type: ignore[attr-defined]
    return env


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str


def render_email(template: str, language: str, context: dict[str, Any]) -> RenderedEmail:
    """Subject and plain-text body of ``templates/email/<template>.txt`` in ``language``."""
    tmpl = environment(language).get_template(f"{template}.txt")
    subject = "".join(tmpl.blocks["subject"](tmpl.new_context(context)))
    text = tmpl.render(context)
    # One line, whatever the names in it hold (a header never carries a line break).
    return RenderedEmail(" ".join(subject.split()), _tidy(text))


def _tidy(text: str) -> str:
    """No trailing spaces, at most one blank line in a row, one final newline."""
    lines = [line.rstrip() for line in text.strip().splitlines()]
    tidy: list[str] = []
    for line in lines:
        if line or (tidy and tidy[-1]):
            tidy.append(line)
    return "\n".join(tidy) + "\n"
