"""The agency's seal material (certificate, key, chain, trust roots, time stamping).

One interface, two sources:

* **production**: the seal certificate and key from a PKCS#12 file or from PEM/DER
  files, the chain and the trust roots from PEM/DER files, and an RFC 3161 time-stamping
  authority reached over HTTP (``TSA_URL``), all named in :class:`app.config.Settings`;
* **demo and tests**: a small test PKI made once by :func:`ensure_test_pki` and kept as
  files (so a restarted demo still validates the seals it made before)::

      SPV Test Root CA ─┬─ SPV Test Seal CA ── Statens tjänstepensionsverk (testsigill)
                        └─ SPV Test TSA  (extended key usage timeStamping, critical)

  with a time stamper in the process (:class:`LocalTimeStamper`), which can also be
  served over HTTP as an RFC 3161 endpoint (:func:`tsa_wsgi_app`,
  :func:`answer_timestamp_query`) so that the demo uses pyHanko's real HTTP client.

The test PKI is made with ``cryptography`` (already a dependency of pyHanko) rather than
certomancer: four certificates need no configuration language, no extra package and no
key files prepared ahead, and the result is plain PEM that any tool reads.

The seal key is ECDSA P-256: signing costs about 0.2 ms against 1.2 ms for RSA-2048,
loading it is instant, and pdfsig (NSS) and pyHanko both accept it. The test TSA key is
RSA-2048, the only kind pyHanko's test time stamper signs with.

Everything is loaded once per process (:func:`seal_material`, :func:`trust_roots`):
pyHanko's stock :class:`~pyhanko.sign.signers.pdf_cms.SimpleSigner` parses its key again
for every signature (about 70 ms for an RSA key), so :class:`PreloadedSigner` keeps the
parsed key.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from asn1crypto import cms, core, keys, tsp, x509
from cryptography import x509 as cx509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    PrivateKeyTypes,
)
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pyhanko.keys import load_certs_from_pemder_data
from pyhanko.sign import general
from pyhanko.sign.general import simple_cms_attribute
from pyhanko.sign.signers import SimpleSigner
from pyhanko.sign.timestamps import DummyTimeStamper, HTTPTimeStamper, TimeStamper
from pyhanko_certvalidator.registry import SimpleCertificateStore
from pyhanko_certvalidator.util import get_pyca_cryptography_hash

if TYPE_CHECKING:
    from app.config import Settings

AGENCY = "Statens tjänstepensionsverk"

ROOT_CA_NAME = "SPV Test Root CA"
SEAL_CA_NAME = "SPV Test Seal CA"
SEAL_NAME = "Statens tjänstepensionsverk (testsigill)"
TSA_NAME = "SPV Test TSA"


class SealConfigurationError(ValueError):
    """The seal settings are incomplete or contradict each other, or a file is unreadable."""


# --- the test PKI -------------------------------------------------------------------


@dataclass(frozen=True)
class TestPkiPaths:
    """The files of the test PKI made by :func:`ensure_test_pki` (all PEM)."""

    __test__ = False  # not a pytest test class, whatever its name

    root_cert: Path
    """"SPV Test Root CA", self-signed: the only trust root."""
    seal_ca_cert: Path
    """"SPV Test Seal CA", issued by the root; issues the seal certificate."""
    seal_cert: Path
    """The seal certificate, "Statens tjänstepensionsverk (testsigill)"."""
    seal_key: Path
    """The seal certificate's ECDSA P-256 private key (unencrypted, mode 0600)."""
    tsa_cert: Path
    """"SPV Test TSA", issued by the root, extended key usage timeStamping (critical)."""
    tsa_key: Path
    """The TSA's RSA-2048 private key (unencrypted, mode 0600)."""

    @property
    def chain(self) -> Path:
        """The intermediate certificates between the seal certificate and the root."""
        return self.seal_ca_cert

    @property
    def trust_roots(self) -> Path:
        return self.root_cert

    @classmethod
    def in_directory(cls, directory: Path) -> TestPkiPaths:
        return cls(
            root_cert=directory / "root-ca.pem",
            seal_ca_cert=directory / "seal-ca.pem",
            seal_cert=directory / "seal.pem",
            seal_key=directory / "seal-key.pem",
            tsa_cert=directory / "tsa.pem",
            tsa_key=directory / "tsa-key.pem",
        )

    def all(self) -> tuple[Path, ...]:
        return (
            self.root_cert,
            self.seal_ca_cert,
            self.seal_cert,
            self.seal_key,
            self.tsa_cert,
            self.tsa_key,
        )


def _name(common_name: str) -> cx509.Name:
    return cx509.Name(
        [
            cx509.NameAttribute(NameOID.COUNTRY_NAME, "SE"),
            cx509.NameAttribute(NameOID.ORGANIZATION_NAME, AGENCY),
            cx509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _certificate(
    subject: str,
    key: PrivateKeyTypes,
    issuer: cx509.Certificate | None,
    issuer_key: CertificateIssuerPrivateKeyTypes,
    *,
    years: int,
    ca_path_length: int | None = None,
    time_stamping: bool = False,
) -> cx509.Certificate:
    """A certificate for ``key`` signed by ``issuer_key`` (self-signed when no issuer)."""
    now = datetime.now(UTC).replace(microsecond=0)
    public_key = key.public_key()
    is_ca = ca_path_length is not None
    builder = (
        cx509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer.subject if issuer else _name(subject))
        .public_key(public_key)  # type: ignore[arg-type]
        .serial_number(cx509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=365 * years))
        .add_extension(cx509.BasicConstraints(ca=is_ca, path_length=ca_path_length), critical=True)
        .add_extension(
            cx509.KeyUsage(
                digital_signature=not is_ca,
                content_commitment=not is_ca,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=is_ca,
                crl_sign=is_ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            cx509.SubjectKeyIdentifier.from_public_key(public_key),  # type: ignore[arg-type]
            critical=False,
        )
    )
    if issuer is not None:
        builder = builder.add_extension(
            cx509.AuthorityKeyIdentifier.from_issuer_public_key(
                issuer.public_key()  # type: ignore[arg-type]
            ),
            critical=False,
        )
    if time_stamping:
        builder = builder.add_extension(
            cx509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _cert_pem(cert: cx509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: PrivateKeyTypes) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_atomically(path: Path, data: bytes, mode: int = 0o644) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


@contextlib.contextmanager
def _directory_lock(directory: Path) -> Iterator[None]:
    """An exclusive lock between processes (the demo's web and worker may start together)."""
    with (directory / ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def make_test_pki(paths: TestPkiPaths, *, years: int = 30) -> None:
    """Make a fresh test PKI into ``paths``, replacing whatever is there."""
    root_key = ec.generate_private_key(ec.SECP256R1())
    root = _certificate(ROOT_CA_NAME, root_key, None, root_key, years=years, ca_path_length=1)
    seal_ca_key = ec.generate_private_key(ec.SECP256R1())
    seal_ca = _certificate(
        SEAL_CA_NAME, seal_ca_key, root, root_key, years=years - 1, ca_path_length=0
    )
    seal_key = ec.generate_private_key(ec.SECP256R1())
    seal = _certificate(SEAL_NAME, seal_key, seal_ca, seal_ca_key, years=years - 2)
    tsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    tsa = _certificate(TSA_NAME, tsa_key, root, root_key, years=years - 2, time_stamping=True)
    # Keys first, certificates after, the root last: a reader who finds the root finds all.
    _write_atomically(paths.seal_key, _key_pem(seal_key), 0o600)
    _write_atomically(paths.tsa_key, _key_pem(tsa_key), 0o600)
    _write_atomically(paths.seal_cert, _cert_pem(seal))
    _write_atomically(paths.tsa_cert, _cert_pem(tsa))
    _write_atomically(paths.seal_ca_cert, _cert_pem(seal_ca))
    _write_atomically(paths.root_cert, _cert_pem(root))


def ensure_test_pki(directory: Path | str) -> TestPkiPaths:
    """The test PKI in ``directory``, made the first time (idempotent, safe between
    processes). Its files are kept, so seals made earlier still validate."""
    directory = Path(directory)
    paths = TestPkiPaths.in_directory(directory)
    if all(p.is_file() for p in paths.all()):
        return paths
    directory.mkdir(parents=True, exist_ok=True)
    with _directory_lock(directory):
        if not all(p.is_file() for p in paths.all()):
            make_test_pki(paths)
    return paths


# --- loading ------------------------------------------------------------------------


def _read(path: str | Path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise SealConfigurationError(f"cannot read the {what} {path}: {exc.strerror}") from exc


def load_certificates(path: str | Path, what: str = "certificates") -> tuple[x509.Certificate, ...]:
    """Every certificate in a PEM file (one or more) or a DER file (one)."""
    try:
        certs = tuple(load_certs_from_pemder_data(_read(path, what)))
    except (ValueError, TypeError) as exc:
        raise SealConfigurationError(f"the {what} {path} holds no readable certificate") from exc
    if not certs:
        raise SealConfigurationError(f"the {what} {path} holds no certificate")
    return certs


def _asn1_cert(cert: cx509.Certificate) -> x509.Certificate:
    return x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def _load_private_key(data: bytes, password: str | None, source: str) -> PrivateKeyTypes:
    secret = password.encode() if password else None
    loaders: tuple[Callable[..., PrivateKeyTypes], ...] = (
        serialization.load_pem_private_key,
        serialization.load_der_private_key,
    )
    for loader in loaders:
        try:
            return loader(data, secret)
        except (ValueError, TypeError):
            continue
    raise SealConfigurationError(f"cannot read the private key in {source} (wrong password?)")


class PreloadedSigner(SimpleSigner):
    """pyHanko's :class:`SimpleSigner` with the key parsed once, not on every signature."""

    def __init__(
        self,
        signing_cert: x509.Certificate,
        private_key: PrivateKeyTypes,
        cert_registry: SimpleCertificateStore,
    ) -> None:
        der = private_key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        super().__init__(
            signing_cert=signing_cert,
            signing_key=keys.PrivateKeyInfo.load(der),
            cert_registry=cert_registry,
            # The validator has the roots: every byte of the signature is two hex digits
            # that pyHanko parses one by one when it validates.
            embed_roots=False,
        )
        self._private_key = private_key

    def sign_raw(self, data: bytes, digest_algorithm: str) -> bytes:
        mechanism = self.get_signature_mechanism_for_digest(digest_algorithm)
        try:
            algorithm = mechanism.signature_algo
        except ValueError:
            algorithm = mechanism["algorithm"].native
        key = self._private_key
        hash_algo = get_pyca_cryptography_hash(digest_algorithm)
        if isinstance(key, ec.EllipticCurvePrivateKey) and algorithm == "ecdsa":
            return key.sign(data, ec.ECDSA(hash_algo))
        if isinstance(key, rsa.RSAPrivateKey) and algorithm == "rsassa_pkcs1v15":
            return key.sign(data, PKCS1v15(), hash_algo)
        return super().sign_raw(data, digest_algorithm)  # RSA-PSS and others: re-parses


class LocalTimeStamper(DummyTimeStamper):
    """An RFC 3161 time stamper in the process, on the test TSA's certificate and key.

    pyHanko's :class:`DummyTimeStamper` with the RSA key parsed once instead of for every
    token. For the demo and tests only.
    """

    def __init__(
        self,
        tsa_cert: x509.Certificate,
        tsa_key: rsa.RSAPrivateKey,
        certs_to_embed: Iterable[x509.Certificate] = (),
    ) -> None:
        der = tsa_key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        store = SimpleCertificateStore()
        store.register_multiple(certs_to_embed)
        super().__init__(tsa_cert, keys.PrivateKeyInfo.load(der), certs_to_embed=store)
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


def load_local_timestamper(paths: TestPkiPaths) -> LocalTimeStamper:
    tsa_key = _load_private_key(_read(paths.tsa_key, "TSA key"), None, str(paths.tsa_key))
    if not isinstance(tsa_key, rsa.RSAPrivateKey):
        raise SealConfigurationError("the test TSA's key must be RSA")
    (tsa_cert,) = load_certificates(paths.tsa_cert, "TSA certificate")[:1]
    return LocalTimeStamper(tsa_cert, tsa_key)


@functools.cache
def local_timestamper(test_pki_dir: str | Path) -> LocalTimeStamper:
    """The test TSA of the test PKI in ``test_pki_dir`` (made if missing), once per process."""
    return load_local_timestamper(ensure_test_pki(test_pki_dir))


# --- the seal material --------------------------------------------------------------


@dataclass(frozen=True)
class SealMaterial:
    """What sealing and validating need: loaded once per process by :func:`seal_material`."""

    signing_cert: x509.Certificate
    """The seal certificate."""
    private_key: PrivateKeyTypes = field(repr=False)
    """The seal certificate's private key, parsed."""
    chain: tuple[x509.Certificate, ...]
    """Intermediate certificates up to (and maybe including) the root; embedded in seals."""
    trust_roots: tuple[x509.Certificate, ...]
    """The roots a seal (and its timestamp) must chain to, for :func:`validate_sealed_pdf
    <app.documents.validate.validate_sealed_pdf>`."""
    timestamper: TimeStamper = field(repr=False)
    """Produces the RFC 3161 timestamp of every seal."""
    tsa_url: str | None = None
    """The TSA's URL; ``None`` when the timestamps come from the local test TSA."""
    signer: PreloadedSigner = field(init=False, repr=False, compare=False)
    """pyHanko's signer, built once from the above."""

    def __post_init__(self) -> None:
        registry = SimpleCertificateStore()
        registry.register_multiple(self.chain)
        object.__setattr__(
            self, "signer", PreloadedSigner(self.signing_cert, self.private_key, registry)
        )

    @property
    def is_test(self) -> bool:
        """Whether this is the test PKI's material (its timestamps are not real)."""
        return self.tsa_url is None


def _check_matching_key(cert: x509.Certificate, key: PrivateKeyTypes, source: str) -> None:
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if public != cert.public_key.dump():
        raise SealConfigurationError(
            f"the private key in {source} does not match the seal certificate"
        )


def _production_signing_pair(
    settings: Settings,
) -> tuple[x509.Certificate, PrivateKeyTypes, list[x509.Certificate]]:
    """The seal certificate, its key and any certificates bundled with them."""
    password = settings.seal_key_password
    if settings.seal_pkcs12_file:
        data = _read(settings.seal_pkcs12_file, "PKCS#12 file")
        try:
            key, cert, extra = pkcs12.load_key_and_certificates(
                data, password.encode() if password else None
            )
        except ValueError as exc:
            raise SealConfigurationError(
                f"cannot read the PKCS#12 file {settings.seal_pkcs12_file} (wrong password?)"
            ) from exc
        if key is None or cert is None:
            raise SealConfigurationError(
                f"the PKCS#12 file {settings.seal_pkcs12_file} lacks the key or the certificate"
            )
        return _asn1_cert(cert), key, [_asn1_cert(c) for c in extra]
    if not (settings.seal_cert_file and settings.seal_key_file):
        raise SealConfigurationError(
            "set SEAL_PKCS12_FILE, or both SEAL_CERT_FILE and SEAL_KEY_FILE"
        )
    certs = load_certificates(settings.seal_cert_file, "seal certificate")
    key = _load_private_key(
        _read(settings.seal_key_file, "seal key"), password, settings.seal_key_file
    )
    return certs[0], key, list(certs[1:])


def load_seal_material(settings: Settings) -> SealMaterial:
    """Read the seal material the settings name (uncached: see :func:`seal_material`).

    Without any ``SEAL_*`` file, the test PKI in ``settings.test_pki_dir`` is used (made
    if missing); without ``TSA_URL``, its local TSA. A seal certificate from files with
    the local test TSA is refused: its timestamps would not validate anywhere.
    """
    production = bool(
        settings.seal_pkcs12_file or settings.seal_cert_file or settings.seal_key_file
    )
    if production:
        if not settings.tsa_url:
            raise SealConfigurationError(
                "TSA_URL must be set when the seal comes from SEAL_* files"
            )
        if not settings.seal_trust_roots_file:
            raise SealConfigurationError(
                "SEAL_TRUST_ROOTS_FILE must be set when the seal comes from SEAL_* files"
            )
        cert, key, bundled = _production_signing_pair(settings)
        chain = list(bundled)
        if settings.seal_chain_file:
            chain.extend(load_certificates(settings.seal_chain_file, "seal chain"))
        source = settings.seal_pkcs12_file or settings.seal_key_file or ""
    else:
        paths = ensure_test_pki(settings.test_pki_dir)
        cert = load_certificates(paths.seal_cert, "seal certificate")[0]
        key = _load_private_key(_read(paths.seal_key, "seal key"), None, str(paths.seal_key))
        chain = list(load_certificates(paths.chain, "seal chain"))
        source = str(paths.seal_key)
    _check_matching_key(cert, key, source)
    timestamper: TimeStamper
    if settings.tsa_url:
        timestamper = HTTPTimeStamper(settings.tsa_url)
    else:
        timestamper = local_timestamper(settings.test_pki_dir)
    return SealMaterial(
        signing_cert=cert,
        private_key=key,
        chain=tuple(chain),
        trust_roots=load_trust_roots(settings),
        timestamper=timestamper,
        tsa_url=settings.tsa_url,
    )


def load_trust_roots(settings: Settings) -> tuple[x509.Certificate, ...]:
    """The trust roots the settings name: ``SEAL_TRUST_ROOTS_FILE``, or else the test
    PKI's root (made if missing). Uncached: see :func:`trust_roots`."""
    if settings.seal_trust_roots_file:
        return load_certificates(settings.seal_trust_roots_file, "trust roots file")
    return load_certificates(ensure_test_pki(settings.test_pki_dir).trust_roots, "test root")


def _seal_config(settings: Settings) -> tuple[Any, ...]:
    return (
        settings.seal_pkcs12_file,
        settings.seal_cert_file,
        settings.seal_key_file,
        settings.seal_key_password,
        settings.seal_chain_file,
        settings.seal_trust_roots_file,
        settings.tsa_url,
        str(settings.test_pki_dir),
    )


_lock = threading.Lock()
_materials: dict[tuple[Any, ...], SealMaterial] = {}
_roots: dict[tuple[Any, ...], tuple[x509.Certificate, ...]] = {}


def seal_material(settings: Settings) -> SealMaterial:
    """The seal material for these settings, loaded on first use and kept for the process."""
    config = _seal_config(settings)
    with _lock:
        material = _materials.get(config)
        if material is None:
            material = _materials[config] = load_seal_material(settings)
        return material


def trust_roots(settings: Settings) -> tuple[x509.Certificate, ...]:
    """:func:`load_trust_roots`, loaded on first use and kept for the process."""
    config = _seal_config(settings)
    with _lock:
        roots = _roots.get(config)
        if roots is None:
            roots = _roots[config] = load_trust_roots(settings)
        return roots


# --- the test TSA over HTTP ---------------------------------------------------------

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
    """A WSGI application answering RFC 3161 queries by HTTP POST, for the demo and
    tests (``TSA_URL=http://127.0.0.1:5000/test-tsa``). Mount it with werkzeug's
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
