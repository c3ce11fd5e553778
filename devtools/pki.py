"""The one test PKI of the demo and the tests: the agency's test seal, its time-stamping
authority and the BankID simulator's users under one root::

    SPV Test Root CA ─┬─ SPV Test Seal CA ── Statens tjänstepensionsverk (testsigill)
                      ├─ SPV Test TSA  (extended key usage timeStamping, critical)
                      └─ BankID Simulator Issuing CA ─┬─ BankID Simulator OCSP Responder
                                                     └─ one certificate per simulated user

:func:`ensure_test_pki` makes it once into a directory and keeps it as PEM files, so a
restarted demo still validates the seals and BankID signatures it made before, and any
number of processes share one PKI (a lock file serialises the processes that make a
missing file). The root's key is not kept: what it issues is made with it, all at once.
:class:`TestPki` (one per directory and process, :func:`get_test_pki`) issues the users'
certificates on first use and answers for them with OCSP responses.

Made with ``cryptography`` (already a dependency of pyHanko) rather than certomancer: a
handful of certificates need no configuration language, no extra package and no key files
prepared ahead, and the result is plain PEM that any tool reads.

The seal's chain is ECDSA P-256 (signing costs about 0.2 ms against 1.2 ms for RSA-2048;
pdfsig and pyHanko both accept it). The TSA's key is RSA-2048, the only kind pyHanko's
test time stamper signs with, and so are the BankID simulator's keys, as BankID's
signatures are RSA-SHA256.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    PrivateKeyTypes,
)
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from app.documents.pki import AGENCY

ROOT_CA_NAME = "SPV Test Root CA"
SEAL_CA_NAME = "SPV Test Seal CA"
SEAL_NAME = "Statens tjänstepensionsverk (testsigill)"
TSA_NAME = "SPV Test TSA"
BANKID_CA_NAME = "BankID Simulator Issuing CA"
BANKID_OCSP_NAME = "BankID Simulator OCSP Responder"
BANKID_ORGANISATION = "Behörighet BankID-simulator"
BANKID_MOBILE_POLICY = x509.ObjectIdentifier("1.2.752.78.1.5")
"""The certificate policy of Mobile BankID, which the simulated users hold."""

YEARS = 30
"""The root's lifetime; what it issues ends a year or two before it."""
BANKID_USER_DAYS = 2 * 365
"""The lifetime of a user's certificate and of the OCSP responder's (renewed before the end)."""
RENEW_BEFORE = timedelta(days=7)
_PNR = re.compile(r"^\d{12}$")


@dataclass(frozen=True)
class TestPkiPaths:
    """The files :func:`make_test_pki` makes, all at once (all PEM)."""

    __test__ = False  # not a pytest test class, whatever its name

    root_cert: Path
    """"SPV Test Root CA", self-signed: the only trust root, of seals and BankID alike."""
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
    bankid_ca_cert: Path
    """"BankID Simulator Issuing CA", issued by the root; issues the users' certificates."""
    bankid_ca_key: Path
    """Its RSA-2048 private key (unencrypted, mode 0600)."""

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
            bankid_ca_cert=directory / "bankid-ca.pem",
            bankid_ca_key=directory / "bankid-ca-key.pem",
        )

    def all(self) -> tuple[Path, ...]:
        return (
            self.root_cert,
            self.seal_ca_cert,
            self.seal_cert,
            self.seal_key,
            self.tsa_cert,
            self.tsa_key,
            self.bankid_ca_cert,
            self.bankid_ca_key,
        )


# --- certificates -------------------------------------------------------------------


def _name(common_name: str, organisation: str = AGENCY) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "SE"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _issue(
    subject: x509.Name,
    key: CertificateIssuerPrivateKeyTypes,
    issuer: tuple[x509.Certificate, CertificateIssuerPrivateKeyTypes] | None,
    *,
    days: int,
    ca_path_length: int | None = None,
    content_commitment: bool = True,
    extensions: Sequence[tuple[x509.ExtensionType, bool]] = (),
) -> x509.Certificate:
    """A certificate for ``key``, signed by the issuer's key (self-signed without one).

    A CA (``ca_path_length`` given) may sign certificates and CRLs; any other certificate
    may sign, and with ``content_commitment`` also make non-repudiable signatures."""
    now = datetime.now(UTC).replace(microsecond=0)
    public_key = key.public_key()
    not_after = now + timedelta(days=days)
    if issuer is None:
        issuer_name, signing_key = subject, key
    else:
        issuer_name, signing_key = issuer[0].subject, issuer[1]
        not_after = min(not_after, issuer[0].not_valid_after_utc)
    is_ca = ca_path_length is not None
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=ca_path_length), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=not is_ca,
                content_commitment=content_commitment and not is_ca,
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
            x509.SubjectKeyIdentifier.from_public_key(public_key),
            critical=False,
        )
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer[1].public_key()),
            critical=False,
        )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(signing_key, hashes.SHA256())


def _rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _cert_pem(cert: x509.Certificate) -> bytes:
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
    """An exclusive lock between processes (the demo's web and worker may start together).
    Not re-entrant: never taken twice by one thread."""
    with (directory / ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def make_test_pki(paths: TestPkiPaths, *, years: int = YEARS) -> None:
    """Make a fresh test PKI into ``paths``, replacing whatever is there."""
    days = 365 * years
    root_key = ec.generate_private_key(ec.SECP256R1())
    root = _issue(_name(ROOT_CA_NAME), root_key, None, days=days, ca_path_length=1)
    seal_ca_key = ec.generate_private_key(ec.SECP256R1())
    seal_ca = _issue(
        _name(SEAL_CA_NAME), seal_ca_key, (root, root_key), days=days - 365, ca_path_length=0
    )
    seal_key = ec.generate_private_key(ec.SECP256R1())
    seal = _issue(_name(SEAL_NAME), seal_key, (seal_ca, seal_ca_key), days=days - 730)
    tsa_key = _rsa_key()
    tsa = _issue(
        _name(TSA_NAME),
        tsa_key,
        (root, root_key),
        days=days - 730,
        extensions=[(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), True)],
    )
    bankid_ca_key = _rsa_key()
    bankid_ca = _issue(
        _name(BANKID_CA_NAME, BANKID_ORGANISATION),
        bankid_ca_key,
        (root, root_key),
        days=days - 365,
        ca_path_length=0,
    )
    # Keys first, certificates after, the root last: a reader who finds the root finds all.
    _write_atomically(paths.seal_key, _key_pem(seal_key), 0o600)
    _write_atomically(paths.tsa_key, _key_pem(tsa_key), 0o600)
    _write_atomically(paths.bankid_ca_key, _key_pem(bankid_ca_key), 0o600)
    _write_atomically(paths.seal_cert, _cert_pem(seal))
    _write_atomically(paths.tsa_cert, _cert_pem(tsa))
    _write_atomically(paths.bankid_ca_cert, _cert_pem(bankid_ca))
    _write_atomically(paths.seal_ca_cert, _cert_pem(seal_ca))
    _write_atomically(paths.root_cert, _cert_pem(root))


def ensure_test_pki(directory: Path | str) -> TestPkiPaths:
    """The test PKI in ``directory``, made the first time (idempotent, safe between
    processes). Its files are kept, so what it signed earlier still validates."""
    directory = Path(directory)
    paths = TestPkiPaths.in_directory(directory)
    if all(p.is_file() for p in paths.all()):
        return paths
    directory.mkdir(parents=True, exist_ok=True)
    with _directory_lock(directory):
        if not all(p.is_file() for p in paths.all()):
            make_test_pki(paths)
    return paths


# --- the BankID simulator's users ---------------------------------------------------


@dataclass(frozen=True)
class UserIdentity:
    personal_number: str
    given_name: str
    surname: str

    @property
    def name(self) -> str:
        return f"{self.given_name} {self.surname}".strip()


@dataclass(frozen=True)
class Credentials:
    certificate: x509.Certificate
    key: rsa.RSAPrivateKey


class TestPki:
    """The test PKI in ``directory`` (made if missing): its root, and the BankID
    simulator's user certificates and OCSP responses. Keys are read from disk once."""

    __test__ = False  # not a pytest test class, whatever its name

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.paths = ensure_test_pki(directory)
        self.root_certificate = x509.load_pem_x509_certificate(self.paths.root_cert.read_bytes())
        bankid_ca = self._read("bankid-ca", "bankid-ca-key")
        assert bankid_ca is not None, "made by ensure_test_pki"
        self.bankid_ca: Credentials = bankid_ca
        self._users: dict[str, Credentials] = {}
        self._lock = threading.Lock()
        (directory / "bankid-users").mkdir(exist_ok=True)
        with _directory_lock(directory):
            self.bankid_ocsp = self._load_or_renew("bankid-ocsp", self._make_ocsp)

    @property
    def root_certificate_file(self) -> Path:
        """The one root to trust, for seals and BankID signatures alike."""
        return self.paths.root_cert

    def bankid_user(self, identity: UserIdentity) -> Credentials:
        """The person's BankID certificate and key, made on first use (and again when the
        names change or the certificate nears its end)."""
        if not _PNR.match(identity.personal_number):
            raise ValueError("a personal number has 12 digits")
        with self._lock:
            cached = self._users.get(identity.personal_number)
            if cached is not None and _matches(cached.certificate, identity):
                return cached
            base = f"bankid-users/{identity.personal_number}"
            with _directory_lock(self.directory):
                credentials = self._read(base, f"{base}-key")
                if (
                    credentials is None
                    or not _matches(credentials.certificate, identity)
                    or _expiring(credentials.certificate)
                ):
                    credentials = self._make_user(identity)
                    self._write(base, f"{base}-key", credentials)
            self._users[identity.personal_number] = credentials
            return credentials

    def bankid_chain(self, user_certificate: x509.Certificate) -> list[x509.Certificate]:
        """What a BankID signature carries in ``X509Data``: the user's certificate, then
        its CA's."""
        return [user_certificate, self.bankid_ca.certificate]

    def bankid_ocsp_response(
        self, certificate: x509.Certificate, nonce: bytes, now: datetime | None = None
    ) -> bytes:
        """A DER OCSP response saying ``good`` for ``certificate``, signed by the responder."""
        now = now or datetime.now(UTC)
        builder = (
            ocsp.OCSPResponseBuilder()
            .add_response(
                cert=certificate,
                issuer=self.bankid_ca.certificate,
                algorithm=hashes.SHA1(),
                cert_status=ocsp.OCSPCertStatus.GOOD,
                this_update=now,
                next_update=now + timedelta(hours=12),
                revocation_time=None,
                revocation_reason=None,
            )
            .responder_id(ocsp.OCSPResponderEncoding.HASH, self.bankid_ocsp.certificate)
            .certificates([self.bankid_ocsp.certificate])
            .add_extension(x509.OCSPNonce(nonce), critical=False)
        )
        response = builder.sign(self.bankid_ocsp.key, hashes.SHA256())
        return response.public_bytes(serialization.Encoding.DER)

    # -- files ---------------------------------------------------------------------------

    def _load_or_renew(self, base: str, make: Callable[[], Credentials]) -> Credentials:
        credentials = self._read(base, f"{base}-key")
        if credentials is None or _expiring(credentials.certificate):
            credentials = make()
            self._write(base, f"{base}-key", credentials)
        return credentials

    def _read(self, cert_base: str, key_base: str) -> Credentials | None:
        cert_path = self.directory / f"{cert_base}.pem"
        key_path = self.directory / f"{key_base}.pem"
        if not (cert_path.exists() and key_path.exists()):
            return None
        certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"{key_path} is not an RSA key")
        return Credentials(certificate, key)

    def _write(self, cert_base: str, key_base: str, credentials: Credentials) -> None:
        # The key first, then the certificate: a reader only trusts a pair when both exist.
        _write_atomically(self.directory / f"{key_base}.pem", _key_pem(credentials.key), 0o600)
        _write_atomically(self.directory / f"{cert_base}.pem", _cert_pem(credentials.certificate))

    # -- certificates --------------------------------------------------------------------

    def _issued_by_bankid_ca(
        self,
        subject: x509.Name,
        *,
        content_commitment: bool,
        extensions: Sequence[tuple[x509.ExtensionType, bool]],
    ) -> Credentials:
        key = _rsa_key()
        certificate = _issue(
            subject,
            key,
            (self.bankid_ca.certificate, self.bankid_ca.key),
            days=BANKID_USER_DAYS,
            content_commitment=content_commitment,
            extensions=extensions,
        )
        return Credentials(certificate, key)

    def _make_ocsp(self) -> Credentials:
        return self._issued_by_bankid_ca(
            _name(BANKID_OCSP_NAME, BANKID_ORGANISATION),
            content_commitment=False,
            extensions=[
                (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), False),
                (x509.OCSPNoCheck(), False),
            ],
        )

    def _make_user(self, identity: UserIdentity) -> Credentials:
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "SE"),
                x509.NameAttribute(NameOID.SURNAME, identity.surname),
                x509.NameAttribute(NameOID.GIVEN_NAME, identity.given_name),
                x509.NameAttribute(NameOID.SERIAL_NUMBER, identity.personal_number),
                x509.NameAttribute(NameOID.COMMON_NAME, identity.name),
            ]
        )
        policies = x509.CertificatePolicies([x509.PolicyInformation(BANKID_MOBILE_POLICY, None)])
        return self._issued_by_bankid_ca(
            subject, content_commitment=True, extensions=[(policies, False)]
        )


_instances: dict[Path, TestPki] = {}
_instances_lock = threading.Lock()


def get_test_pki(directory: Path | str) -> TestPki:
    """The process's :class:`TestPki` for ``directory`` (keys are read from disk once)."""
    key = Path(directory).resolve()
    with _instances_lock:
        pki = _instances.get(key)
        if pki is None:
            pki = _instances[key] = TestPki(key)
        return pki


def _matches(certificate: x509.Certificate, identity: UserIdentity) -> bool:
    subject = certificate.subject

    def value(oid: x509.ObjectIdentifier) -> str:
        attributes = subject.get_attributes_for_oid(oid)
        return str(attributes[0].value) if attributes else ""

    return (
        value(NameOID.SERIAL_NUMBER) == identity.personal_number
        and value(NameOID.GIVEN_NAME) == identity.given_name
        and value(NameOID.SURNAME) == identity.surname
    )


def _expiring(certificate: x509.Certificate) -> bool:
    return certificate.not_valid_after_utc - RENEW_BEFORE < datetime.now(UTC)
