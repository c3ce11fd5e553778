"""The one test PKI of the demo and the tests, built with certomancer: the agency's test
seal, its time-stamping authority and the BankID simulator's users under one root, with
the OCSP responders and CRLs a real PKI has::

    SPV Test Root CA ─┬─ SPV Test Seal CA ─┬─ Statens tjänstepensionsverk (testsigill)
       (CRL)          │    (OCSP, CRL)     └─ SPV Test Seal CA OCSP Responder
                      ├─ SPV Test TSA  (extended key usage timeStamping, critical)
                      └─ BankID Simulator Issuing CA ─┬─ BankID Simulator OCSP Responder
                           (OCSP, CRL)               └─ one certificate per simulated user

:func:`make_test_pki` writes the keys and a certomancer configuration
(``certomancer.yml``) into a directory, and the certificates certomancer issues from it as
PEM files, so a restarted demo still validates the seals and BankID signatures it made
before, and any number of processes share one PKI (a lock file serialises the processes
that make a missing file). Every certificate names where its status is found, as a real
CA's do: the CRL distribution point of its issuer's CRL and, under the seal CA and the
BankID CA, the OCSP responder in its Authority Information Access. Those URLs start with
the PKI's base URL, fixed when it is made (``TEST_PKI_URL``; the demo serves it at
``http://127.0.0.1:5000/test-pki``, the tests on a free port): :func:`pki_wsgi_app` is
certomancer's Animator for the directory (OCSP, CRLs and the certificates), which the
demo's server mounts and :class:`PkiServer` serves in a thread. The product reads those
URLs from the certificates; it knows nothing of this module.

:class:`TestPki` (one per directory and process, :func:`get_test_pki`) issues the users'
certificates on first use and answers for them with OCSP responses (as BankID does in its
completion data; the Animator answers the same for them over HTTP).

The seal's chain is ECDSA P-256 (signing costs about 0.2 ms against 1.2 ms for RSA-2048;
pdfsig and pyHanko both accept it). The TSA's key is RSA-2048, the only kind pyHanko's
test time stamper signs with, and so are the BankID simulator's keys, as BankID's
signatures are RSA-SHA256.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import re
import secrets
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    PrivateKeyTypes,
)
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

from app.documents.pki import AGENCY

ROOT_CA_NAME = "SPV Test Root CA"
SEAL_CA_NAME = "SPV Test Seal CA"
SEAL_OCSP_NAME = "SPV Test Seal CA OCSP Responder"
SEAL_NAME = "Statens tjänstepensionsverk (testsigill)"
TSA_NAME = "SPV Test TSA"
BANKID_CA_NAME = "BankID Simulator Issuing CA"
BANKID_OCSP_NAME = "BankID Simulator OCSP Responder"
BANKID_ORGANISATION = "Behörighet BankID-simulator"
BANKID_MOBILE_POLICY = x509.ObjectIdentifier("1.2.752.78.1.5")
"""The certificate policy of Mobile BankID, which the simulated users hold."""

ARCH = "spv-test"
"""The certomancer architecture's label: the first segment of every service's path."""
DEFAULT_URL = "http://127.0.0.1:5000/test-pki"
"""Where the demo serves the test PKI (``behorighet demo`` on its default port)."""
CONFIG_FILE = "certomancer.yml"

YEARS = 30
"""The root's lifetime; what it issues ends a year or two before it."""
BANKID_USER_DAYS = 2 * 365
"""The lifetime of a user's certificate (renewed before the end)."""
RENEW_BEFORE = timedelta(days=7)
CRL_PERIOD = "P1D"
"""How often the CAs publish a CRL (certomancer's simulated schedule)."""
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
    config: Path
    """certomancer's configuration of the whole PKI (its keys are the ``*-key.pem``)."""

    @property
    def chain(self) -> Path:
        """The intermediate certificates between the seal certificate and the root."""
        return self.seal_ca_cert

    @property
    def trust_roots(self) -> Path:
        return self.root_cert

    @property
    def renewed_tsa_cert(self) -> Path:
        """The TSA's renewed certificate, when its :class:`TsaCertificatePlan` asked for one."""
        return self.config.parent / "tsa-renewed.pem"

    @property
    def directory(self) -> Path:
        return self.config.parent

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
            config=directory / CONFIG_FILE,
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
            self.config,
        )


# --- certificates issued here (the simulator's users; the tests' odd ones) -----------


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


# --- the PKI, in certomancer's terms -------------------------------------------------


@dataclass(frozen=True)
class SealCertificatePlan:
    """The seal certificate a test PKI is made with: by default valid for the PKI's
    lifetime and never revoked; the tests of long-term validation give it an end, or a
    revocation, in the near future (or the past)."""

    valid_from: datetime | None = None
    """Its start (default: a day before the PKI is made)."""
    valid_to: datetime | None = None
    """Its end (default: two years before the root's)."""
    revoked_since: datetime | None = None
    """When its CA revoked it (``keyCompromise``): from then on OCSP and the CRL say so."""


@dataclass(frozen=True)
class TsaCertificatePlan:
    """The TSA certificate a test PKI is made with: by default valid for the PKI's lifetime;
    the archive's tests give it an end in the near future, and a renewal (the TSA's next
    certificate, same key, a later end: what a TSA does before its certificate ends)."""

    valid_to: datetime | None = None
    """Its end (default: two years before the root's)."""
    renewed_to: datetime | None = None
    """When set, the PKI also issues the TSA a renewed certificate ending then
    (:attr:`TestPkiPaths.renewed_tsa_cert`)."""


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


def _validity(start: datetime, end: datetime) -> dict[str, str]:
    return {"valid-from": _iso(start), "valid-to": _iso(end)}


def _key_usage(*usages: str) -> dict[str, Any]:
    return {
        "id": "key_usage",
        "critical": True,
        "smart-value": {"schema": "key-usage", "params": list(usages)},
    }


def _ca(path_length: int) -> list[dict[str, Any]]:
    return [
        {
            "id": "basic_constraints",
            "critical": True,
            "value": {"ca": True, "path-len-constraint": path_length},
        },
        _key_usage("key_cert_sign", "crl_sign"),
    ]


def _status_at(crl_repo: str, ocsp_responder: str | None = None) -> list[dict[str, Any]]:
    """Where a certificate's status is found: its issuer's CRL, and its OCSP responder."""
    extensions: list[dict[str, Any]] = [
        {
            "id": "crl_distribution_points",
            "smart-value": {"schema": "crl-dist-url", "params": {"crl-repo-names": [crl_repo]}},
        }
    ]
    if ocsp_responder is not None:
        extensions.append(
            {
                "id": "authority_information_access",
                "smart-value": {
                    "schema": "aia-urls",
                    "params": {"ocsp-responder-names": [ocsp_responder]},
                },
            }
        )
    return extensions


def _ocsp_responder() -> list[dict[str, Any]]:
    return [
        _key_usage("digital_signature"),
        {"id": "extended_key_usage", "critical": True, "value": ["ocsp_signing"]},
        {"id": "ocsp_no_check"},
    ]


def _tsa_cert(serial: int, start: datetime, end: datetime) -> dict[str, Any]:
    return {
        "subject": "tsa",
        "issuer": "root",
        "serial": serial,
        "validity": _validity(start, end),
        "extensions": [
            _key_usage("digital_signature", "non_repudiation"),
            {
                "id": "extended_key_usage",
                "critical": True,
                "value": ["time_stamping"],
            },
            *_status_at("root"),
        ],
    }


def _certomancer_config(
    base_url: str,
    now: datetime,
    years: int,
    seal: SealCertificatePlan,
    tsa: TsaCertificatePlan = TsaCertificatePlan(),
) -> dict[str, Any]:
    start = now - timedelta(days=1)
    root_end = now + timedelta(days=365 * years)
    ca_end = root_end - timedelta(days=365)
    leaf_end = root_end - timedelta(days=730)

    def serial() -> int:
        return secrets.randbits(63) | 1 << 62

    seal_cert: dict[str, Any] = {
        "subject": "seal",
        "issuer": "seal-ca",
        "serial": serial(),
        "validity": _validity(seal.valid_from or start, seal.valid_to or leaf_end),
        "extensions": [
            _key_usage("digital_signature", "non_repudiation"),
            *_status_at("seal-ca", "seal-ca"),
        ],
    }
    if seal.revoked_since is not None:
        seal_cert["revocation"] = {
            "revoked-since": _iso(seal.revoked_since),
            "reason": "key_compromise",
        }
    keys = ["root", "seal-ca", "seal-ca-ocsp", "seal", "tsa", "bankid-ca", "bankid-ocsp"]
    return {
        "external-url-prefix": base_url.rstrip("/"),
        "keysets": {
            ARCH: {"keys": {label: {"path": f"{label}-key.pem"} for label in keys}},
        },
        "pki-architectures": {
            ARCH: {
                "entity-defaults": {"country-name": "SE", "organization-name": AGENCY},
                "entities": {
                    "root": {"common-name": ROOT_CA_NAME},
                    "seal-ca": {"common-name": SEAL_CA_NAME},
                    "seal-ca-ocsp": {"common-name": SEAL_OCSP_NAME},
                    "seal": {"common-name": SEAL_NAME},
                    "tsa": {"common-name": TSA_NAME},
                    "bankid-ca": {
                        "common-name": BANKID_CA_NAME,
                        "organization-name": BANKID_ORGANISATION,
                    },
                    "bankid-ocsp": {
                        "common-name": BANKID_OCSP_NAME,
                        "organization-name": BANKID_ORGANISATION,
                    },
                },
                "certs": {
                    "root": {
                        "subject": "root",
                        "issuer": "root",
                        "serial": serial(),
                        "validity": _validity(start, root_end),
                        "extensions": _ca(1),
                    },
                    "seal-ca": {
                        "subject": "seal-ca",
                        "issuer": "root",
                        "serial": serial(),
                        "validity": _validity(start, ca_end),
                        "extensions": [*_ca(0), *_status_at("root")],
                    },
                    "seal-ca-ocsp": {
                        "subject": "seal-ca-ocsp",
                        "issuer": "seal-ca",
                        "serial": serial(),
                        "validity": _validity(start, leaf_end),
                        "extensions": _ocsp_responder(),
                    },
                    "seal": seal_cert,
                    "tsa": _tsa_cert(serial(), start, tsa.valid_to or leaf_end),
                    **(
                        {"tsa-renewed": _tsa_cert(serial(), start, tsa.renewed_to)}
                        if tsa.renewed_to is not None
                        else {}
                    ),
                    "bankid-ca": {
                        "subject": "bankid-ca",
                        "issuer": "root",
                        "serial": serial(),
                        "validity": _validity(start, ca_end),
                        "extensions": [*_ca(0), *_status_at("root")],
                    },
                    "bankid-ocsp": {
                        "subject": "bankid-ocsp",
                        "issuer": "bankid-ca",
                        "serial": serial(),
                        "validity": _validity(start, leaf_end),
                        "extensions": _ocsp_responder(),
                    },
                },
                "services": {
                    "ocsp": {
                        "seal-ca": {
                            "for-issuer": "seal-ca",
                            "responder-cert": "seal-ca-ocsp",
                            "signing-key": "seal-ca-ocsp",
                        },
                        "bankid-ca": {
                            "for-issuer": "bankid-ca",
                            "responder-cert": "bankid-ocsp",
                            "signing-key": "bankid-ocsp",
                        },
                    },
                    "crl-repo": {
                        label: {
                            "for-issuer": label,
                            "signing-key": label,
                            "simulated-update-schedule": CRL_PERIOD,
                        }
                        for label in ("root", "seal-ca", "bankid-ca")
                    },
                    "cert-repo": {
                        label: {"for-issuer": label, "publish-issued-certs": True}
                        for label in ("root", "seal-ca", "bankid-ca")
                    },
                },
            }
        },
    }


def _load_architecture(config_file: Path) -> Any:
    from certomancer.registry import ArchLabel, CertomancerConfig

    config = CertomancerConfig.from_file(str(config_file), allow_external_config=False)
    return config.get_pki_arch(ArchLabel(ARCH))


@functools.cache
def test_pki_architecture(directory: Path) -> Any:
    """certomancer's :class:`~certomancer.registry.PKIArchitecture` of the test PKI in
    ``directory`` (made if missing), once per process."""
    return _load_architecture(ensure_test_pki(directory).config)


test_pki_architecture.__test__ = False  # type: ignore[attr-defined]


def make_test_pki(
    paths: TestPkiPaths,
    *,
    base_url: str = DEFAULT_URL,
    years: int = YEARS,
    seal: SealCertificatePlan | None = None,
    tsa: TsaCertificatePlan | None = None,
    now: datetime | None = None,
) -> None:
    """Make a fresh test PKI into ``paths``, replacing whatever is there: its services at
    ``base_url`` (what its certificates name)."""
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    directory = paths.directory
    ec_labels = ("root", "seal-ca", "seal-ca-ocsp", "seal")
    for label in ("root", "seal-ca", "seal-ca-ocsp", "seal", "tsa", "bankid-ca", "bankid-ocsp"):
        key: PrivateKeyTypes = (
            ec.generate_private_key(ec.SECP256R1()) if label in ec_labels else _rsa_key()
        )
        _write_atomically(directory / f"{label}-key.pem", _key_pem(key), 0o600)
    tsa = tsa or TsaCertificatePlan()
    config = _certomancer_config(base_url, now, years, seal or SealCertificatePlan(), tsa)
    tmp_config = directory / f".{CONFIG_FILE}.{os.getpid()}.tmp"
    tmp_config.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False))
    architecture = _load_architecture(tmp_config)

    def cert_pem(label: str) -> bytes:
        return _asn1_pem(architecture.get_cert(label).dump())

    # Certificates first, the configuration after, the root last: a reader who finds the
    # root finds all.
    if tsa.renewed_to is not None:
        _write_atomically(paths.renewed_tsa_cert, cert_pem("tsa-renewed"))
    for label, path in (
        ("seal", paths.seal_cert),
        ("tsa", paths.tsa_cert),
        ("bankid-ca", paths.bankid_ca_cert),
        ("bankid-ocsp", directory / "bankid-ocsp.pem"),
        ("seal-ca-ocsp", directory / "seal-ca-ocsp.pem"),
        ("seal-ca", paths.seal_ca_cert),
    ):
        _write_atomically(path, cert_pem(label))
    os.replace(tmp_config, paths.config)
    _write_atomically(paths.root_cert, cert_pem("root"))


def _asn1_pem(der: bytes) -> bytes:
    return x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)


def ensure_test_pki(
    directory: Path | str,
    *,
    base_url: str | None = None,
    seal: SealCertificatePlan | None = None,
    tsa: TsaCertificatePlan | None = None,
) -> TestPkiPaths:
    """The test PKI in ``directory``, made the first time (idempotent, safe between
    processes) with its services at ``base_url`` (default :data:`DEFAULT_URL`). Its files
    are kept, so what it signed earlier still validates."""
    directory = Path(directory)
    paths = TestPkiPaths.in_directory(directory)
    if all(p.is_file() for p in paths.all()):
        return paths
    directory.mkdir(parents=True, exist_ok=True)
    with _directory_lock(directory):
        if not all(p.is_file() for p in paths.all()):
            make_test_pki(paths, base_url=base_url or DEFAULT_URL, seal=seal, tsa=tsa)
    return paths


def test_pki_url(directory: Path | str) -> str:
    """The base URL the test PKI in ``directory`` was made with (its certificates name it)."""
    config = yaml.safe_load(ensure_test_pki(directory).config.read_text())
    return str(config["external-url-prefix"])


test_pki_url.__test__ = False  # type: ignore[attr-defined]


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
        bankid_ocsp = self._read("bankid-ocsp", "bankid-ocsp-key")
        assert bankid_ocsp is not None, "made by ensure_test_pki"
        self.bankid_ocsp: Credentials = bankid_ocsp
        base = test_pki_url(directory).rstrip("/")
        self._user_extensions: list[tuple[x509.ExtensionType, bool]] = [
            (
                x509.AuthorityInformationAccess(
                    [
                        x509.AccessDescription(
                            AuthorityInformationAccessOID.OCSP,
                            x509.UniformResourceIdentifier(f"{base}/{ARCH}/ocsp/bankid-ca"),
                        )
                    ]
                ),
                False,
            ),
            (
                x509.CRLDistributionPoints(
                    [
                        x509.DistributionPoint(
                            [
                                x509.UniformResourceIdentifier(
                                    f"{base}/{ARCH}/crls/bankid-ca/latest.crl"
                                )
                            ],
                            None,
                            None,
                            None,
                        )
                    ]
                ),
                False,
            ),
        ]

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
        self, certificate: x509.Certificate, nonce: bytes | None, now: datetime | None = None
    ) -> bytes:
        """A DER OCSP response saying ``good`` for ``certificate``, signed by the responder."""
        builder = ocsp.OCSPResponseBuilder().add_response(
            cert=certificate,
            issuer=self.bankid_ca.certificate,
            algorithm=hashes.SHA1(),
            cert_status=ocsp.OCSPCertStatus.GOOD,
            this_update=now or datetime.now(UTC),
            next_update=(now or datetime.now(UTC)) + timedelta(hours=12),
            revocation_time=None,
            revocation_reason=None,
        )
        return self._signed_ocsp(builder, nonce)

    def answer_bankid_ocsp_request(self, request: bytes, now: datetime | None = None) -> bytes:
        """The responder's answer to an OCSP request over HTTP: ``good`` for a certificate
        of the BankID CA (the simulator revokes nobody), ``unauthorized`` for another CA's."""
        try:
            query = ocsp.load_der_ocsp_request(request)
        except ValueError:
            return ocsp.OCSPResponseBuilder.build_unsuccessful(
                ocsp.OCSPResponseStatus.MALFORMED_REQUEST
            ).public_bytes(serialization.Encoding.DER)
        ca = self.bankid_ca.certificate
        digest = hashes.Hash(query.hash_algorithm)
        digest.update(ca.subject.public_bytes())
        name_hash = digest.finalize()
        digest = hashes.Hash(query.hash_algorithm)
        digest.update(
            ca.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.PKCS1
            )
        )
        key_hash = digest.finalize()
        if (query.issuer_name_hash, query.issuer_key_hash) != (name_hash, key_hash):
            return ocsp.OCSPResponseBuilder.build_unsuccessful(
                ocsp.OCSPResponseStatus.UNAUTHORIZED
            ).public_bytes(serialization.Encoding.DER)
        now = now or datetime.now(UTC)
        builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
            issuer_name_hash=name_hash,
            issuer_key_hash=key_hash,
            serial_number=query.serial_number,
            algorithm=query.hash_algorithm,
            cert_status=ocsp.OCSPCertStatus.GOOD,
            this_update=now,
            next_update=now + timedelta(hours=12),
            revocation_time=None,
            revocation_reason=None,
        )
        try:
            nonce = query.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
        except x509.ExtensionNotFound:
            nonce = None
        return self._signed_ocsp(builder, nonce)

    def _signed_ocsp(self, builder: ocsp.OCSPResponseBuilder, nonce: bytes | None) -> bytes:
        builder = builder.responder_id(
            ocsp.OCSPResponderEncoding.HASH, self.bankid_ocsp.certificate
        ).certificates([self.bankid_ocsp.certificate])
        if nonce is not None:
            builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
        response = builder.sign(self.bankid_ocsp.key, hashes.SHA256())
        return response.public_bytes(serialization.Encoding.DER)

    # -- files ---------------------------------------------------------------------------

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
            subject,
            content_commitment=True,
            extensions=[(policies, False), *self._user_extensions],
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


# --- the PKI's services over HTTP ----------------------------------------------------

Clock = Callable[[], datetime | None]
"""What time the PKI's services think it is (``None``: the real time)."""


def pki_wsgi_app(
    directory: Path | str, clock: Clock | None = None
) -> Callable[..., Iterable[bytes]]:
    """The test PKI's services as a WSGI application, paths as its certificates name them
    under its base URL: certomancer's Animator (``/spv-test/ocsp/seal-ca``,
    ``/spv-test/crls/<ca>/latest.crl``, ``/spv-test/certs/…``), the BankID CA's OCSP
    answered by :class:`TestPki` (its users are issued on demand, unknown to certomancer).
    ``clock`` moves the services' time (certomancer's time travel)."""
    from certomancer.integrations.animator import Animator, AnimatorArchStore
    from certomancer.registry import ArchLabel

    path = Path(directory).resolve()
    architecture = test_pki_architecture(path)
    now: Clock = clock or (lambda: None)

    class _Animator(Animator):
        def at_time(self, request: Any) -> datetime:
            # Whole seconds: certomancer would write the microseconds into the OCSP
            # response's GeneralizedTime, which DER allows but cryptography refuses.
            return (now() or datetime.now(UTC)).replace(microsecond=0)

    animator = _Animator(AnimatorArchStore({ArchLabel(ARCH): architecture}), with_web_ui=False)
    bankid_ocsp = f"/{ARCH}/ocsp/bankid-ca"

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == bankid_ocsp and environ.get("REQUEST_METHOD") == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = get_test_pki(path).answer_bankid_ocsp_request(
                environ["wsgi.input"].read(min(length, 64 * 1024)), now()
            )
            start_response(
                "200 OK",
                [("Content-Type", "application/ocsp-response"), ("Content-Length", str(len(body)))],
            )
            return [body]
        return animator(environ, start_response)

    return app


class PkiServer:
    """The test PKI in ``directory`` served over HTTP on a free loopback port, in a thread,
    with a clock the tests move (:attr:`moment`). A missing PKI is made with this server's
    URL (and its seal certificate as ``seal`` plans); an existing one keeps the URL it was
    made with (its certificates name it)."""

    def __init__(
        self,
        directory: Path | str,
        *,
        seal: SealCertificatePlan | None = None,
        tsa: TsaCertificatePlan | None = None,
    ) -> None:
        from werkzeug.serving import make_server

        self.directory = Path(directory)
        self.moment: datetime | None = None
        """The services' time; ``None`` for the real time."""
        self._app: Callable[..., Iterable[bytes]] | None = None
        self._server = make_server("127.0.0.1", 0, self._dispatch, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self.paths = ensure_test_pki(self.directory, base_url=self.url, seal=seal, tsa=tsa)
        self._app = pki_wsgi_app(self.directory, lambda: self.moment)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _dispatch(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        assert self._app is not None
        return self._app(environ, start_response)

    def start(self) -> PkiServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(5)
        self._server.server_close()

    def __enter__(self) -> PkiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
