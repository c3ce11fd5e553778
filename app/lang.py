"""The request's language in pages and labels: its catalogue looked up once a request.

Flask-Babel finds the catalogue anew for every text it translates (the request's
context, its locale, the locale's name, its cache: about 18 µs a text on this machine),
and a list page translates hundreds of texts. Here the catalogue is looked up once a
request (and again only if the locale changes, as in Flask-Babel's ``force_locale``),
and a page's own template is handed a ``gettext`` bound to it when it is rendered.
"""

from __future__ import annotations

from gettext import NullTranslations
from typing import Any

from flask import Flask, g
from flask_babel import LazyString, get_locale, get_translations
from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup


def catalogue() -> NullTranslations:
    """The catalogue of the request's language (Flask-Babel's, as it merges them)."""
    locale = get_locale()
    if locale is None:  # outside a request: what Flask-Babel gives there
        return get_translations()
    found = g.get("_catalogue")
    if found is None or found[0] is not locale:
        found = g._catalogue = (locale, get_translations())
    return found[1]


def gettext(text: str, **variables: Any) -> str:
    """``text`` in the request's language, ``variables`` put in (Flask-Babel's gettext)."""
    translated = catalogue().gettext(text)
    return translated % variables if variables else translated


def lazy_gettext(text: str, **variables: Any) -> LazyString:
    """``gettext`` when the text is used, in the language of the request using it."""
    return LazyString(gettext, text, **variables)


def _render_gettext(translations: NullTranslations) -> Any:
    """Jinja's newstyle ``gettext`` over ``translations``: escaped as the template is,
    always a format string (``%%`` for a percent sign), as Jinja's own."""

    @pass_context
    def gettext(context: Context, text: str, **variables: Any) -> str:
        translated = translations.gettext(text)
        if context.eval_ctx.autoescape:
            translated = Markup(translated)
        # Formatting a text with no "%" and no variables gives the text: skipped.
        return translated % variables if variables or "%" in translated else translated

    return gettext


def init_app(app: Flask) -> None:
    """After Flask-Babel's ``init_app``: templates translate through the catalogue above.

    Imported macros use the environment's functions (the catalogue looked up at each
    call); a page's own template and what it includes get ``_`` and ``gettext`` bound
    to the catalogue as it is rendered (a dictionary lookup a text)."""
    app.jinja_env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=lambda s: catalogue().gettext(s),
        ngettext=lambda s, p, n: catalogue().ngettext(s, p, n),
        newstyle=True,
        pgettext=lambda c, s: catalogue().pgettext(c, s),
        npgettext=lambda c, s, p, n: catalogue().npgettext(c, s, p, n),
    )

    @app.context_processor
    def bound_to_this_render() -> dict[str, Any]:
        gettext = _render_gettext(catalogue())
        return {"gettext": gettext, "_": gettext}
