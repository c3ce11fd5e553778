"""The test PKI's time-stamping authority: in the process, and over HTTP (RFC 3161).

:class:`LocalTimeStamper` stamps in the process with the test TSA's certificate and key;
:func:`tsa_wsgi_app` and :func:`answer_timestamp_query` serve it over HTTP as an RFC 3161
endpoint, so that pyHanko's real HTTP client (the product's, with ``TSA_URL``) can be
tried against it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from asn1crypto import cms, core, keys, tsp, x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from pyhanko.sign import general
from pyhanko.sign.general import simple_cms_attribute
from pyhanko.sign.timestamps import DummyTimeStamper
from pyhanko_certvalidator.registry import SimpleCertificateStore
from pyhanko_certvalidator.util import get_pyca_cryptography_hash

from app.documents.pki import SealConfigurationError, load_certificates, load_private_key
from devtools.pki import TestPkiPaths, ensure_test_pki


class LocalTimeStamper(DummyTimeStamper):
    """An RFC 3161 time stamper in the process, on the test TSA's certificate and key.

    pyHanko's :class:`DummyTimeStamper` with the RSA key parsed once instead of for every
    token.
    """

    def __init__(
        self,
        tsa_cert: x509.Certificate,
        tsa_key: rsa.RSAPrivateKey,
        certs_to_embed: Iterable[x509.Certificate] = (),
        fixed_dt: datetime | None = None,
    ) -> None:
        der = tsa_key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        store = SimpleCertificateStore()
        store.register_multiple(certs_to_embed)
        super().__init__(
            tsa_cert, keys.PrivateKeyInfo.load(der), certs_to_embed=store, fixed_dt=fixed_dt
        )
        self._rsa_key = tsa_key

    def _sign_tst_info(
        self, tst_info_data: bytes, md_algorithm: str, dt: datetime
    ) -> tuple[bytes, cms.CMSAttributes]:
        md = hashes.Hash(get_pyca_cryptography_hash(md_algorithm))
        md.update(tst_info_data)
        signed_attrs = cms.CMSAttributes(
            [
                simple_cms_attribute("content_type", "tst_info"),
                simple_cms_attribute("signing_time", cms.Time({"utc_time": core.UTCTime(dt)})),
                simple_cms_attribute(
                    "signing_certificate", general.as_signing_certificate(self.tsa_cert)
                ),
                simple_cms_attribute("message_digest", md.finalize()),
            ]
        )
        signature = self._rsa_key.sign(
            signed_attrs.dump(), PKCS1v15(), get_pyca_cryptography_hash(md_algorithm)
        )
        return signature, signed_attrs


def load_local_timestamper(
    paths: TestPkiPaths, *, renewed: bool = False, fixed_dt: datetime | None = None
) -> LocalTimeStamper:
    """The test TSA on its certificate (``renewed``: its renewed one, see
    :class:`~devtools.pki.TsaCertificatePlan`), stamping the time ``fixed_dt`` when given
    (a clock moved forward), else the real time."""
    tsa_key = load_private_key(paths.tsa_key, None, "TSA key")
    if not isinstance(tsa_key, rsa.RSAPrivateKey):
        raise SealConfigurationError("the test TSA's key must be RSA")
    cert_file = paths.renewed_tsa_cert if renewed else paths.tsa_cert
    (tsa_cert,) = load_certificates(cert_file, "TSA certificate")[:1]
    return LocalTimeStamper(tsa_cert, tsa_key, fixed_dt=fixed_dt)


@functools.cache
def local_timestamper(test_pki_dir: str | Path) -> LocalTimeStamper:
    """The test TSA of the test PKI in ``test_pki_dir`` (made if missing), once per process."""
    return load_local_timestamper(ensure_test_pki(test_pki_dir))


# --- over HTTP ----------------------------------------------------------------------

TIMESTAMP_QUERY = "application/timestamp-query"
TIMESTAMP_REPLY = "application/timestamp-reply"
MAX_QUERY_BYTES = 16 * 1024


class TimeStampRejection(core.Sequence):
    """A ``TimeStampResp`` without a token (asn1crypto's own requires one)."""

    _fields = [("status", tsp.PKIStatusInfo)]


def _rejection(fail_info: str, text: str) -> bytes:
    status = tsp.PKIStatusInfo(
        {
            "status": tsp.PKIStatus("rejection"),
            "status_string": [text],
            "fail_info": tsp.PKIFailureInfo({fail_info}),
        }
    )
    return TimeStampRejection({"status": status}).dump()


def answer_timestamp_query(timestamper: DummyTimeStamper, query: bytes) -> tuple[int, bytes]:
    """The HTTP status and ``application/timestamp-reply`` body for an RFC 3161 query,
    answered by the local test TSA (for a Flask view, say).

    A query that is not a well-formed ``TimeStampReq`` (or is over
    :data:`MAX_QUERY_BYTES`) gets HTTP 400 with a ``rejection`` reply, as RFC 3161 asks.
    """
    if len(query) > MAX_QUERY_BYTES:
        return 400, _rejection("bad_data_format", "oversized query")
    try:
        request = tsp.TimeStampReq.load(query)
        request.native  # noqa: B018 - parses the whole structure, raising on malformed input
        algorithm = request["message_imprint"]["hash_algorithm"]["algorithm"].native
        if algorithm not in {"sha256", "sha384", "sha512"}:
            return 400, _rejection("bad_alg", "unsupported hash algorithm")
        response = timestamper.request_tsa_response(request)
    except (ValueError, TypeError, KeyError):
        return 400, _rejection("bad_data_format", "not an RFC 3161 TimeStampReq")
    return 200, response.dump()


def tsa_wsgi_app(timestamper: DummyTimeStamper) -> Callable[..., Iterable[bytes]]:
    """A WSGI application answering RFC 3161 queries by HTTP POST
    (``TSA_URL=http://127.0.0.1:PORT/test-tsa``). Mount it with werkzeug's
    ``DispatcherMiddleware``, or use :func:`answer_timestamp_query` in a view."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "POST":
            start_response(
                "405 Method Not Allowed", [("Allow", "POST"), ("Content-Type", "text/plain")]
            )
            return [b"POST an RFC 3161 time-stamp query\n"]
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if not 0 < length <= MAX_QUERY_BYTES:
            status, body = 400, _rejection("bad_data_format", "missing or oversized query")
        else:
            status, body = answer_timestamp_query(timestamper, environ["wsgi.input"].read(length))
        start_response(
            "200 OK" if status == 200 else "400 Bad Request",
            [("Content-Type", TIMESTAMP_REPLY), ("Content-Length", str(len(body)))],
        )
        return [body]

    return app
