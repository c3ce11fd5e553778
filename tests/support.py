"""Helpers the tests share: reaching the real services, waiting, signing in through pages."""

from __future__ import annotations

import io
import os
import re
import socket
import time
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any, TypeVar

import pytest

T = TypeVar("T")

PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")  # gw0, gw1…: a process of a parallel run
PG_TEST_DB = os.environ.get("TEST_PG_DATABASE", f"behorighet_test_{os.getpid()}") + (
    _WORKER and f"_{_WORKER}"
)
"""One database per test run (and per process of a run), so that runs side by side never
touch each other's data."""
TEST_PROCESS = {"BEHORIGHET_TESTING": "1"}
"""In the environment of a product process a test starts (``behorighet worker``, ``intake
watch``): test settings, which production refuses (``app.config.production_problems``)."""
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
RABBITMQ_URL = os.environ.get("TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")

SERVICES = {
    "PostgreSQL": (
        5432,
        "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    ),
    "Redis": (6379, "redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save ''"),
    "RabbitMQ": (5672, "rabbitmq-server -detached"),
}


_current_app: list[Any] = []


def use_app(app: Any) -> None:
    """The Flask app of the running test (set by the ``app`` fixture), for the factories."""
    _current_app[:] = [app]


def current_app() -> Any:
    if not _current_app:
        raise RuntimeError("no test app: use the app, runtime or session fixture")
    return _current_app[0]


def require_service(name: str) -> None:
    """Fail (not skip) with how to start the part when it is not reachable."""
    port, start = SERVICES[name]
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError:
        pytest.fail(
            f"{name} is not reachable on 127.0.0.1:{port}. Start it with: {start} "
            "(or run 'make services').",
            pytrace=False,
        )


def wait_for(
    predicate: Callable[[], T],
    timeout: float = 20.0,
    interval: float = 0.05,
    message: str = "condition",
) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def csrf_token(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "page has no CSRF token"
    return match.group(1)


def pdf_page_texts(pdf: bytes) -> list[str]:
    """Each page's text, as pdfium extracts it."""
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(pdf)
    try:
        texts = []
        for page in document:
            textpage = page.get_textpage()
            texts.append(textpage.get_text_range())
            textpage.close()
            page.close()
        return texts
    finally:
        document.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def written_pdf(writer: Any) -> bytes:
    """The bytes of a pyHanko ``IncrementalPdfFileWriter``: the file with its update."""
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def pdf_with_annotation(pdf: bytes) -> bytes:
    """``pdf`` with a text note added to its first page in an incremental update: a change
    after sealing that a reader of the PDF would see."""
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    page = writer.root["/Pages"]["/Kids"].raw_get(0).get_object()
    note = generic.DictionaryObject(
        {
            generic.pdf_name("/Type"): generic.pdf_name("/Annot"),
            generic.pdf_name("/Subtype"): generic.pdf_name("/Text"),
            generic.pdf_name("/Rect"): generic.ArrayObject(
                generic.NumberObject(v) for v in (50, 700, 80, 730)
            ),
            generic.pdf_name("/Contents"): generic.TextStringObject("Godkänd av mig"),
        }
    )
    annots = page.get("/Annots", generic.ArrayObject())
    annots.append(writer.add_object(note))
    page["/Annots"] = annots
    writer.update_container(page)
    return written_pdf(writer)


REGISTRATION = {
    "orgnr": "202100-4920",
    "personnummer": "19850704-9859",
    "given_name": "Fredrik",
    "family_name": "Falk",
    "email": "fredrik.falk@provverket.example",
    "role": "orderer",
    "signatory_name": "Eva Ek",
    "signatory_personnummer": "195210039847",
}
"""A registration David Dahl (HR at Provverket) files for a new orderer."""


class WebSession:
    """A browser-like HTTP session (cookies, CSRF) against a server in another process."""

    def __init__(self, base_url: str) -> None:
        import http.cookiejar
        import urllib.request

        self.base_url = base_url
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )

    def get(self, path: str) -> str:
        with self.opener.open(self.base_url + path, timeout=10) as response:
            return str(response.read().decode())

    def login_with_simulated_bankid(self, personnummer: str, newest_order_ref: Any) -> None:
        """Log in at the server's /logga-in and approve in its BankID simulator app page."""
        self.post("/logga-in", {"device": "other"}, "/logga-in")
        order_ref = newest_order_ref()
        self.post(
            "/bankid-simulator/app",
            {"order_ref": order_ref, "action": "open"},
            "/bankid-simulator/app",
        )
        self.post(
            "/bankid-simulator/app",
            {"order_ref": order_ref, "action": "approve", "identity": personnummer},
            "/bankid-simulator/app",
        )
        # Like the page's script: poll until the order is collected (every 2 s at most).
        wait_for(
            lambda: "Du är inloggad." in self.get("/logga-in/bankid"),
            timeout=10,
            interval=0.5,
            message="the BankID login to complete",
        )

    def post(self, path: str, data: dict[str, str], token_from: str) -> str:
        import urllib.parse

        body = urllib.parse.urlencode({**data, "csrf_token": csrf_token(self.get(token_from))})
        with self.opener.open(self.base_url + path, body.encode(), timeout=10) as response:
            return str(response.read().decode())


def post_step(client: Any, path: str, data: dict[str, Any]) -> Any:
    """GET a form page for its CSRF token, then POST ``data`` to it."""
    page = client.get(path).get_data(as_text=True)
    return client.post(path, data={**data, "csrf_token": csrf_token(page)})


def go_on_despite_warning(client: Any, path: str, data: dict[str, Any]) -> Any:
    """Post the step again from the page that shows its warning (as "Spara och fortsätt"
    after reading it)."""
    page = client.get(path).get_data(as_text=True)
    found = re.search(r'name="acknowledged" value="([^"]*)"', page)
    assert found, page
    return client.post(
        path, data={**data, "acknowledged": found.group(1), "csrf_token": csrf_token(page)}
    )


def walk_registration(
    client: Any, data: dict[str, Any] | None = None, codes: list[str] | None = None
) -> str:
    """Fill every step of the registration form; returns the draft's reference."""
    data = {**REGISTRATION, **(data or {})}
    response = post_step(client, "/anmalan-behorig-bestallare", {"orgnr": data["orgnr"]})
    assert response.status_code == 302, response.get_data(as_text=True)
    base = response.headers["Location"].rsplit("/", 1)[0]
    reference = base.rsplit("/", 1)[-1]
    steps = [
        ("arbetsgivarkoder", {"scope": "chosen", "codes": codes} if codes else {"scope": "all"}),
        (
            "person",
            {k: data[k] for k in ("personnummer", "given_name", "family_name", "email", "role")}
            | {"title": data.get("title", "HR-chef"), "phone": data.get("phone", "")},
        ),
        (
            "underskrift",
            {
                "signatory_name": data["signatory_name"],
                "signatory_personnummer": data["signatory_personnummer"],
                "signatory_title": data.get("signatory_title", "Myndighetschef"),
                **{k: v for k, v in data.items() if k.startswith("co_signatory_")},
            },
        ),
    ]
    for segment, values in steps:
        response = post_step(client, f"{base}/{segment}", values)
        assert response.status_code == 302, (segment, response.get_data(as_text=True))
        if response.headers["Location"].endswith(f"/{segment}"):
            # The step warns (e.g. a signatory not in the register): seen, go on anyway.
            response = go_on_despite_warning(client, f"{base}/{segment}", values)
    assert response.headers["Location"].endswith("/granska")
    return reference


def skatteverket_test_personnummer(index: int) -> str:
    """One of Skatteverket's test personnummer (birth numbers 980–999), by index: 20 a day
    from 1960-01-01."""
    born = date(1960, 1, 1) + timedelta(days=index // 20)
    digits = f"{born:%y%m%d}{980 + index % 20}"
    total = sum(sum(divmod(int(d) * (2 - i % 2), 10)) for i, d in enumerate(digits))
    return f"{born:%Y}{digits[2:]}{(10 - total % 10) % 10}"
