"""The agency's seal material: certificate, key, chain, trust roots and time stamping.

Sealing and validating take their material from a :class:`SealSource`. The product's own
is :class:`SealFiles`: the seal certificate and key from a PKCS#12 file or from PEM/DER
files, the chain and the trust roots from PEM/DER files, and an RFC 3161 time-stamping
authority reached over HTTP (``TSA_URL``), all named in :class:`app.config.Settings`. A
plugin may give another source in :attr:`Settings.seal_source
<app.config.Settings.seal_source>` (the demo's and the tests' test PKI).

The material is loaded once per process (:func:`seal_material`, :func:`trust_roots`):
pyHanko's stock :class:`~pyhanko.sign.signers.pdf_cms.SimpleSigner` parses its key again
for every signature (about 70 ms for an RSA key), so :class:`PreloadedSigner` keeps the
parsed key.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from asn1crypto import keys, x509
from cryptography import x509 as cx509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs12
from pyhanko.keys import load_certs_from_pemder_data
from pyhanko.sign.signers import SimpleSigner
from pyhanko.sign.timestamps import HTTPTimeStamper, TimeStamper
from pyhanko_certvalidator.registry import SimpleCertificateStore
from pyhanko_certvalidator.util import get_pyca_cryptography_hash

if TYPE_CHECKING:
    from app.config import Settings

AGENCY = "Statens tjänstepensionsverk"


class SealConfigurationError(ValueError):
    """The seal settings are incomplete or contradict each other, or a file is unreadable."""


# --- loading ------------------------------------------------------------------------


def read_file(path: str | Path, what: str) -> bytes:
    """The bytes of ``path``; an unreadable file is a :class:`SealConfigurationError`."""
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise SealConfigurationError(f"cannot read the {what} {path}: {exc.strerror}") from exc


def load_certificates(path: str | Path, what: str = "certificates") -> tuple[x509.Certificate, ...]:
    """Every certificate in a PEM file (one or more) or a DER file (one)."""
    try:
        certs = tuple(load_certs_from_pemder_data(read_file(path, what)))
    except (ValueError, TypeError) as exc:
        raise SealConfigurationError(f"the {what} {path} holds no readable certificate") from exc
    if not certs:
        raise SealConfigurationError(f"the {what} {path} holds no certificate")
    return certs


def _asn1_cert(cert: cx509.Certificate) -> x509.Certificate:
    return x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def load_private_key(path: str | Path, password: str | None, what: str) -> PrivateKeyTypes:
    """The private key in a PEM or DER file (PKCS#8 or traditional, maybe encrypted)."""
    data = read_file(path, what)
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
    raise SealConfigurationError(f"cannot read the private key in {path} (wrong password?)")


def check_matching_key(cert: x509.Certificate, key: PrivateKeyTypes, source: str) -> None:
    """Refuse a private key that is not the certificate's."""
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if public != cert.public_key.dump():
        raise SealConfigurationError(
            f"the private key in {source} does not match the seal certificate"
        )


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
    """The TSA's URL; ``None`` when the timestamps come from a time stamper in the process
    (a test PKI's)."""
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
        """Whether the timestamps come from a test PKI in the process (they are not real)."""
        return self.tsa_url is None


class SealSource(Hashable, Protocol):
    """Where the seal material comes from: :class:`SealFiles` in production. Equal sources
    give the same material (it is kept per source for the process)."""

    def load_seal_material(self) -> SealMaterial:
        """The seal material, read now (uncached: see :func:`seal_material`)."""
        ...

    def load_trust_roots(self) -> tuple[x509.Certificate, ...]:
        """The roots a seal must chain to, read now (uncached: see :func:`trust_roots`)."""
        ...

    def load_seal_certificate(self) -> x509.Certificate:
        """The agency's seal certificate (without its key), read now: whose seal is accepted
        unless the settings name it (see :func:`accepted_seal`)."""
        ...


@dataclass(frozen=True)
class SealFiles:
    """The agency's seal from the files the settings name, time-stamped by ``TSA_URL``."""

    pkcs12_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    key_password: str | None = field(default=None, repr=False)
    chain_file: str | None = None
    trust_roots_file: str | None = None
    tsa_url: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> SealFiles:
        return cls(
            pkcs12_file=settings.seal_pkcs12_file,
            cert_file=settings.seal_cert_file,
            key_file=settings.seal_key_file,
            key_password=settings.seal_key_password,
            chain_file=settings.seal_chain_file,
            trust_roots_file=settings.seal_trust_roots_file,
            tsa_url=settings.tsa_url,
        )

    def load_seal_material(self) -> SealMaterial:
        """Read the seal: a PKCS#12 file, or a certificate and a key file; ``TSA_URL`` and
        ``SEAL_TRUST_ROOTS_FILE`` are required with it."""
        if not (self.pkcs12_file or (self.cert_file and self.key_file)):
            raise SealConfigurationError(
                "set SEAL_PKCS12_FILE, or both SEAL_CERT_FILE and SEAL_KEY_FILE"
            )
        if not self.tsa_url:
            raise SealConfigurationError("TSA_URL must be set when the seal comes from files")
        cert, key, bundled = self._signing_pair()
        chain = list(bundled)
        if self.chain_file:
            chain.extend(load_certificates(self.chain_file, "seal chain"))
        check_matching_key(cert, key, self.pkcs12_file or self.key_file or "")
        return SealMaterial(
            signing_cert=cert,
            private_key=key,
            chain=tuple(chain),
            trust_roots=self.load_trust_roots(),
            timestamper=HTTPTimeStamper(self.tsa_url),
            tsa_url=self.tsa_url,
        )

    def load_trust_roots(self) -> tuple[x509.Certificate, ...]:
        if not self.trust_roots_file:
            raise SealConfigurationError(
                "SEAL_TRUST_ROOTS_FILE must be set to seal or to validate seals"
            )
        return load_certificates(self.trust_roots_file, "trust roots file")

    def load_seal_certificate(self) -> x509.Certificate:
        if self.pkcs12_file:
            return self._signing_pair()[0]
        if self.cert_file:
            return load_certificates(self.cert_file, "seal certificate")[0]
        raise SealConfigurationError(
            "name the agency's seal to validate seals: SEAL_CERT_FINGERPRINTS, or SEAL_SUBJECT "
            "and SEAL_ORGANISATION_NUMBER, or the seal certificate (SEAL_CERT_FILE)"
        )

    def _signing_pair(self) -> tuple[x509.Certificate, PrivateKeyTypes, list[x509.Certificate]]:
        """The seal certificate, its key and any certificates bundled with them."""
        password = self.key_password
        if self.pkcs12_file:
            data = read_file(self.pkcs12_file, "PKCS#12 file")
            try:
                key, cert, extra = pkcs12.load_key_and_certificates(
                    data, password.encode() if password else None
                )
            except ValueError as exc:
                raise SealConfigurationError(
                    f"cannot read the PKCS#12 file {self.pkcs12_file} (wrong password?)"
                ) from exc
            if key is None or cert is None:
                raise SealConfigurationError(
                    f"the PKCS#12 file {self.pkcs12_file} lacks the key or the certificate"
                )
            return _asn1_cert(cert), key, [_asn1_cert(c) for c in extra]
        assert self.cert_file and self.key_file
        certs = load_certificates(self.cert_file, "seal certificate")
        key = load_private_key(self.key_file, password, "seal key")
        return certs[0], key, list(certs[1:])


def seal_source(settings: Settings) -> SealSource:
    """The plugin's source if one gave it, else the files the settings name."""
    return settings.seal_source or SealFiles.from_settings(settings)


def load_seal_material(settings: Settings) -> SealMaterial:
    """Read the seal material the settings give (uncached: see :func:`seal_material`)."""
    return seal_source(settings).load_seal_material()


# --- whose seal is accepted ---------------------------------------------------------


ORGANISATION_IDENTIFIER = "2.5.4.97"
"""X.520 ``organizationIdentifier``, where eIDAS seal certificates carry the organisation
number (``NTRSE-2021005489``); some Swedish CAs put it in ``serialNumber`` instead."""


def fingerprint(cert: x509.Certificate) -> str:
    """The certificate's SHA-256 fingerprint: 64 lower-case hex digits."""
    return hashlib.sha256(cert.dump()).hexdigest()


def normalise_fingerprint(value: str) -> str:
    """``AB:CD:…`` or ``abcd…`` as 64 lower-case hex digits; anything else is refused."""
    digits = value.strip().replace(":", "").replace(" ", "").lower()
    if len(digits) != 64 or any(c not in "0123456789abcdef" for c in digits):
        raise SealConfigurationError(f"not a SHA-256 certificate fingerprint: {value!r}")
    return digits


def _digits(value: str) -> str:
    return "".join(c for c in value if c.isascii() and c.isdigit())


@dataclass(frozen=True)
class SealIdentity:
    """Which certificate's seal is the agency's. Chaining to a trusted root is not enough:
    the same root issues the TSA's certificate, other CAs and (in the test PKI) the BankID
    simulator's users.

    Either the exact certificates (``fingerprints``: one, or the old and the new around a
    renewal), or a subject common name and an organisation number together (a renewed
    certificate from the same CA is then accepted without a configuration change; it relies
    on that CA issuing that name and number to the agency alone)."""

    fingerprints: frozenset[str] = frozenset()
    """SHA-256 fingerprints of the accepted seal certificates (see :func:`fingerprint`)."""
    subject: str | None = None
    """The seal certificate's subject common name, exactly."""
    organisation_number: str | None = None
    """The agency's organisation number, in the subject's ``organizationIdentifier`` or
    ``serialNumber`` (compared digits only: ``NTRSE-202100-5489`` is ``2021005489``)."""

    def __post_init__(self) -> None:
        if not self.fingerprints and not (self.subject and self.organisation_number):
            raise SealConfigurationError(
                "a seal is named by certificate fingerprint, or by subject and organisation "
                "number together"
            )

    def matches(self, cert: x509.Certificate) -> bool:
        """Whether ``cert`` is the agency's seal certificate."""
        if self.fingerprints:
            return fingerprint(cert) in self.fingerprints
        subject = cert.subject.native
        numbers = {
            _digits(str(attr["value"].native))
            for rdn in cert.subject.chosen
            for attr in rdn
            if attr["type"].dotted in (ORGANISATION_IDENTIFIER, "2.5.4.5")
        }
        return subject.get("common_name") == self.subject and bool(
            self.organisation_number and _digits(self.organisation_number) in numbers
        )


def seal_identity_from_settings(settings: Settings) -> SealIdentity | None:
    """The seal the settings name (``SEAL_CERT_FINGERPRINTS``, or ``SEAL_SUBJECT`` with
    ``SEAL_ORGANISATION_NUMBER``), or ``None`` when they name none."""
    if settings.seal_cert_fingerprints:
        return SealIdentity(
            fingerprints=frozenset(
                normalise_fingerprint(v) for v in settings.seal_cert_fingerprints.split(",")
            )
        )
    if settings.seal_subject or settings.seal_organisation_number:
        return SealIdentity(
            subject=settings.seal_subject, organisation_number=settings.seal_organisation_number
        )
    return None


_lock = threading.Lock()
_identities: dict[SealSource, SealIdentity] = {}
_materials: dict[SealSource, SealMaterial] = {}
_roots: dict[SealSource, tuple[x509.Certificate, ...]] = {}


def seal_material(settings: Settings) -> SealMaterial:
    """The seal material for these settings, loaded on first use and kept for the process."""
    source = seal_source(settings)
    with _lock:
        material = _materials.get(source)
        if material is None:
            material = _materials[source] = source.load_seal_material()
        return material


def accepted_seal(settings: Settings) -> SealIdentity:
    """Whose seal is accepted: the one the settings name, else the seal certificate the
    product seals with (its fingerprint), loaded on first use and kept for the process."""
    named = seal_identity_from_settings(settings)
    if named is not None:
        return named
    source = seal_source(settings)
    with _lock:
        identity = _identities.get(source)
        if identity is None:
            cert = source.load_seal_certificate()
            identity = _identities[source] = SealIdentity(
                fingerprints=frozenset({fingerprint(cert)})
            )
        return identity


def trust_roots(settings: Settings) -> tuple[x509.Certificate, ...]:
    """The roots a seal must chain to, loaded on first use and kept for the process."""
    source = seal_source(settings)
    with _lock:
        roots = _roots.get(source)
        if roots is None:
            roots = _roots[source] = source.load_trust_roots()
        return roots
