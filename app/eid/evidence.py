"""Checking what BankID hands back on completion: the XML signature and the OCSP response.

``verify_bankid_signature`` validates the XML-DSig (signxml) with the signer's certificate
chained to a trusted BankID root, and returns only what the signature covers: the text the
user saw, the RP's hidden data, and the signer as the certificate names them.
``check_ocsp_response`` checks that the OCSP response is BankID's answer for that certificate
(signed by its CA or a responder the CA delegated to) and tells its status.
The same code checks the simulator's signatures (with the simulator's root) and BankID's.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)
from lxml import etree
from signxml import SignatureConfiguration, XMLVerifier
from signxml.algorithms import DigestAlgorithm, SignatureMethod
from signxml.exceptions import SignXMLException

DS_NS = "http://www.w3.org/2000/09/xmldsig#"
BANKID_NS = "http://www.bankid.com/signature/v1.0.0/types"
SIGNED_DATA_TAG = f"{{{BANKID_NS}}}bankIdSignedData"
KEY_INFO_TAG = f"{{{DS_NS}}}KeyInfo"

_SIGNATURE_METHODS = frozenset(
    {
        SignatureMethod.RSA_SHA256,
        SignatureMethod.RSA_SHA384,
        SignatureMethod.RSA_SHA512,
        SignatureMethod.ECDSA_SHA256,
        SignatureMethod.ECDSA_SHA384,
        SignatureMethod.ECDSA_SHA512,
    }
)
_DIGESTS = frozenset({DigestAlgorithm.SHA256, DigestAlgorithm.SHA384, DigestAlgorithm.SHA512})


class InvalidBankIdSignature(Exception):
    """The signature is broken, not BankID's (no trusted root), or its content was changed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InvalidOcspResponse(Exception):
    """The OCSP response is malformed, wrongly signed, or about another certificate."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


SIGNATURE_EVIDENCE_NAME = "bankid-signatur.xml"
"""The BankID signature's name among a sealed form's attachments."""


@dataclass(frozen=True)
class SignedData:
    """What a valid BankID signature covers."""

    user_visible_data: str
    """The text the user read in the app (decoded; empty for an auth order without text)."""
    user_non_visible_data: str
    """The RP's hidden data (decoded UTF-8; empty when the order had none)."""
    user_non_visible_data_bytes: bytes
    personal_number: str
    """From the signer's certificate (``serialNumber``), 12 digits."""
    name: str
    given_name: str
    surname: str
    certificates: list[x509.Certificate]
    """The verified chain: the signer's certificate first, its issuer next, the root last."""
    function: str
    """``Identification`` (auth) or ``Signing`` (sign), from ``clientInfo/funcId``."""
    server_nonce: str
    xml: bytes
    """The whole signature document as received."""

    @property
    def signer_certificate(self) -> x509.Certificate:
        return self.certificates[0]

    @property
    def issuer_certificate(self) -> x509.Certificate:
        return self.certificates[1]


class CertificateStatus(enum.StrEnum):
    GOOD = "good"
    REVOKED = "revoked"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class OcspStatus:
    status: CertificateStatus
    produced_at: datetime
    this_update: datetime
    next_update: datetime | None
    revocation_time: datetime | None
    responder: x509.Certificate
    """The certificate whose key signed the response (the issuer or its delegated responder)."""
    nonce_matches_signature: bool | None
    """Whether the nonce is BankID's binding to the signature (SHA-1 of its base64); ``None``
    when no signature was given to compare with."""


def load_certificates(pem: bytes) -> list[x509.Certificate]:
    """Every certificate in a PEM file (for ``BANKID_TRUST_ROOTS_FILE``)."""
    return x509.load_pem_x509_certificates(pem)


def verify_bankid_signature(
    signature_xml_b64: str,
    trust_roots: Sequence[x509.Certificate],
    at: datetime | None = None,
) -> SignedData:
    """Validate BankID's signature (``completionData.signature``) and return what it covers.

    ``at`` is the time the certificates must be valid at (now by default).
    """
    if not trust_roots:
        raise InvalidBankIdSignature("no trusted BankID root is configured")
    try:
        xml = base64.b64decode(signature_xml_b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidBankIdSignature("the signature is not base64") from exc
    at = at or datetime.now(UTC)
    try:
        certificates = _x509_data(xml)
        leaf, intermediates = _leaf(certificates)
        chain = _verify_chain(leaf, intermediates, trust_roots, at)
        verifier = XMLVerifier()
        # lxml's C14N of a subtree in a default namespace adds xmlns="" to its
        # grandchildren (signxml issue #193); BankID's XML has none.
        verifier.excise_empty_xmlns_declarations = True
        results = verifier.verify(
            xml,
            x509_cert=leaf,
            expect_config=SignatureConfiguration(
                location="./",
                expect_references=2,
                signature_methods=_SIGNATURE_METHODS,
                digest_algorithms=_DIGESTS,
                verification_time=at,
            ),
        )
    except InvalidBankIdSignature:
        raise
    except (SignXMLException, InvalidSignature, ValueError, etree.LxmlError) as exc:
        raise InvalidBankIdSignature(f"the XML signature does not verify: {exc}") from exc
    assert isinstance(results, list)
    signed_data = results[0].signed_xml
    key_info = results[1].signed_xml
    if signed_data is None or signed_data.tag != SIGNED_DATA_TAG:
        raise InvalidBankIdSignature("the first reference is not bankIdSignedData")
    if key_info is None or key_info.tag != KEY_INFO_TAG:
        raise InvalidBankIdSignature("the second reference is not KeyInfo")
    leaf_der = leaf.public_bytes(serialization.Encoding.DER)
    signed_certificates = [
        base64.b64decode("".join((element.text or "").split()))
        for element in key_info.iter(f"{{{DS_NS}}}X509Certificate")
    ]
    if leaf_der not in signed_certificates:
        raise InvalidBankIdSignature("the signer's certificate is not in the signed KeyInfo")
    return _signed_data(signed_data, chain, xml)


def check_ocsp_response(
    ocsp_b64: str,
    user_cert: x509.Certificate,
    issuer: x509.Certificate,
    *,
    signature_b64: str | None = None,
) -> OcspStatus:
    """The status ``completionData.ocspResponse`` gives ``user_cert``, once it is checked to
    be signed by ``issuer`` (or a responder ``issuer`` certified for OCSP signing).

    With ``signature_b64`` (``completionData.signature``) the nonce is also compared with
    BankID's binding of the response to that signature.
    """
    try:
        der = base64.b64decode(ocsp_b64, validate=True)
        response = ocsp.load_der_ocsp_response(der)
    except (binascii.Error, ValueError) as exc:
        raise InvalidOcspResponse("the OCSP response is malformed") from exc
    if response.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise InvalidOcspResponse(f"the OCSP responder answered {response.response_status.name}")
    try:
        single = _single_response(response, user_cert, issuer)
        responder = _responder(response, issuer)
        _verify_signed_by(
            responder,
            response.signature,
            response.tbs_response_bytes,
            response.signature_hash_algorithm,
        )
    except (InvalidSignature, ValueError, TypeError) as exc:
        raise InvalidOcspResponse(f"the OCSP response is not validly signed: {exc}") from exc
    nonce_matches: bool | None = None
    if signature_b64 is not None:
        digest = hashlib.sha1(signature_b64.encode("ascii"), usedforsecurity=False).digest()
        try:
            nonce = response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
        except x509.ExtensionNotFound:
            nonce_matches = False
        else:
            nonce_matches = nonce in (digest, b"\x04\x14" + digest)
    status = {
        ocsp.OCSPCertStatus.GOOD: CertificateStatus.GOOD,
        ocsp.OCSPCertStatus.REVOKED: CertificateStatus.REVOKED,
        ocsp.OCSPCertStatus.UNKNOWN: CertificateStatus.UNKNOWN,
    }[single.certificate_status]
    return OcspStatus(
        status=status,
        produced_at=response.produced_at_utc,
        this_update=single.this_update_utc,
        next_update=single.next_update_utc,
        revocation_time=single.revocation_time_utc,
        responder=responder,
        nonce_matches_signature=nonce_matches,
    )


# -- the signature ---------------------------------------------------------------------


def _x509_data(xml: bytes) -> list[x509.Certificate]:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    root = etree.fromstring(xml, parser=parser)
    if root.tag != f"{{{DS_NS}}}Signature":
        raise InvalidBankIdSignature("the document is not an XML signature")
    elements = root.findall(f"{{{DS_NS}}}KeyInfo/{{{DS_NS}}}X509Data/{{{DS_NS}}}X509Certificate")
    if not elements:
        raise InvalidBankIdSignature("the signature carries no certificate")
    try:
        return [
            x509.load_der_x509_certificate(base64.b64decode("".join((e.text or "").split())))
            for e in elements
        ]
    except (binascii.Error, ValueError) as exc:
        raise InvalidBankIdSignature("a certificate in the signature is malformed") from exc


def _leaf(
    certificates: list[x509.Certificate],
) -> tuple[x509.Certificate, list[x509.Certificate]]:
    """The one certificate that issued none of the others (BankID lists it first)."""
    issuers = {c.issuer for c in certificates if c.issuer != c.subject}
    leaves = [c for c in certificates if c.subject not in issuers]
    if len(leaves) != 1:
        raise InvalidBankIdSignature("the certificates in the signature do not form one chain")
    leaf = leaves[0]
    return leaf, [c for c in certificates if c is not leaf]


def _require_ca(_policy: object, _cert: x509.Certificate, value: x509.BasicConstraints) -> None:
    if not value.ca:
        raise ValueError("an issuer of the chain is not a CA")


def _require_signing_key(_policy: object, _cert: x509.Certificate, value: x509.KeyUsage) -> None:
    if not (value.digital_signature or value.content_commitment):
        raise ValueError("the signer's certificate may not sign")


def _verify_chain(
    leaf: x509.Certificate,
    intermediates: list[x509.Certificate],
    trust_roots: Sequence[x509.Certificate],
    at: datetime,
) -> list[x509.Certificate]:
    # BankID's chains predate the Web PKI's profile: require what matters for a signature
    # (CAs that are CAs, a signer whose key may sign, validity, signatures up to a root we
    # trust), and not the TLS-server details (SANs, extended key usages, AKI everywhere).
    ca_policy = ExtensionPolicy.permit_all().require_present(
        x509.BasicConstraints, Criticality.AGNOSTIC, _require_ca
    )
    ee_policy = ExtensionPolicy.permit_all().require_present(
        x509.KeyUsage, Criticality.AGNOSTIC, _require_signing_key
    )
    verifier = (
        PolicyBuilder()
        .store(Store(list(trust_roots)))
        .time(at)
        .extension_policies(ca_policy=ca_policy, ee_policy=ee_policy)
        .build_client_verifier()
    )
    try:
        verified = verifier.verify(leaf, intermediates)
    except VerificationError as exc:
        raise InvalidBankIdSignature(
            f"the signer's certificate does not chain to a trusted root: {exc}"
        ) from exc
    return list(verified.chain)


def _child_text(parent: etree._Element, path: str) -> str | None:
    element = parent.find(path, namespaces={"b": BANKID_NS})
    if element is None:
        return None
    return "".join(element.itertext()).strip()


def _decoded(value: str | None, what: str) -> bytes:
    if not value:
        return b""
    try:
        return base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidBankIdSignature(f"{what} is not base64") from exc


def _name_part(certificate: x509.Certificate, oid: x509.ObjectIdentifier) -> str:
    attributes = certificate.subject.get_attributes_for_oid(oid)
    return str(attributes[0].value) if attributes else ""


def _signed_data(signed: etree._Element, chain: list[x509.Certificate], xml: bytes) -> SignedData:
    visible = _decoded(_child_text(signed, "b:usrVisibleData"), "usrVisibleData")
    hidden = _decoded(_child_text(signed, "b:usrNonVisibleData"), "usrNonVisibleData")
    try:
        visible_text = visible.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidBankIdSignature("usrVisibleData is not UTF-8") from exc
    leaf = chain[0]
    personal_number = _name_part(leaf, NameOID.SERIAL_NUMBER)
    if not (len(personal_number) == 12 and personal_number.isdigit()):
        raise InvalidBankIdSignature("the signer's certificate holds no personal number")
    given_name = _name_part(leaf, NameOID.GIVEN_NAME)
    surname = _name_part(leaf, NameOID.SURNAME)
    name = _name_part(leaf, NameOID.COMMON_NAME) or f"{given_name} {surname}".strip()
    return SignedData(
        user_visible_data=visible_text,
        user_non_visible_data=hidden.decode("utf-8", errors="replace"),
        user_non_visible_data_bytes=hidden,
        personal_number=personal_number,
        name=name,
        given_name=given_name,
        surname=surname,
        certificates=chain,
        function=_child_text(signed, "b:clientInfo/b:funcId") or "",
        server_nonce=_child_text(signed, "b:srvInfo/b:nonce") or "",
        xml=xml,
    )


# -- OCSP ------------------------------------------------------------------------------


def _single_response(
    response: ocsp.OCSPResponse, user_cert: x509.Certificate, issuer: x509.Certificate
) -> ocsp.OCSPSingleResponse:
    for single in response.responses:
        expected = (
            ocsp.OCSPRequestBuilder()
            .add_certificate(user_cert, issuer, single.hash_algorithm)
            .build()
        )
        if (
            single.serial_number == user_cert.serial_number
            and single.issuer_key_hash == expected.issuer_key_hash
            and single.issuer_name_hash == expected.issuer_name_hash
        ):
            return single
    raise InvalidOcspResponse("the OCSP response is not about the signer's certificate")


def _key_hash(certificate: x509.Certificate) -> bytes:
    """SHA-1 of the public key's bits, as in the OCSP ResponderID (RFC 6960, 4.2.1)."""
    return x509.SubjectKeyIdentifier.from_public_key(certificate.public_key()).digest


def _responder(response: ocsp.OCSPResponse, issuer: x509.Certificate) -> x509.Certificate:
    def is_responder(certificate: x509.Certificate) -> bool:
        if response.responder_key_hash is not None:
            return _key_hash(certificate) == response.responder_key_hash
        return certificate.subject == response.responder_name

    if is_responder(issuer):
        return issuer
    for candidate in response.certificates:
        if not is_responder(candidate):
            continue
        candidate.verify_directly_issued_by(issuer)
        try:
            usages = candidate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except x509.ExtensionNotFound as exc:
            raise InvalidOcspResponse("the responder is not certified for OCSP") from exc
        if ExtendedKeyUsageOID.OCSP_SIGNING not in usages:
            raise InvalidOcspResponse("the responder is not certified for OCSP")
        produced = response.produced_at_utc
        if not candidate.not_valid_before_utc <= produced <= candidate.not_valid_after_utc:
            raise InvalidOcspResponse("the responder's certificate was not valid then")
        return candidate
    raise InvalidOcspResponse("the OCSP response is signed by neither the issuer nor its responder")


def _verify_signed_by(
    certificate: x509.Certificate,
    signature: bytes,
    data: bytes,
    algorithm: hashes.HashAlgorithm | None,
) -> None:
    if algorithm is None:
        raise InvalidOcspResponse("the OCSP response's signature algorithm is not supported")
    key = certificate.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        key.verify(signature, data, padding.PKCS1v15(), algorithm)
    elif isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(signature, data, ec.ECDSA(algorithm))
    else:
        raise InvalidOcspResponse("the responder's key type is not supported")
