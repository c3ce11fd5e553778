"""The simulator's PKI: root CA → issuing CA → user certificates, and an OCSP responder.

Everything is kept as PEM files under one directory (``<instance dir>/bankid-simulator`` by
default), so a signature made yesterday still chains to the same root today and any number
of processes share one chain. Keys are read once per process; a lock file serialises the
processes that create a missing file.
"""

from __future__ import annotations

import fcntl
import os
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from app.config import INSTANCE_DIR, Settings

ROOT_NAME = "BankID Simulator Root CA"
ISSUING_NAME = "BankID Simulator Issuing CA"
OCSP_NAME = "BankID Simulator OCSP Responder"
ORGANISATION = "Behörighet BankID-simulator"
BANKID_MOBILE_POLICY = x509.ObjectIdentifier("1.2.752.78.1.5")
"""The certificate policy of Mobile BankID, which the simulated users hold."""

_KEY_SIZE = 2048
_CA_YEARS = 20
_USER_DAYS = 2 * 365
_RENEW_BEFORE = timedelta(days=7)
_PNR = re.compile(r"^\d{12}$")


def pki_directory(settings: Settings) -> Path:
    if settings.bankid_simulator_dir:
        return Path(settings.bankid_simulator_dir)
    return INSTANCE_DIR / "bankid-simulator"


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


class SimulatorPki:
    """The CA chain in ``directory``, created on first use."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._users: dict[str, Credentials] = {}
        self._lock = threading.Lock()
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "users").mkdir(exist_ok=True)
        with self._file_lock():
            self.root = self._load_or_create("root", self._make_root)
            self.issuing = self._load_or_create("issuing-ca", self._make_issuing)
            self.ocsp = self._load_or_create("ocsp", self._make_ocsp, renew=True)

    @property
    def root_certificate_file(self) -> Path:
        """The root to trust (``BANKID_TRUST_ROOTS_FILE`` for the simulator)."""
        return self.directory / "root.pem"

    def user(self, identity: UserIdentity) -> Credentials:
        """The person's certificate and key, made on first use (and when names change)."""
        if not _PNR.match(identity.personal_number):
            raise ValueError("a personal number has 12 digits")
        with self._lock:
            cached = self._users.get(identity.personal_number)
            if cached is not None and _matches(cached.certificate, identity):
                return cached
            base = f"users/{identity.personal_number}"
            with self._file_lock():
                credentials = self._read(base)
                if (
                    credentials is None
                    or not _matches(credentials.certificate, identity)
                    or _expiring(credentials.certificate)
                ):
                    credentials = self._make_user(identity)
                    self._write(base, credentials)
            self._users[identity.personal_number] = credentials
            return credentials

    def chain(self, user_certificate: x509.Certificate) -> list[x509.Certificate]:
        """What a signature carries in ``X509Data``: the user's certificate, then its CA's."""
        return [user_certificate, self.issuing.certificate]

    def ocsp_response(
        self, certificate: x509.Certificate, nonce: bytes, now: datetime | None = None
    ) -> bytes:
        """A DER OCSP response saying ``good`` for ``certificate``, signed by the responder."""
        now = now or datetime.now(UTC)
        builder = (
            ocsp.OCSPResponseBuilder()
            .add_response(
                cert=certificate,
                issuer=self.issuing.certificate,
                algorithm=hashes.SHA1(),
                cert_status=ocsp.OCSPCertStatus.GOOD,
                this_update=now,
                next_update=now + timedelta(hours=12),
                revocation_time=None,
                revocation_reason=None,
            )
            .responder_id(ocsp.OCSPResponderEncoding.HASH, self.ocsp.certificate)
            .certificates([self.ocsp.certificate])
            .add_extension(x509.OCSPNonce(nonce), critical=False)
        )
        response = builder.sign(self.ocsp.key, hashes.SHA256())
        return response.public_bytes(serialization.Encoding.DER)

    # -- files ---------------------------------------------------------------------------

    @contextmanager
    def _file_lock(self) -> Iterator[None]:
        with open(self.directory / ".lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _load_or_create(
        self, base: str, make: Callable[[], Credentials], renew: bool = False
    ) -> Credentials:
        credentials = self._read(base)
        if credentials is None or (renew and _expiring(credentials.certificate)):
            credentials = make()
            self._write(base, credentials)
        return credentials

    def _read(self, base: str) -> Credentials | None:
        cert_path = self.directory / f"{base}.pem"
        key_path = self.directory / f"{base}.key"
        if not (cert_path.exists() and key_path.exists()):
            return None
        certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"{key_path} is not an RSA key")
        return Credentials(certificate, key)

    def _write(self, base: str, credentials: Credentials) -> None:
        key_pem = credentials.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        cert_pem = credentials.certificate.public_bytes(serialization.Encoding.PEM)
        # The key first, then the certificate: a reader only trusts a pair when both exist.
        _atomic_write(self.directory / f"{base}.key", key_pem, mode=0o600)
        _atomic_write(self.directory / f"{base}.pem", cert_pem, mode=0o644)

    # -- certificates --------------------------------------------------------------------

    def _make_root(self) -> Credentials:
        key = _new_key()
        name = _ca_name(ROOT_NAME)
        now = datetime.now(UTC)
        certificate = (
            _builder(name, name, key.public_key(), now, now + timedelta(days=365 * _CA_YEARS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_ca_key_usage(), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        return Credentials(certificate, key)

    def _make_issuing(self) -> Credentials:
        key = _new_key()
        now = datetime.now(UTC)
        certificate = (
            _issued_by(
                self.root,
                _ca_name(ISSUING_NAME),
                key,
                now,
                self.root.certificate.not_valid_after_utc,
            )
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_ca_key_usage(), critical=True)
            .sign(self.root.key, hashes.SHA256())
        )
        return Credentials(certificate, key)

    def _make_ocsp(self) -> Credentials:
        key = _new_key()
        now = datetime.now(UTC)
        certificate = (
            _issued_by(
                self.issuing, _ca_name(OCSP_NAME), key, now, now + timedelta(days=_USER_DAYS)
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_signing_key_usage(), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), False)
            .add_extension(x509.OCSPNoCheck(), critical=False)
            .sign(self.issuing.key, hashes.SHA256())
        )
        return Credentials(certificate, key)

    def _make_user(self, identity: UserIdentity) -> Credentials:
        key = _new_key()
        now = datetime.now(UTC)
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "SE"),
                x509.NameAttribute(NameOID.SURNAME, identity.surname),
                x509.NameAttribute(NameOID.GIVEN_NAME, identity.given_name),
                x509.NameAttribute(NameOID.SERIAL_NUMBER, identity.personal_number),
                x509.NameAttribute(NameOID.COMMON_NAME, identity.name),
            ]
        )
        certificate = (
            _issued_by(self.issuing, subject, key, now, now + timedelta(days=_USER_DAYS))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_signing_key_usage(content_commitment=True), critical=True)
            .add_extension(
                x509.CertificatePolicies([x509.PolicyInformation(BANKID_MOBILE_POLICY, None)]),
                critical=False,
            )
            .sign(self.issuing.key, hashes.SHA256())
        )
        return Credentials(certificate, key)


_instances: dict[Path, SimulatorPki] = {}
_instances_lock = threading.Lock()


def get_pki(directory: Path) -> SimulatorPki:
    """The process's PKI for ``directory`` (keys are read from disk once)."""
    key = directory.resolve()
    with _instances_lock:
        pki = _instances.get(key)
        if pki is None:
            pki = SimulatorPki(key)
            _instances[key] = pki
        return pki


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=_KEY_SIZE)


def _ca_name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "SE"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANISATION),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _ca_key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=False,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def _signing_key_usage(content_commitment: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=content_commitment,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: rsa.RSAPublicKey,
    not_before: datetime,
    not_after: datetime,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before - timedelta(days=1))
        .not_valid_after(not_after)
    )


def _issued_by(
    issuer: Credentials,
    subject: x509.Name,
    key: rsa.RSAPrivateKey,
    now: datetime,
    not_after: datetime,
) -> x509.CertificateBuilder:
    not_after = min(not_after, issuer.certificate.not_valid_after_utc)
    return (
        _builder(subject, issuer.certificate.subject, key.public_key(), now, not_after)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), False
        )
    )


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
    return certificate.not_valid_after_utc - _RENEW_BEFORE < datetime.now(UTC)


def _atomic_write(path: Path, data: bytes, mode: int) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
