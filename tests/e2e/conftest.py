"""Browser fixtures: the app served on a real port, and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import dramatiq
import pytest
from flask import Flask
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright
from werkzeug.serving import BaseWSGIServer, make_server

from tests.support import free_port

CHROMIUM = "/usr/bin/chromium"
"""Debian's Chromium: Playwright's own browser download does not work here."""

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

TIMEOUT_MS = 10_000
"""Default for every Playwright action and expectation in these tests."""


@pytest.fixture
def make_app(make_app: Callable[..., Flask]) -> Callable[..., Flask]:
    """The browser tests' apps keep the site's rate limits at their defaults: the pages'
    polling of BankID orders stays within them."""

    def make(**overrides: Any) -> Flask:
        return make_app(**{"web_rate_limits": True, **overrides})

    return make


@pytest.fixture
def live_server(app: Flask, worker: dramatiq.Worker) -> Iterator[str]:
    """The test's app on 127.0.0.1, with the in-process worker running the pipeline actors."""
    server: BaseWSGIServer = make_server("127.0.0.1", free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    """Only while the browser tests run: Playwright keeps an asyncio loop running in this
    thread, and pyHanko (which runs its own) cannot work beside it."""
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
    )
    yield browser
    browser.close()


@pytest.fixture
def context(browser: Browser, live_server: str) -> Iterator[BrowserContext]:
    """A fresh context (cookies, storage) per test, with relative URLs against the live server."""
    context = browser.new_context(
        base_url=live_server,
        locale="sv-SE",
        viewport={"width": 1280, "height": 900},
    )
    context.set_default_timeout(TIMEOUT_MS)
    yield context
    context.close()


@pytest.fixture
def page(context: BrowserContext) -> Iterator[Page]:
    page = context.new_page()
    yield page
    page.close()
