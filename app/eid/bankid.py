"""The product's BankID client: pybankid's, pointed at ``BANKID_URL``.

Production and BankID's test service are ``https`` with the RP certificate (mutual TLS) and
BankID's server CA; a simulator is plain ``http`` on loopback, or any transport a plugin
gives :func:`make_bankid_client`. Switching is configuration (``BANKID_URL``,
``BANKID_CERT_FILE``, ``BANKID_KEY_FILE``, ``BANKID_CA_FILE``, ``BANKID_TRUST_ROOTS_FILE``),
not code.
"""

from __future__ import annotations

import functools
import ipaddress
import ssl
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
from bankid import BankIDClient
from bankid.certutils import resolve_cert_path
from cryptography import x509

from app.config import Settings

DEFAULT_TIMEOUT_S = 5.0


class BankIdConfigurationError(ValueError):
    """The BankID settings cannot work (say, https without a client certificate)."""


class BankIdClient(BankIDClient):
    """pybankid's ``BankIDClient`` with the API URL, TLS and transport given, not built in.

    Its methods are pybankid's: ``authenticate``, ``sign``, ``phone_authenticate``,
    ``phone_sign``, ``collect``, ``cancel`` and ``generate_qr_code_content``.
    """

    def __init__(
        self,
        api_url: str,
        *,
        verify: ssl.SSLContext | bool = True,
        transport: httpx.BaseTransport | None = None,
        request_timeout: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        # Not BankIDClient.__init__: it hard-codes BankID's hosts and passes the certificate
        # in httpx's deprecated ``cert=``; the TLS context here carries it instead.
        if not api_url.endswith("/"):
            api_url += "/"
        self.api_url = api_url
        self.certs = None
        self.verify_cert = None
        self.ctx = verify if isinstance(verify, ssl.SSLContext) else None
        self._auth_endpoint = urljoin(api_url, "auth")
        self._phone_auth_endpoint = urljoin(api_url, "phone/auth")
        self._sign_endpoint = urljoin(api_url, "sign")
        self._phone_sign_endpoint = urljoin(api_url, "phone/sign")
        self._collect_endpoint = urljoin(api_url, "collect")
        self._cancel_endpoint = urljoin(api_url, "cancel")
        self.client = httpx.Client(
            headers={"Content-Type": "application/json"},
            verify=verify,
            timeout=request_timeout,
            transport=transport,
        )

    def close(self) -> None:
        self.client.close()


def make_bankid_client(
    settings: Settings, transport: httpx.BaseTransport | None = None
) -> BankIdClient:
    """The client for ``settings.bankid_url``: mutual TLS for https, loopback http for a
    simulator. A simulator in the process is reached through ``transport`` (an httpx
    transport, say ``httpx.WSGITransport``)."""
    url = settings.bankid_url
    parts = urlsplit(url)
    if parts.scheme == "http":
        if not _is_loopback(parts.hostname or ""):
            raise BankIdConfigurationError("plain http is only for a simulator on loopback")
        return BankIdClient(url, verify=False, transport=transport)
    if parts.scheme != "https":
        raise BankIdConfigurationError(f"BANKID_URL must be https: {url}")
    if not settings.bankid_cert_file:
        raise BankIdConfigurationError("BANKID_CERT_FILE is needed for BankID over https")
    context = ssl.create_default_context(
        cafile=settings.bankid_ca_file or str(resolve_cert_path("appapi2.bankid.com.pem"))
    )
    context.load_cert_chain(settings.bankid_cert_file, settings.bankid_key_file)
    return BankIdClient(url, verify=context, transport=transport)


def bankid_trust_roots(settings: Settings) -> list[x509.Certificate]:
    """The roots BankID signatures must chain to: ``BANKID_TRUST_ROOTS_FILE``, read once per
    process."""
    if not settings.bankid_trust_roots_file:
        raise BankIdConfigurationError(
            "BANKID_TRUST_ROOTS_FILE is needed to check BankID signatures"
        )
    return list(_load_trust_roots(settings.bankid_trust_roots_file))


@functools.lru_cache(maxsize=8)
def _load_trust_roots(roots_file: str) -> tuple[x509.Certificate, ...]:
    roots = x509.load_pem_x509_certificates(Path(roots_file).read_bytes())
    if not roots:
        raise BankIdConfigurationError("BANKID_TRUST_ROOTS_FILE holds no certificate")
    return tuple(roots)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
