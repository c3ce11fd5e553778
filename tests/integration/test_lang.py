"""The request's language in templates and labels (``app/lang.py``): the catalogue is looked
up once a request, and every text still comes out in the language of the request, the
locale a block forces, and with Jinja's own escaping and formatting."""

from __future__ import annotations

from flask import Flask, render_template_string
from flask_babel import force_locale

from app.labels import STATE_LABELS
from workflows.states import ErrandState


def test_a_page_is_in_the_language_of_its_request(app: Flask) -> None:
    page = "{{ _('Handläggning') }} · {{ state(s) }} · {{ gettext('%(n)s ärenden', n=3) }}"
    draft = ErrandState.DRAFT
    with app.test_request_context("/?lang=en"):
        english = render_template_string(page, state=STATE_LABELS.__getitem__, s=draft)
        assert english == "Case handling · Draft · 3 cases"
    with app.test_request_context("/"):
        swedish = render_template_string(page, state=STATE_LABELS.__getitem__, s=draft)
        assert swedish == "Handläggning · Utkast · 3 ärenden"


def test_a_forced_locale_translates_within_the_request(app: Flask) -> None:
    with app.test_request_context("/"):
        assert render_template_string("{{ _('Handläggning') }}") == "Handläggning"
        assert str(STATE_LABELS[ErrandState.DRAFT]) == "Utkast"
        with force_locale("en"):
            assert render_template_string("{{ _('Handläggning') }}") == "Case handling"
            assert str(STATE_LABELS[ErrandState.DRAFT]) == "Draft"
        assert render_template_string("{{ _('Handläggning') }}") == "Handläggning"


def test_texts_are_escaped_and_formatted_as_jinja_does(app: Flask) -> None:
    with app.test_request_context("/"):
        escaped = render_template_string("{{ _('%(n)s ärenden', n='<b>') }}")
        assert escaped == "&lt;b&gt; ärenden"
        # Always a format string: a percent sign is written twice.
        assert render_template_string("{{ _('100%% klart') }}") == "100% klart"
        macro = "{% macro m() %}{{ _('Handläggning') }}{% endmacro %}{{ m() }}"
        assert render_template_string(macro) == "Handläggning"
