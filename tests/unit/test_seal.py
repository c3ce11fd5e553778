"""The agency's seal: PAdES B-T with evidence attached, checked by us and by poppler.

No database: a test PKI in a temporary directory, a rendered form, pyHanko, pdfsig, qpdf.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pypdfium2 as pdfium
import pytest
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from click.testing import CliRunner
from cryptography import x509 as cx509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.timestamps import DummyTimeStamper
from werkzeug.serving import make_server

from app.config import Settings
from app.documents import pki
from app.documents.cli import verify_pdf_command
from app.documents.qr import QR_PLACEMENT
from app.documents.render import render_form_pdf
from app.documents.seal import FIELD_NAME, Evidence, SealValidationError, seal_pdf
from app.documents.stamp import STAMP_PLACEMENT, layout_stamp_text, stamp_text, to_cp1252
from app.documents.validate import (
    ACCEPTED,
    EvidenceError,
    Level,
    Rejection,
    SealReport,
    extract_evidence,
    validate_sealed_pdf,
)
from devtools import pki as pki_helpers
from devtools import timestamps
from devtools.pki import PkiServer, ensure_test_pki, get_test_pki
from devtools.seal import TestPkiSeal
from tests.sample_forms import KEY, REGISTRATION_DATA
from tests.support import pdf_with_annotation

FORM = REGISTRATION_DATA
SIGNATURE_XML = b'<?xml version="1.0" encoding="UTF-8"?><Signature>' + b"x" * 3000 + b"</Signature>"
OCSP_RESPONSE = bytes(range(256)) * 4
EVIDENCE = [
    Evidence("bankid-signature.xml", SIGNATURE_XML, "application/xml", "BankID-signaturen"),
    Evidence("bankid-ocsp.der", OCSP_RESPONSE, "application/ocsp-response", "OCSP-svaret"),
]
SIGNER = "Bertil Berg"


# --- fixtures -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PkiServer]:
    with PkiServer(tmp_path_factory.mktemp("test-pki")) as server:
        yield server


@pytest.fixture(scope="module")
def pki_dir(pki_server: PkiServer) -> Path:
    return pki_server.directory


@pytest.fixture(scope="module")
def settings(pki_dir: Path) -> Settings:
    return Settings(secret_key="x", seal_source=TestPkiSeal(str(pki_dir)))


@pytest.fixture(scope="module")
def material(settings: Settings) -> pki.SealMaterial:
    return pki.seal_material(settings)


@pytest.fixture(scope="module")
def other_material(tmp_path_factory: pytest.TempPathFactory) -> Iterator[pki.SealMaterial]:
    """Seal material of another, freshly made CA (and TSA) that nobody trusts."""
    with PkiServer(tmp_path_factory.mktemp("other-pki")) as server:
        yield TestPkiSeal(str(server.directory)).load_seal_material()


@pytest.fixture(scope="module")
def form_pdf() -> bytes:
    return render_form_pdf(FORM, lang="sv", key=KEY, for_print=False)


@pytest.fixture(scope="module")
def sealed(form_pdf: bytes, material: pki.SealMaterial) -> bytes:
    return seal_pdf(form_pdf, material=material, evidence=EVIDENCE, signer_name=SIGNER, lang="sv")


@pytest.fixture(scope="module")
def sealed_file(sealed: bytes, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sealed") / "sealed.pdf"
    path.write_bytes(sealed)
    return path


@pytest.fixture(scope="module")
def tsa_url(material: pki.SealMaterial, pki_dir: Path) -> Iterator[str]:
    """The test TSA served over HTTP by werkzeug on a free port."""
    app = timestamps.tsa_wsgi_app(timestamps.local_timestamper(str(pki_dir)))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/test-tsa"
    finally:
        server.shutdown()
        thread.join(5)


def _identity(material: pki.SealMaterial) -> pki.SealIdentity:
    """The seal certificate of ``material``, the only one accepted."""
    return pki.SealIdentity(fingerprints=frozenset({pki.fingerprint(material.signing_cert)}))


def _validate(pdf: bytes, material: pki.SealMaterial, **kwargs: bool) -> SealReport:
    return validate_sealed_pdf(
        pdf, trust_roots=material.trust_roots, seal_identity=_identity(material), **kwargs
    )


def _check(pdf: bytes, material: pki.SealMaterial, **kwargs: bool) -> Rejection | None:
    report = _validate(pdf, material, **kwargs)
    assert report.accepted == (report.rejection is None)
    return report.rejection


def _tool(*args: str) -> subprocess.CompletedProcess[str]:
    if shutil.which(args[0]) is None:
        pytest.fail(f"{args[0]} is missing: install poppler-utils and qpdf (make test does)")
    return subprocess.run(args, capture_output=True, text=True, timeout=60)


# --- the test PKI and the seal material -----------------------------------------------


def test_test_pki_is_made_once_and_kept(pki_dir: Path, material: pki.SealMaterial) -> None:
    paths = ensure_test_pki(pki_dir)
    before = {p: p.read_bytes() for p in paths.all()}
    assert ensure_test_pki(pki_dir) == paths
    assert {p: p.read_bytes() for p in paths.all()} == before
    assert paths.seal_key.stat().st_mode & 0o077 == 0

    seal = cx509.load_pem_x509_certificate(paths.seal_cert.read_bytes())
    assert seal.subject.rfc4514_string() == (
        "CN=Statens tjänstepensionsverk (testsigill),O=Statens tjänstepensionsverk,C=SE"
    )
    assert isinstance(seal.public_key(), ec.EllipticCurvePublicKey)
    usage = seal.extensions.get_extension_for_class(cx509.KeyUsage).value
    assert usage.digital_signature and usage.content_commitment and not usage.key_cert_sign
    seal_ca = cx509.load_pem_x509_certificate(paths.seal_ca_cert.read_bytes())
    root = cx509.load_pem_x509_certificate(paths.root_cert.read_bytes())
    assert seal.issuer == seal_ca.subject and seal_ca.issuer == root.subject
    assert root.subject.rfc4514_string().startswith("CN=SPV Test Root CA")
    assert seal_ca.subject.rfc4514_string().startswith("CN=SPV Test Seal CA")

    tsa = cx509.load_pem_x509_certificate(paths.tsa_cert.read_bytes())
    eku = tsa.extensions.get_extension_for_class(cx509.ExtendedKeyUsage)
    assert eku.critical and list(eku.value) == [ExtendedKeyUsageOID.TIME_STAMPING]
    assert tsa.issuer == root.subject

    # One test PKI: the BankID simulator's CA is under the same root.
    bankid_ca = cx509.load_pem_x509_certificate(paths.bankid_ca_cert.read_bytes())
    assert bankid_ca.issuer == root.subject
    assert bankid_ca.extensions.get_extension_for_class(cx509.BasicConstraints).value.ca
    assert paths.bankid_ca_key.stat().st_mode & 0o077 == 0


def test_seal_material_is_loaded_once_per_process(
    settings: Settings, material: pki.SealMaterial
) -> None:
    assert pki.seal_material(settings) is material
    assert pki.seal_material(dataclasses.replace(settings, secret_key="y")) is material
    assert pki.trust_roots(settings) is pki.trust_roots(settings)
    assert material.is_test and material.tsa_url is None


# --- a sealed form ------------------------------------------------------------------


def test_sealed_form_is_accepted_with_its_evidence(
    sealed: bytes, material: pki.SealMaterial
) -> None:
    report = _validate(sealed, material)
    assert report.accepted, report.reason
    assert report.reason == ACCEPTED and report.rejection is None
    assert report.level == Level.B_LTA
    assert report.signer == "Statens tjänstepensionsverk (testsigill)"
    now = datetime.now(UTC)
    assert report.signed_dt is not None and report.timestamp_dt is not None
    assert now - timedelta(minutes=5) < report.timestamp_dt <= now + timedelta(seconds=5)
    assert abs(report.timestamp_dt - report.signed_dt) < timedelta(seconds=5)
    assert report.evidence_names == ["bankid-ocsp.der", "bankid-signature.xml"]


def test_the_seals_report_carries_the_evidence_read_once(
    sealed: bytes, material: pki.SealMaterial
) -> None:
    """The automated checks take the evidence from the report (the PDF is read once)."""
    report = _validate(sealed, material)
    assert report.evidence == extract_evidence(sealed)
    assert report.evidence == {
        "bankid-signature.xml": SIGNATURE_XML,
        "bankid-ocsp.der": OCSP_RESPONSE,
    }


def test_evidence_comes_back_byte_for_byte(sealed: bytes, form_pdf: bytes) -> None:
    assert extract_evidence(sealed) == {
        "bankid-signature.xml": SIGNATURE_XML,
        "bankid-ocsp.der": OCSP_RESPONSE,
    }
    assert extract_evidence(form_pdf) == {}
    with pytest.raises(EvidenceError):
        extract_evidence(b"not a pdf")


def test_evidence_are_pdfa3_associated_files(sealed: bytes) -> None:
    root = PdfFileReader(io.BytesIO(sealed)).root
    specs = [ref.get_object() for ref in root["/AF"]]
    assert [str(spec["/UF"]) for spec in specs] == ["bankid-signature.xml", "bankid-ocsp.der"]
    for spec, evidence in zip(specs, EVIDENCE, strict=True):
        assert spec["/Type"] == "/Filespec" and spec["/F"] == spec["/UF"]
        assert spec["/AFRelationship"] == "/Supplement"
        assert str(spec["/Desc"]) == evidence.description
        stream = spec["/EF"]["/F"]
        assert stream["/Type"] == "/EmbeddedFile"
        assert stream["/Subtype"] == "/" + evidence.mime_type
        assert stream["/Params"]["/Size"] == len(evidence.content)
        assert generic.parse_pdf_date(stream["/Params"]["/ModDate"]) <= datetime.now(UTC)


def test_sealed_pdf_stays_pdfa3_and_passes_qpdf(
    sealed: bytes, sealed_file: Path, form_pdf: bytes
) -> None:
    assert sealed.startswith(form_pdf), "the seal must be an incremental update"
    reader = PdfFileReader(io.BytesIO(sealed))
    root = reader.root
    assert "/Version" not in root, "PDF/A-3 is PDF 1.7: no catalogue /Version 2.0"
    assert root["/Extensions"]["/ESIC"]["/BaseVersion"] == "/1.7"
    xmp = root["/Metadata"].data.decode("utf-8")
    assert 'pdfaid:part="3"' in xmp and 'pdfaid:conformance="A"' in xmp
    producer = re.search(r'pdf:Producer="([^"]*)"', xmp)
    assert producer and str(reader.trailer["/Info"]["/Producer"]) == producer.group(1)
    assert root["/MarkInfo"]["/Marked"] and "/StructTreeRoot" in root

    check = _tool("qpdf", "--check", str(sealed_file))
    assert check.returncode == 0, check.stdout + check.stderr
    assert "No syntax or stream encoding errors found" in check.stdout


def test_visible_stamp_on_the_last_page_beside_the_footer(sealed: bytes, form_pdf: bytes) -> None:
    reader = PdfFileReader(io.BytesIO(sealed))
    pages = reader.root["/Pages"]["/Kids"]
    last = pages[len(pages) - 1].get_object()
    (widget,) = [a.get_object() for a in last["/Annots"] if a.get_object()["/T"] == FIELD_NAME]
    x1, y1, x2, y2 = (float(v) for v in widget["/Rect"])
    assert (x1, y1, x2, y2) == STAMP_PLACEMENT.box()
    assert widget["/F"] & 4, "printable, as PDF/A requires"

    mm = 72 / 25.4
    qr = (QR_PLACEMENT.x_mm, QR_PLACEMENT.y_mm)
    qr_right, qr_top = (qr[0] + QR_PLACEMENT.size_mm) * mm, (qr[1] + QR_PLACEMENT.size_mm) * mm
    assert x1 > qr_right or y1 > qr_top, "the stamp covers the QR code"
    # Nothing printed on the form's last page lies under the stamp (the footer included).
    document = pdfium.PdfDocument(form_pdf)
    try:
        text = document[len(document) - 1].get_textpage()
        boxes = [text.get_charbox(i) for i in range(text.count_chars())]
    finally:
        document.close()
    assert boxes
    for left, bottom, right, top in boxes:
        assert right <= x1 or left >= x2 or top <= y1 or bottom >= y2

    shown = widget["/AP"]["/N"].data
    lines = [bytes.fromhex(h.decode()) for h in re.findall(rb"<([0-9a-f]+)> Tj", shown)]
    words = b" ".join(lines).decode("cp1252")
    assert words.startswith(f"Elektroniskt underskriven av {SIGNER} med BankID och förseglad av")
    assert re.search(r"Statens tjänstepensionsverk, \d{4}-\d\d-\d\d \d\d:\d\d UTC$", words)


def test_stamp_text_in_english_and_with_unusual_names() -> None:
    at = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
    assert stamp_text("Ann  Lee", at, "en") == (
        "Signed electronically by Ann Lee with BankID and sealed by "
        "the National Government Employee Pensions Board (SPV), 2026-03-02 09:30 UTC"
    )
    assert to_cp1252("Čapek Łukasz Ångström 李") == "Capek ?ukasz Ångström ?".encode("cp1252")
    assert to_cp1252("a\x01b\x7f  c\u200b") == b"a?b? c?"
    box = STAMP_PLACEMENT.box()
    width, height = box[2] - box[0] - 8, box[3] - box[1] - 8
    size, lines = layout_stamp_text(stamp_text("Bertil Berg", at, "sv"), width, height)
    assert size == 7.0 and len(lines) == 3
    long_name = " ".join(["Maria-Kristina Alexandra von Hohenzollern-Sigmaringen"] * 3)
    size, lines = layout_stamp_text(stamp_text(long_name, at, "sv"), width, height)
    assert 4 <= size < 7.0 and len(lines) * size * 1.3 <= height


def test_evidence_must_be_well_formed(form_pdf: bytes, material: pki.SealMaterial) -> None:
    twice = [EVIDENCE[0], EVIDENCE[0]]
    with pytest.raises(ValueError, match="unique"):
        seal_pdf(form_pdf, material=material, evidence=twice, signer_name=SIGNER, lang="sv")
    bad = [dataclasses.replace(EVIDENCE[0], mime_type="xml")]
    with pytest.raises(ValueError, match="MIME"):
        seal_pdf(form_pdf, material=material, evidence=bad, signer_name=SIGNER, lang="sv")


# --- the independent validator: poppler's pdfsig ----------------------------------------


def _pdfsig(path: Path, nss_dir: Path | None = None) -> str:
    args = ["pdfsig", *(["-nssdir", f"sql:{nss_dir}"] if nss_dir else []), str(path)]
    result = _tool(*args)
    return result.stdout + result.stderr


def test_pdfsig_finds_the_seal_valid_and_the_document_timestamp_over_the_whole_document(
    sealed_file: Path, pki_dir: Path, tmp_path: Path
) -> None:
    out = _pdfsig(sealed_file)
    seal, archive = out.split("Signature #2:")
    assert "Signature Field Name: SPV-sigill" in seal
    assert "Signer Certificate Common Name: Statens tjänstepensionsverk (testsigill)" in seal
    assert "Signature Type: ETSI.CAdES.detached" in seal
    assert "Signature Validation: Signature is Valid." in seal
    # PAdES B-LTA: the seal's revision is followed by the DSS and a document timestamp,
    # which pdfsig lists (poppler 22 does not validate RFC 3161 document timestamps).
    assert "Not total document signed" in seal
    assert "Signer Certificate Common Name: SPV Test TSA" in archive
    ranges = re.search(r"Signed Ranges: \[0 - (\d+)\], \[(\d+) - (\d+)\]", archive)
    assert ranges is not None
    reader = PdfFileReader(io.BytesIO(sealed_file.read_bytes()))
    (timestamp,) = reader.embedded_timestamp_signatures
    assert [int(v) for v in ranges.groups()] == [
        timestamp.byte_range[1],
        timestamp.byte_range[2],
        timestamp.byte_range[2] + timestamp.byte_range[3],
    ]

    if shutil.which("certutil") is None:  # libnss3-tools: only then can pdfsig trust our root
        return
    nss = tmp_path / "nss"
    nss.mkdir()
    root = str(ensure_test_pki(pki_dir).root_cert)
    db = f"sql:{nss}"
    assert _tool("certutil", "-N", "-d", db, "--empty-password").returncode == 0
    trust = _tool("certutil", "-A", "-d", db, "-n", "SPV Test Root CA", "-t", "CT,C,C", "-i", root)
    assert trust.returncode == 0, trust.stderr
    assert "Certificate Validation: Certificate is Trusted." in _pdfsig(sealed_file, nss)


def test_pdfsig_sees_a_changed_document(sealed: bytes, tmp_path: Path) -> None:
    path = tmp_path / "changed.pdf"
    path.write_bytes(_change_one_byte(sealed))
    out = _pdfsig(path)
    assert "Signature Validation: Signature is Valid." not in out
    assert "Digest Mismatch" in out


# --- rejections ---------------------------------------------------------------------


def _change_one_byte(pdf: bytes) -> bytes:
    """A byte of the binary comment on the second line: inside the signed range, harmless to
    any parser."""
    at = pdf.index(b"\n%") + 2
    return pdf[:at] + bytes([pdf[at] ^ 0x01]) + pdf[at + 1 :]


def test_one_changed_byte_is_a_changed_document(sealed: bytes, material: pki.SealMaterial) -> None:
    assert _check(_change_one_byte(sealed), material) == Rejection.CHANGED
    middle = len(sealed) // 3  # inside the form's compressed streams
    flipped = sealed[:middle] + bytes([sealed[middle] ^ 0xFF]) + sealed[middle + 1 :]
    assert _check(flipped, material) == Rejection.CHANGED


def test_an_annotation_added_after_sealing_is_a_changed_document(
    sealed: bytes, material: pki.SealMaterial
) -> None:
    assert _check(pdf_with_annotation(sealed), material) == Rejection.CHANGED


def test_a_hash_vouched_for_spares_the_difference_analysis_of_that_file_only(
    sealed: bytes, material: pki.SealMaterial
) -> None:
    """The pipeline passes the hash it recorded when sealing: that very file validates as
    without it; a file changed since (another hash) still gets pyHanko's analysis."""
    vouched = hashlib.sha256(sealed).hexdigest()
    report = validate_sealed_pdf(
        sealed,
        trust_roots=material.trust_roots,
        seal_identity=_identity(material),
        sealed_sha256=vouched,
    )
    assert report.accepted and report.level == _validate(sealed, material).level
    changed = validate_sealed_pdf(
        pdf_with_annotation(sealed),
        trust_roots=material.trust_roots,
        seal_identity=_identity(material),
        sealed_sha256=vouched,
    )
    assert changed.rejection == Rejection.CHANGED


def test_bytes_appended_are_outside_the_seal(sealed: bytes, material: pki.SealMaterial) -> None:
    assert _check(sealed + b"\n% appended\n", material) == Rejection.NOT_WHOLE_FILE


def test_a_seal_from_an_unknown_ca_is_not_trusted(
    form_pdf: bytes, other_material: pki.SealMaterial, material: pki.SealMaterial
) -> None:
    foreign = seal_pdf(
        form_pdf, material=other_material, evidence=EVIDENCE, signer_name=SIGNER, lang="sv"
    )
    assert _check(foreign, material) == Rejection.UNTRUSTED
    assert _check(foreign, other_material) is None


def _b_t_seal(pdf: bytes, material: pki.SealMaterial) -> bytes:
    """A seal as sealing made it before PAdES B-LTA: signed and timestamped, no DSS, no
    document timestamp (sealing now refuses a TSA it cannot validate)."""
    meta = signers.PdfSignatureMetadata(
        field_name=FIELD_NAME, subfilter=fields.SigSeedSubFilter.PADES, md_algorithm="sha256"
    )
    signer = signers.PdfSigner(meta, signer=material.signer, timestamper=material.timestamper)
    return signer.sign_pdf(IncrementalPdfFileWriter(io.BytesIO(pdf))).getvalue()


def test_the_timestamp_must_be_there_and_trusted(
    form_pdf: bytes, material: pki.SealMaterial, other_material: pki.SealMaterial
) -> None:
    untrusted_tsa = dataclasses.replace(material, timestamper=other_material.timestamper)
    with pytest.raises(SealValidationError):  # sealing checks the TSA's certificate
        seal_pdf(form_pdf, material=untrusted_tsa, evidence=[], signer_name=SIGNER, lang="en")
    pdf = _b_t_seal(form_pdf, untrusted_tsa)
    assert _check(pdf, material) == Rejection.NO_TIMESTAMP

    writer = IncrementalPdfFileWriter(io.BytesIO(form_pdf))
    meta = signers.PdfSignatureMetadata(
        field_name=FIELD_NAME, subfilter=fields.SigSeedSubFilter.PADES, md_algorithm="sha256"
    )
    untimed = signers.PdfSigner(meta, signer=material.signer).sign_pdf(writer).getvalue()
    assert _check(untimed, material) == Rejection.NO_TIMESTAMP
    assert _check(untimed, material, require_timestamp=False) is None


# --- the seal is the agency's ----------------------------------------------------------


def _material_of(
    cert: cx509.Certificate,
    key: PrivateKeyTypes,
    chain: list[cx509.Certificate],
    material: pki.SealMaterial,
) -> pki.SealMaterial:
    """Seal material for another certificate, time-stamped by the agency's TSA."""

    def asn1(c: cx509.Certificate) -> asn1_x509.Certificate:
        return asn1_x509.Certificate.load(c.public_bytes(serialization.Encoding.DER))

    return pki.SealMaterial(
        signing_cert=asn1(cert),
        private_key=key,
        chain=tuple(asn1(c) for c in chain),
        trust_roots=material.trust_roots,
        timestamper=material.timestamper,
    )


def _impostor(pki_dir: Path, material: pki.SealMaterial, subject: cx509.Name) -> pki.SealMaterial:
    """A certificate named ``subject`` issued under the same root by the BankID
    simulator's CA (whose key the test PKI keeps), and its key."""
    test_pki = get_test_pki(pki_dir)
    ca = (test_pki.bankid_ca.certificate, test_pki.bankid_ca.key)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = pki_helpers._issue(subject, key, ca, days=30)
    return _material_of(cert, key, [test_pki.bankid_ca.certificate], material)


def _tsa_as_sealer(pki_dir: Path, material: pki.SealMaterial) -> pki.SealMaterial:
    paths = ensure_test_pki(pki_dir)
    return _material_of(
        cx509.load_pem_x509_certificate(paths.tsa_cert.read_bytes()),
        serialization.load_pem_private_key(paths.tsa_key.read_bytes(), None),
        [],
        material,
    )


def test_only_the_agencys_seal_certificate_is_accepted(
    form_pdf: bytes, material: pki.SealMaterial, pki_dir: Path
) -> None:
    # The test TSA's certificate chains to the same root; its seal used to pass.
    by_tsa = seal_pdf(
        form_pdf,
        material=_tsa_as_sealer(pki_dir, material),
        evidence=[],
        signer_name=SIGNER,
        lang="sv",
    )
    assert _check(by_tsa, material) == Rejection.NOT_AGENCY_SEAL
    # A certificate with the seal's very name, issued by another CA under the same root.
    seal_cert = ensure_test_pki(pki_dir).seal_cert
    impostor = _impostor(
        pki_dir, material, cx509.load_pem_x509_certificate(seal_cert.read_bytes()).subject
    )
    assert impostor.signing_cert.subject == material.signing_cert.subject
    forged = seal_pdf(form_pdf, material=impostor, evidence=[], signer_name=SIGNER, lang="sv")
    report = _validate(forged, material)
    assert report.rejection == Rejection.NOT_AGENCY_SEAL
    assert report.reason == "the seal is not the agency's: another certificate signed it"


def test_a_seal_named_by_subject_and_organisation_number(
    form_pdf: bytes, material: pki.SealMaterial, pki_dir: Path
) -> None:
    def named(orgnr: str) -> cx509.Name:
        return cx509.Name(
            [
                cx509.NameAttribute(NameOID.COUNTRY_NAME, "SE"),
                cx509.NameAttribute(NameOID.ORGANIZATION_NAME, pki.AGENCY),
                cx509.NameAttribute(cx509.ObjectIdentifier("2.5.4.97"), f"NTRSE-{orgnr}"),
                cx509.NameAttribute(NameOID.COMMON_NAME, "Statens tjänstepensionsverk"),
            ]
        )

    identity = pki.SealIdentity(
        subject="Statens tjänstepensionsverk", organisation_number="202100-5489"
    )
    agency = _impostor(pki_dir, material, named("2021005489"))
    other = _impostor(pki_dir, material, named("5560000001"))
    assert identity.matches(agency.signing_cert)
    assert not identity.matches(other.signing_cert)
    assert not identity.matches(material.signing_cert)  # no organisation number
    sealed = seal_pdf(form_pdf, material=agency, evidence=[], signer_name=SIGNER, lang="sv")
    roots = material.trust_roots
    assert validate_sealed_pdf(sealed, trust_roots=roots, seal_identity=identity).accepted
    with pytest.raises(pki.SealConfigurationError):
        pki.SealIdentity(subject="Statens tjänstepensionsverk")
    with pytest.raises(pki.SealConfigurationError):
        pki.seal_identity_from_settings(Settings(secret_key="x", seal_cert_fingerprints="abc"))


def test_the_seal_in_use_is_accepted_unless_the_settings_name_another(
    settings: Settings, material: pki.SealMaterial, pki_dir: Path
) -> None:
    assert pki.accepted_seal(settings) == _identity(material)
    tsa = cx509.load_pem_x509_certificate(ensure_test_pki(pki_dir).tsa_cert.read_bytes())
    named = dataclasses.replace(
        settings, seal_cert_fingerprints=tsa.fingerprint(hashes.SHA256()).hex()
    )
    assert pki.accepted_seal(named).fingerprints == {tsa.fingerprint(hashes.SHA256()).hex()}


def _countersign(pdf: bytes, by: pki.SealMaterial) -> bytes:
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    meta = signers.PdfSignatureMetadata(
        field_name="Kontrasignatur", subfilter=fields.SigSeedSubFilter.PADES, md_algorithm="sha256"
    )
    return (
        signers.PdfSigner(meta, signer=by.signer, timestamper=by.timestamper)
        .sign_pdf(writer)
        .getvalue()
    )


def test_a_countersignature_added_later_is_a_change_after_sealing(
    sealed: bytes, material: pki.SealMaterial, other_material: pki.SealMaterial, pki_dir: Path
) -> None:
    # Not "not trusted" (the countersigner's CA is unknown): the sealed document changed.
    assert _check(_countersign(sealed, other_material), material) == Rejection.CHANGED
    # A countersignature under the same root used to pass as the seal itself.
    by_tsa = _countersign(sealed, _tsa_as_sealer(pki_dir, material))
    assert _check(by_tsa, material) == Rejection.CHANGED


def _timestamper_at(
    when: datetime, tsa: tuple[cx509.Certificate, rsa.RSAPrivateKey]
) -> DummyTimeStamper:
    der = tsa[1].private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return DummyTimeStamper(
        tsa_cert=asn1_x509.Certificate.load(tsa[0].public_bytes(serialization.Encoding.DER)),
        tsa_key=asn1_keys.PrivateKeyInfo.load(der),
        fixed_dt=when,
    )


def test_the_timestamp_must_follow_the_signing_within_the_tsa_certificate(
    form_pdf: bytes, material: pki.SealMaterial, pki_dir: Path
) -> None:
    paths = ensure_test_pki(pki_dir)
    tsa_key = serialization.load_pem_private_key(paths.tsa_key.read_bytes(), None)
    assert isinstance(tsa_key, rsa.RSAPrivateKey)
    tsa = (cx509.load_pem_x509_certificate(paths.tsa_cert.read_bytes()), tsa_key)
    now = datetime.now(UTC)
    an_hour_early = _timestamper_at(now - timedelta(hours=1), tsa)
    early = dataclasses.replace(material, timestamper=an_hour_early)
    pdf = seal_pdf(form_pdf, material=early, evidence=[], signer_name=SIGNER, lang="sv")
    assert _check(pdf, material) == Rejection.TIMESTAMP_BEFORE_SIGNING

    # A TSA certificate under the same root whose validity ends now; a timestamp an hour on.
    test_pki = get_test_pki(pki_dir)
    short_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    short = pki_helpers._issue(
        cx509.Name([cx509.NameAttribute(NameOID.COMMON_NAME, "SPV Test TSA (short)")]),
        short_key,
        (test_pki.bankid_ca.certificate, test_pki.bankid_ca.key),
        days=0,
        extensions=[(cx509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), True)],
    )
    late = dataclasses.replace(
        material, timestamper=_timestamper_at(now + timedelta(hours=1), (short, short_key))
    )
    pdf = _b_t_seal(form_pdf, late)
    assert _check(pdf, material) == Rejection.TIMESTAMP_OUTSIDE_TSA_VALIDITY


def test_the_seals_unused_room_must_be_zeros(
    sealed: bytes, form_pdf: bytes, material: pki.SealMaterial
) -> None:
    # The seal's /Contents, and the document timestamp's (the last one).
    for at in (sealed.index(b"/Contents <", len(form_pdf)), sealed.rindex(b"/Contents <")):
        end = sealed.index(b">", at)
        assert sealed[end - 8 : end] == b"00000000", "pyHanko pads the signature with zeros"
        hidden = sealed[: end - 8] + b"4869646e" + sealed[end:]  # "Hidn", outside the signed bytes
        assert _check(hidden, material) == Rejection.PADDING_NOT_ZERO


def test_a_truncated_file(sealed: bytes, material: pki.SealMaterial) -> None:
    assert _check(sealed[: len(sealed) // 2], material) == Rejection.NOT_A_PDF
    for fraction in (0.05, 0.3, 0.7, 0.9, 0.99):
        assert _check(sealed[: int(len(sealed) * fraction)], material) == Rejection.NOT_A_PDF
    assert _check(sealed[:-10], material) == Rejection.NOT_A_PDF


@pytest.mark.parametrize(
    "data",
    [b"", b"hello", b"%PDF-1.7\n", b"%PDF-1.7\n" + bytes(range(256)) * 8, "text"],
    ids=["empty", "text", "header-only", "garbage", "str"],
)
def test_not_a_pdf(data: bytes, material: pki.SealMaterial) -> None:
    assert _check(data, material) == Rejection.NOT_A_PDF


def test_a_pdf_without_a_seal(form_pdf: bytes, material: pki.SealMaterial) -> None:
    report = _validate(form_pdf, material)
    assert not report.accepted and report.reason == "no seal found"


def test_the_reasons_read_as_the_issue_says() -> None:
    assert Rejection.CHANGED == "the document was changed after it was sealed"
    assert Rejection.UNTRUSTED == "the seal's certificate is not trusted"
    assert Rejection.NOT_A_PDF == "the file is truncated or not a PDF"
    assert Rejection.NO_SEAL == "no seal found"
    assert Rejection.NOT_WHOLE_FILE == "the seal does not cover the whole file"
    assert Rejection.NO_TIMESTAMP == "the timestamp is missing or invalid"
    assert Rejection.NOT_AGENCY_SEAL == (
        "the seal is not the agency's: another certificate signed it"
    )


# --- the command line ---------------------------------------------------------------


def test_verify_pdf_command(sealed_file: Path, pki_dir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    roots = ensure_test_pki(pki_dir).root_cert
    seal_cert = ensure_test_pki(pki_dir).seal_cert
    env = {"SEAL_TRUST_ROOTS_FILE": str(roots), "SEAL_CERT_FILE": str(seal_cert)}
    result = runner.invoke(verify_pdf_command, [str(sealed_file)], env=env)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(
        "Accepted: sealed by Statens tjänstepensionsverk (testsigill) at "
    )
    assert re.search(r"timestamp \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", result.stdout)
    assert re.search(r"^Level: PAdES B-LTA, validated as of \d{4}-", result.stdout, re.M)
    assert "Newest document timestamp: " in result.stdout
    assert "Evidence: bankid-ocsp.der, bankid-signature.xml" in result.stdout

    changed = tmp_path / "changed.pdf"
    changed.write_bytes(_change_one_byte(sealed_file.read_bytes()))
    result = runner.invoke(verify_pdf_command, [str(changed)], env=env)
    assert result.exit_code == 1
    assert "Rejected: the document was changed after it was sealed" in result.stderr
    assert "Traceback" not in result.output

    result = runner.invoke(
        verify_pdf_command,
        ["--trust-roots", str(roots), "--seal-cert", str(seal_cert), str(changed)],
    )
    assert result.exit_code == 1 and "changed after it was sealed" in result.stderr

    unnamed = runner.invoke(
        verify_pdf_command, [str(sealed_file)], env={"SEAL_TRUST_ROOTS_FILE": str(roots)}
    )
    assert unnamed.exit_code == 1
    assert "Rejected: name the agency's seal" in unnamed.stderr
    by_fingerprint = runner.invoke(
        verify_pdf_command,
        [str(sealed_file)],
        env={
            "SEAL_TRUST_ROOTS_FILE": str(roots),
            "SEAL_CERT_FINGERPRINTS": cx509.load_pem_x509_certificate(seal_cert.read_bytes())
            .fingerprint(hashes.SHA256())
            .hex(":")
            .upper(),
        },
    )
    assert by_fingerprint.exit_code == 0, by_fingerprint.output
    tsa = runner.invoke(
        verify_pdf_command,
        ["--seal-cert", str(ensure_test_pki(pki_dir).tsa_cert), str(sealed_file)],
        env={"SEAL_TRUST_ROOTS_FILE": str(roots)},
    )
    assert tsa.exit_code == 1
    assert "Rejected: the seal is not the agency's" in tsa.stderr

    no_roots = runner.invoke(
        verify_pdf_command, [str(sealed_file)], env={"SEAL_TRUST_ROOTS_FILE": None}
    )
    assert no_roots.exit_code == 1
    assert "Rejected: SEAL_TRUST_ROOTS_FILE must be set" in no_roots.stderr

    elsewhere = ensure_test_pki(tmp_path / "another").root_cert
    result = runner.invoke(
        verify_pdf_command,
        [str(sealed_file)],
        env={"SEAL_TRUST_ROOTS_FILE": str(elsewhere), "SEAL_CERT_FILE": str(seal_cert)},
    )
    assert result.exit_code == 1
    assert "Rejected: the seal's certificate is not trusted" in result.stderr

    text = tmp_path / "note.pdf"
    text.write_text("hello")
    result = runner.invoke(verify_pdf_command, [str(text)], env=env)
    assert result.exit_code == 1 and "Rejected: the file is truncated or not a PDF" in result.stderr
    assert runner.invoke(verify_pdf_command, [str(tmp_path / "missing.pdf")]).exit_code == 2


# --- the TSA over HTTP, and seal material from files --------------------------------


def test_seal_timestamped_over_http(
    tsa_url: str, pki_dir: Path, form_pdf: bytes, material: pki.SealMaterial
) -> None:
    paths = ensure_test_pki(pki_dir)
    files = pki.SealFiles(
        cert_file=str(paths.seal_cert),
        key_file=str(paths.seal_key),
        chain_file=str(paths.chain),
        trust_roots_file=str(paths.trust_roots),
        tsa_url=tsa_url,
    )
    over_http = files.load_seal_material()
    assert over_http.tsa_url == tsa_url and not over_http.is_test
    pdf = seal_pdf(form_pdf, material=over_http, evidence=EVIDENCE, signer_name=SIGNER, lang="sv")
    report = _validate(pdf, material)
    assert report.accepted, report.reason


def test_the_tsa_endpoint_refuses_what_is_not_a_query(pki_dir: Path) -> None:
    timestamper = timestamps.local_timestamper(str(pki_dir))
    status, body = timestamps.answer_timestamp_query(timestamper, b"not DER")
    assert status == 400
    reply = timestamps.TimeStampRejection.load(body)["status"]
    assert reply["status"].native == "rejection"
    assert reply["fail_info"].native == {"bad_data_format"}
    app = timestamps.tsa_wsgi_app(timestamper)
    statuses: list[str] = []
    body = b"".join(app({"REQUEST_METHOD": "GET"}, lambda status, headers: statuses.append(status)))
    assert statuses == ["405 Method Not Allowed"] and body


def test_seal_material_from_pkcs12_and_pem_files(
    tsa_url: str, pki_dir: Path, tmp_path: Path, form_pdf: bytes
) -> None:
    paths = ensure_test_pki(pki_dir)
    key = serialization.load_pem_private_key(paths.seal_key.read_bytes(), None)
    cert = cx509.load_pem_x509_certificate(paths.seal_cert.read_bytes())
    p12 = tmp_path / "seal.p12"
    p12.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"seal",
            key,  # type: ignore[arg-type]
            cert,
            None,
            serialization.BestAvailableEncryption(b"hemligt"),
        )
    )
    production = Settings(
        secret_key="x",
        seal_pkcs12_file=str(p12),
        seal_key_password="hemligt",
        seal_chain_file=str(paths.chain),
        seal_trust_roots_file=str(paths.trust_roots),
        tsa_url=tsa_url,
    )
    assert isinstance(pki.seal_source(production), pki.SealFiles), "no plugin, no test PKI"
    material = pki.load_seal_material(production)
    pdf = seal_pdf(form_pdf, material=material, evidence=[], signer_name=SIGNER, lang="sv")
    assert _validate(pdf, material).accepted

    pem = dataclasses.replace(
        production,
        seal_pkcs12_file=None,
        seal_cert_file=str(paths.seal_cert),
        seal_key_file=str(paths.seal_key),
        seal_key_password=None,
    )
    assert pki.load_seal_material(pem).signing_cert.dump() == material.signing_cert.dump()

    refused = {
        "no TSA": dataclasses.replace(production, tsa_url=None),
        "no roots": dataclasses.replace(production, seal_trust_roots_file=None),
        "password": dataclasses.replace(production, seal_key_password="fel"),
        "missing": dataclasses.replace(production, seal_pkcs12_file=str(tmp_path / "x.p12")),
        "other key": dataclasses.replace(pem, seal_key_file=str(paths.tsa_key)),
        "cert only": dataclasses.replace(pem, seal_key_file=None),
        "no seal": dataclasses.replace(pem, seal_cert_file=None, seal_key_file=None),
    }
    for what, config in refused.items():
        with pytest.raises(pki.SealConfigurationError):
            pki.load_seal_material(config)
            pytest.fail(what)
