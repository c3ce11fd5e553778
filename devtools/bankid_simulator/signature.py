"""The XML signature of a completed order, shaped like BankID's.

An enveloping XML-DSig ``Signature`` with two references, as BankID makes them: one to the
``bankIdSignedData`` in its ``Object`` (what the user saw and signed, the RP's hidden data,
server and client information) and one to ``KeyInfo`` (the user's certificate chain), both
canonicalised with inclusive C14N 1.0 and digested with SHA-256, and the ``SignedInfo``
signed with RSA-SHA256 by the user's key. ``app.eid.evidence`` verifies it with signxml.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from lxml import etree

DS_NS = "http://www.w3.org/2000/09/xmldsig#"
BANKID_NS = "http://www.bankid.com/signature/v1.0.0/types"
C14N = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
SIGNED_DATA_ID = "bidSignedData"
KEY_INFO_ID = "bidKeyInfo"

RP_NAME = "cn=BankID Simulator RP,o=Statens tjänstepensionsverk"
RP_DISPLAY_NAME = "Statens tjänstepensionsverk (BankID-simulator)"
CLIENT_VERSION = "Personal=7.14.0.3,libtokenapi_so=7.14.0,BankID_exe=7.14.0"


@dataclass(frozen=True)
class SignedContent:
    """What goes into ``bankIdSignedData``."""

    function: str
    """``Identification`` (auth orders) or ``Signing`` (sign orders)."""
    user_visible_data: str | None
    """Base64, as the RP sent it."""
    user_non_visible_data: str | None
    uhi: str
    device_ip: str
    mrtd: bool = False


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def _ds(parent: etree._Element, tag: str, **attributes: str) -> etree._Element:
    return etree.SubElement(parent, f"{{{DS_NS}}}{tag}", attributes)


def _text(parent: etree._Element, tag: str, text: str, **attributes: str) -> etree._Element:
    element = etree.SubElement(parent, f"{{{BANKID_NS}}}{tag}", attributes)
    element.text = text
    return element


def _c14n(element: etree._Element) -> bytes:
    # libxml2 (through lxml) gives the grandchildren of a subtree whose default namespace is
    # declared on an ancestor a spurious xmlns="" (signxml issue #193). Nothing in a BankID
    # signature is in the empty namespace, so dropping them gives the spec's C14N, the one
    # BankID's own signer produces; app.eid.evidence verifies the same way.
    c14n = etree.tostring(element, method="c14n", exclusive=False, with_comments=False)
    return c14n.replace(b' xmlns=""', b"")


def _reference(signed_info: etree._Element, uri: str, **attributes: str) -> etree._Element:
    reference = _ds(signed_info, "Reference", URI=uri, **attributes)
    transforms = _ds(reference, "Transforms")
    _ds(transforms, "Transform", Algorithm=C14N)
    _ds(reference, "DigestMethod", Algorithm=SHA256)
    return _ds(reference, "DigestValue")


def build_signature(
    content: SignedContent, key: rsa.RSAPrivateKey, chain: list[x509.Certificate]
) -> bytes:
    """The signature document (UTF-8 XML), signed by ``key`` whose certificate is ``chain[0]``."""
    root = etree.Element(f"{{{DS_NS}}}Signature", nsmap={None: DS_NS})
    signed_info = _ds(root, "SignedInfo")
    _ds(signed_info, "CanonicalizationMethod", Algorithm=C14N)
    _ds(signed_info, "SignatureMethod", Algorithm=RSA_SHA256)
    data_digest = _reference(signed_info, f"#{SIGNED_DATA_ID}", Type=BANKID_NS)
    key_info_digest = _reference(signed_info, f"#{KEY_INFO_ID}")
    signature_value = _ds(root, "SignatureValue")

    key_info = _ds(root, "KeyInfo", Id=KEY_INFO_ID)
    x509_data = _ds(key_info, "X509Data")
    for certificate in chain:
        der = certificate.public_bytes(serialization.Encoding.DER)
        _ds(x509_data, "X509Certificate").text = base64.b64encode(der).decode("ascii")

    obj = _ds(root, "Object")
    signed = etree.SubElement(
        obj, f"{{{BANKID_NS}}}bankIdSignedData", {"Id": SIGNED_DATA_ID}, nsmap={None: BANKID_NS}
    )
    if content.user_visible_data:
        _text(
            signed, "usrVisibleData", content.user_visible_data, charset="UTF-8", visible="wysiwys"
        )
    if content.user_non_visible_data:
        _text(signed, "usrNonVisibleData", content.user_non_visible_data)
    server = etree.SubElement(signed, f"{{{BANKID_NS}}}srvInfo")
    _text(server, "name", _b64(RP_NAME))
    _text(server, "nonce", base64.b64encode(secrets.token_bytes(20)).decode("ascii"))
    _text(server, "displayName", _b64(RP_DISPLAY_NAME))
    client = etree.SubElement(signed, f"{{{BANKID_NS}}}clientInfo")
    _text(client, "funcId", content.function)
    _text(client, "version", _b64(CLIENT_VERSION))
    env = etree.SubElement(client, f"{{{BANKID_NS}}}env")
    ai = etree.SubElement(env, f"{{{BANKID_NS}}}ai")
    _text(ai, "type", _b64("SIMULATOR"))
    _text(ai, "deviceInfo", _b64(f"BankID-simulator;{content.device_ip}"))
    _text(ai, "uhi", content.uhi)
    _text(ai, "fsib", "0")
    _text(ai, "utb", "cs1")
    requirement = etree.SubElement(ai, f"{{{BANKID_NS}}}requirement")
    condition = etree.SubElement(requirement, f"{{{BANKID_NS}}}condition")
    _text(condition, "type", "CertificatePolicies")
    _text(condition, "value", "1.2.752.78.1.5")
    _text(ai, "uauth", "pw")
    if content.mrtd:
        _text(ai, "mrtd", "true")

    data_digest.text = base64.b64encode(hashlib.sha256(_c14n(signed)).digest()).decode()
    key_info_digest.text = base64.b64encode(hashlib.sha256(_c14n(key_info)).digest()).decode()
    value = key.sign(_c14n(signed_info), padding.PKCS1v15(), hashes.SHA256())
    signature_value.text = base64.b64encode(value).decode("ascii")
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", standalone=False))


def unique_hardware_id(personal_number: str) -> str:
    """A stable stand-in for the ``uhi`` of the person's (simulated) device."""
    digest = hashlib.sha256(f"bankid-simulator-device:{personal_number}".encode()).digest()
    return base64.b64encode(digest[:30]).decode("ascii")
