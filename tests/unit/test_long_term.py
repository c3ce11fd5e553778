"""PAdES B-LTA: the seal carries its revocation data and a document timestamp, and still
validates after its certificate has expired or been revoked (certomancer's time travel).

Every file made here is also checked by pyHanko's own validation and by poppler's pdfsig
(:func:`_independent_checks`): they must agree with ``verify-pdf``.

No database: test PKIs in temporary directories, served on free ports (their OCSP
responders and CRLs, whose clock the tests move), a rendered form, pyHanko, pdfsig.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asn1crypto import crl as asn1_crl
from asn1crypto import ocsp as asn1_ocsp
from click.testing import CliRunner
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.validation import (
    DocumentSecurityStore,
    validate_pdf_signature,
    validate_pdf_timestamp,
)
from pyhanko_certvalidator import ValidationContext

from app.config import Settings
from app.documents import pki
from app.documents.cli import verify_pdf_command
from app.documents.render import render_form_pdf
from app.documents.seal import FIELD_NAME, SealValidationError, retimestamp_pdf, seal_pdf
from app.documents.validate import Level, Rejection, SealReport, validate_sealed_pdf
from devtools.pki import PkiServer, SealCertificatePlan, test_pki_architecture
from devtools.seal import TestPkiSeal
from tests.sample_forms import KEY, REGISTRATION_DATA
from tests.support import pdf_with_annotation, written_pdf

SIGNER = "Bertil Berg"
NOW = datetime.now(UTC).replace(microsecond=0)


# --- fixtures -----------------------------------------------------------------------


def _serve(directory: Path, plan: SealCertificatePlan) -> PkiServer:
    """A test PKI in ``directory`` whose seal certificate follows ``plan``, served."""
    return PkiServer(directory, seal=plan)


@pytest.fixture(scope="module")
def form_pdf() -> bytes:
    return render_form_pdf(REGISTRATION_DATA, lang="sv", key=KEY, for_print=False)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PkiServer]:
    with PkiServer(tmp_path_factory.mktemp("pki")) as served:
        yield served


@pytest.fixture
def clock_reset(server: PkiServer) -> Iterator[None]:
    yield
    server.moment = None


def _material(server: PkiServer) -> pki.SealMaterial:
    return pki.seal_material(
        Settings(secret_key="x", seal_source=TestPkiSeal(str(server.directory)))
    )


def _seal(pdf: bytes, material: pki.SealMaterial) -> bytes:
    return seal_pdf(pdf, material=material, evidence=[], signer_name=SIGNER, lang="sv")


def _identity(material: pki.SealMaterial) -> pki.SealIdentity:
    return pki.SealIdentity(fingerprints=frozenset({pki.fingerprint(material.signing_cert)}))


def _validate(pdf: bytes, material: pki.SealMaterial, now: datetime | None = None) -> SealReport:
    return validate_sealed_pdf(
        pdf, trust_roots=material.trust_roots, seal_identity=_identity(material), now=now
    )


def _b_t_seal(pdf: bytes, material: pki.SealMaterial) -> bytes:
    """The seal without its long-term updates: signed and timestamped only."""
    meta = signers.PdfSignatureMetadata(
        field_name=FIELD_NAME, subfilter=fields.SigSeedSubFilter.PADES, md_algorithm="sha256"
    )
    signer = signers.PdfSigner(meta, signer=material.signer, timestamper=material.timestamper)
    return signer.sign_pdf(IncrementalPdfFileWriter(io.BytesIO(pdf))).getvalue()


def _b_lt_seal(pdf: bytes, material: pki.SealMaterial) -> bytes:
    """The seal with its revocation data in the DSS, but no document timestamp."""
    meta = signers.PdfSignatureMetadata(
        field_name=FIELD_NAME,
        subfilter=fields.SigSeedSubFilter.PADES,
        md_algorithm="sha256",
        embed_validation_info=True,
        validation_context=ValidationContext(
            trust_roots=list(material.trust_roots), allow_fetching=True
        ),
    )
    signer = signers.PdfSigner(meta, signer=material.signer, timestamper=material.timestamper)
    return signer.sign_pdf(IncrementalPdfFileWriter(io.BytesIO(pdf))).getvalue()


# --- the independent checks: pyHanko's own validation and pdfsig ------------------------


def _pyhanko_verdict(pdf: bytes, material: pki.SealMaterial, moment: datetime | None) -> bool:
    """pyHanko's own judgement, with its stock settings: the seal valid and trusted with
    the DSS's revocation data as of the oldest document timestamp (else ``moment``), every
    document timestamp valid and trusted, and nothing after the seal but long-term
    updates (its difference analysis)."""
    reader = PdfFileReader(io.BytesIO(pdf))
    (seal,) = reader.embedded_regular_signatures
    roots = list(material.trust_roots)

    def context(at: datetime | None) -> ValidationContext:
        try:
            dss = DocumentSecurityStore.read_dss(reader)
        except Exception:
            return ValidationContext(trust_roots=roots, moment=at, allow_fetching=False)
        return dss.as_validation_context(
            {
                "trust_roots": roots,
                "moment": at,
                "allow_fetching": False,
                "retroactive_revinfo": True,
            }
        )

    at = moment
    for timestamp in reversed(reader.embedded_timestamp_signatures):
        # The newest as of now without the DSS's (by then stale) data, as validate does.
        ts_context = (
            ValidationContext(trust_roots=roots, moment=at, allow_fetching=False)
            if at is moment
            else context(at)
        )
        status = validate_pdf_timestamp(timestamp, validation_context=ts_context)
        if not (status.intact and status.valid and status.trusted):
            return False
        at = status.timestamp
    status = validate_pdf_signature(seal, context(at), context(at))
    level = status.modification_level
    return bool(
        status.bottom_line
        and status.timestamp_validity is not None
        and status.timestamp_validity.trusted
        and level is not None
        and level <= ModificationLevel.LTA_UPDATES
    )


def _pdfsig(pdf: bytes, tmp_path: Path) -> str:
    if shutil.which("pdfsig") is None:
        pytest.fail("pdfsig is missing: install poppler-utils (make test does)")
    path = tmp_path / f"check-{len(list(tmp_path.iterdir()))}.pdf"
    path.write_bytes(pdf)
    result = subprocess.run(["pdfsig", str(path)], capture_output=True, text=True, timeout=60)
    return result.stdout + result.stderr


def _independent_checks(
    pdf: bytes,
    material: pki.SealMaterial,
    report: SealReport,
    tmp_path: Path,
    moment: datetime | None = None,
) -> None:
    """pyHanko's own validation and pdfsig agree with ``verify-pdf``'s report."""
    assert _pyhanko_verdict(pdf, material, moment) == report.accepted, report.reason
    out = _pdfsig(pdf, tmp_path)
    seal_part = out.split("Signature #2:")[0]
    assert "Signature Field Name: SPV-sigill" in seal_part
    # pdfsig checks the seal's bytes (not revocation, nor what follows it).
    digest_ok = "Signature Validation: Signature is Valid." in seal_part
    if not digest_ok:
        assert report.rejection == Rejection.CHANGED
    if report.accepted:
        assert digest_ok
        timestamps = len(PdfFileReader(io.BytesIO(pdf)).embedded_timestamp_signatures)
        assert out.count("Signer Certificate Common Name: SPV Test TSA") == timestamps


# --- the shape of a sealed document --------------------------------------------------


def test_the_seal_carries_its_revocation_data_and_a_document_timestamp(
    form_pdf: bytes, server: PkiServer, tmp_path: Path
) -> None:
    material = _material(server)
    sealed = _seal(form_pdf, material)
    reader = PdfFileReader(io.BytesIO(sealed))
    (seal,) = reader.embedded_regular_signatures
    (timestamp,) = reader.embedded_timestamp_signatures
    assert seal.signed_revision < timestamp.signed_revision
    dss = DocumentSecurityStore.read_dss(reader)
    ocsps = [asn1_ocsp.OCSPResponse.load(ref.get_object().data) for ref in dss.ocsps]
    crls = [asn1_crl.CertificateList.load(ref.get_object().data) for ref in dss.crls]
    # The seal's status from its CA's OCSP responder…
    answered = {
        single["cert_id"]["serial_number"].native
        for response in ocsps
        for single in response.basic_ocsp_response["tbs_response_data"]["responses"]
    }
    assert material.signing_cert.serial_number in answered
    # …and the root's CRL, which speaks for the seal CA and the TSA.
    issuers = {c.issuer.native["common_name"] for c in crls}
    assert "SPV Test Root CA" in issuers
    names = {c.subject.native["common_name"] for c in dss.load_certs()}
    assert {"SPV Test Seal CA", "SPV Test TSA", "SPV Test Seal CA OCSP Responder"} <= names

    report = _validate(sealed, material)
    assert report.accepted, report.reason
    assert report.level == Level.B_LTA
    assert report.validated_at == report.archive_timestamp_dt
    assert report.timestamp_dt is not None and report.archive_timestamp_dt is not None
    assert report.timestamp_dt <= report.archive_timestamp_dt
    _independent_checks(sealed, material, report, tmp_path)


def test_the_levels_reached(form_pdf: bytes, server: PkiServer, tmp_path: Path) -> None:
    material = _material(server)
    b_t = _b_t_seal(form_pdf, material)
    b_lt = _b_lt_seal(form_pdf, material)
    for pdf, level in ((b_t, Level.B_T), (b_lt, Level.B_LT)):
        report = _validate(pdf, material)
        assert report.accepted and report.level == level, report.reason
        assert report.archive_timestamp_dt is None
        _independent_checks(pdf, material, report, tmp_path)
    untimed = signers.PdfSigner(
        signers.PdfSignatureMetadata(
            field_name=FIELD_NAME, subfilter=fields.SigSeedSubFilter.PADES, md_algorithm="sha256"
        ),
        signer=material.signer,
    ).sign_pdf(IncrementalPdfFileWriter(io.BytesIO(form_pdf)))
    report = validate_sealed_pdf(
        untimed.getvalue(),
        trust_roots=material.trust_roots,
        seal_identity=_identity(material),
        require_timestamp=False,
    )
    assert report.accepted and report.level == Level.B_B


# --- later revisions: long-term updates only ------------------------------------------


def _retimestamped(pdf: bytes, material: pki.SealMaterial) -> bytes:
    """A second document timestamp over the file, after the revocation data of the first
    (what keeping an archive valid does)."""
    return retimestamp_pdf(pdf, material=material)


def test_a_second_document_timestamp_is_accepted(
    form_pdf: bytes, server: PkiServer, tmp_path: Path
) -> None:
    material = _material(server)
    sealed = _seal(form_pdf, material)
    first = _validate(sealed, material)
    again = _retimestamped(sealed, material)
    assert again.startswith(sealed), "an incremental update"
    reader = PdfFileReader(io.BytesIO(again))
    assert len(reader.embedded_timestamp_signatures) == 2
    assert "/Version" not in reader.root, "PDF/A-3 stays PDF 1.7"
    report = _validate(again, material)
    assert report.accepted and report.level == Level.B_LTA, report.reason
    # The seal as of the first document timestamp; the newest is the new one.
    assert report.validated_at == first.archive_timestamp_dt
    assert report.archive_timestamp_dt is not None and first.archive_timestamp_dt is not None
    assert report.archive_timestamp_dt > first.archive_timestamp_dt
    _independent_checks(again, material, report, tmp_path)


def _with_changed_field(pdf: bytes) -> bytes:
    """The seal's field renamed in an incremental update (a field's value changed)."""
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    for ref in writer.root["/AcroForm"]["/Fields"]:
        field = ref.get_object()
        if str(field.get("/T")) == FIELD_NAME:
            field["/TU"] = generic.TextStringObject("Ändrad efter förseglingen")
            writer.update_container(field)
    return written_pdf(writer)


def _with_extra_dss_entry_and_page_change(pdf: bytes) -> bytes:
    """A DSS update that also rewrites the first page's content: not long-term only."""
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    page = writer.root["/Pages"]["/Kids"][0]
    page["/Rotate"] = generic.NumberObject(90)
    writer.update_container(page)
    return written_pdf(writer)


@pytest.mark.parametrize(
    "change", [pdf_with_annotation, _with_changed_field, _with_extra_dss_entry_and_page_change]
)
def test_any_other_later_change_is_rejected(
    form_pdf: bytes, server: PkiServer, tmp_path: Path, change: object
) -> None:
    material = _material(server)
    sealed = _seal(form_pdf, material)
    for pdf in (change(sealed), change(_retimestamped(sealed, material))):  # type: ignore[operator]
        report = _validate(pdf, material)
        assert report.rejection == Rejection.CHANGED, report.reason
        _independent_checks(pdf, material, report, tmp_path)


def test_bytes_appended_after_the_long_term_updates(form_pdf: bytes, server: PkiServer) -> None:
    material = _material(server)
    sealed = _seal(form_pdf, material)
    report = _validate(sealed + b"\n% appended\n", material)
    assert report.rejection == Rejection.NOT_WHOLE_FILE


# --- time travel ---------------------------------------------------------------------


def _fetching_status(pdf: bytes, material: pki.SealMaterial, at: datetime) -> bool:
    """pyHanko validating the seal as of ``at``, fetching its status now (no DSS)."""
    (seal,) = PdfFileReader(io.BytesIO(pdf)).embedded_regular_signatures
    context = ValidationContext(
        trust_roots=list(material.trust_roots), moment=at, allow_fetching=True
    )
    return validate_pdf_signature(seal, context, context).bottom_line


def test_a_seal_whose_certificate_has_since_expired_still_validates(
    form_pdf: bytes, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    ends = NOW + timedelta(hours=1)
    with _serve(tmp_path_factory.mktemp("expiring"), SealCertificatePlan(valid_to=ends)) as server:
        material = _material(server)
        sealed = _seal(form_pdf, material)
        b_t = _b_t_seal(form_pdf, material)
        later = NOW + timedelta(days=400)
        server.moment = later  # the PKI's services a year on
        assert material.signing_cert.not_valid_after == ends
        report = _validate(sealed, material, now=later)
        assert report.accepted and report.level == Level.B_LTA, report.reason
        assert report.validated_at is not None and report.validated_at < ends
        _independent_checks(sealed, material, report, tmp_path, later)
        # Without its long-term updates the same seal is dead a year on.
        old = _validate(b_t, material, now=later)
        assert old.rejection == Rejection.UNTRUSTED
        _independent_checks(b_t, material, old, tmp_path, later)
        assert not _fetching_status(b_t, material, later)


def test_a_seal_whose_certificate_was_revoked_after_sealing_still_validates(
    form_pdf: bytes, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    revoked = NOW + timedelta(hours=1)
    plan = SealCertificatePlan(revoked_since=revoked)
    with _serve(tmp_path_factory.mktemp("revoked-later"), plan) as server:
        material = _material(server)
        sealed = _seal(form_pdf, material)
        later = NOW + timedelta(days=2)
        server.moment = later  # the OCSP responder and the CRL now say "revoked"
        assert not _fetching_status(sealed, material, later)
        report = _validate(sealed, material, now=later)
        assert report.accepted and report.level == Level.B_LTA, report.reason
        assert report.validated_at is not None and report.validated_at < revoked
        _independent_checks(sealed, material, report, tmp_path, later)
        runner = CliRunner()
        path = tmp_path / "sealed.pdf"
        path.write_bytes(sealed)
        result = runner.invoke(
            verify_pdf_command,
            [
                "--trust-roots",
                str(server.paths.root_cert),
                "--seal-cert",
                str(server.paths.seal_cert),
                str(path),
            ],
        )
        assert result.exit_code == 0, result.output
        assert "Level: PAdES B-LTA" in result.stdout


def _revocation_data_and_timestamp(
    pdf: bytes, server: PkiServer, material: pki.SealMaterial
) -> bytes:
    """The seal's revocation data as its CA publishes it now (the CRLs), in a DSS update,
    and a document timestamp over it: the B-LTA shape, whatever the data says."""
    architecture = test_pki_architecture(server.directory.resolve())
    at = datetime.now(UTC)
    crls = [architecture.service_registry.get_crl(label, at) for label in ("seal-ca", "root")]
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    (seal,) = PdfFileReader(io.BytesIO(pdf)).embedded_regular_signatures
    DocumentSecurityStore.supply_dss_in_writer(
        writer, seal.pkcs7_content, certs=list(material.chain), crls=crls
    )
    out = io.BytesIO()
    writer.write(out)
    writer = IncrementalPdfFileWriter(out)
    signers.PdfTimeStamper(material.timestamper).timestamp_pdf(writer, "sha256", in_place=True)
    return out.getvalue()


def test_a_seal_whose_certificate_was_revoked_before_sealing_fails(
    form_pdf: bytes, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    plan = SealCertificatePlan(revoked_since=NOW - timedelta(hours=1))
    with _serve(tmp_path_factory.mktemp("revoked-before"), plan) as server:
        material = _material(server)
        with pytest.raises(SealValidationError):
            _seal(form_pdf, material)
        forged = _revocation_data_and_timestamp(_b_t_seal(form_pdf, material), server, material)
        assert len(PdfFileReader(io.BytesIO(forged)).embedded_timestamp_signatures) == 1
        report = _validate(forged, material)
        assert report.rejection == Rejection.REVOKED, report.reason
        assert report.reason == "the seal's certificate was revoked when it was sealed"
        _independent_checks(forged, material, report, tmp_path)


def test_the_pki_names_its_services_in_its_certificates(server: PkiServer) -> None:
    from cryptography import x509

    seal = x509.load_pem_x509_certificate(server.paths.seal_cert.read_bytes())
    aia = seal.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    assert [d.access_location.value for d in aia] == [f"{server.url}/spv-test/ocsp/seal-ca"]
    points = seal.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert [p.full_name[0].value for p in points] == [
        f"{server.url}/spv-test/crls/seal-ca/latest.crl"
    ]
    tsa = x509.load_pem_x509_certificate(server.paths.tsa_cert.read_bytes())
    points = tsa.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert [p.full_name[0].value for p in points] == [f"{server.url}/spv-test/crls/root/latest.crl"]
    assert re.match(r"http://127\.0\.0\.1:\d+$", server.url)


# --- pyHanko's command line, as an auditor runs it -------------------------------------


def test_pyhankos_command_line_agrees(form_pdf: bytes, server: PkiServer, tmp_path: Path) -> None:
    """``pyhanko sign validate`` and ``adesverify`` (pyhanko-cli) with the agency's root, the
    PKI's services reachable, as the README tells an auditor."""
    pyhanko = Path(sys.executable).with_name("pyhanko")
    material = _material(server)
    sealed = _seal(form_pdf, material)
    for name, pdf in (("sealed", sealed), ("annotated", pdf_with_annotation(sealed))):
        report = _validate(pdf, material)
        path = tmp_path / f"{name}.pdf"
        path.write_bytes(pdf)
        for command in ("validate", "adesverify"):
            trust = ("--trust", str(server.paths.root_cert), "--trust-replace")
            result = subprocess.run(
                [str(pyhanko), "sign", command, *trust, str(path)],
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert (result.returncode == 0) == report.accepted, (name, command, result.stdout)
            if report.accepted:
                assert "INTACT:TRUSTED,TIMESTAMP_TOKEN<INTACT:TRUSTED>" in result.stdout
                assert "EXTENDED_WITH_LTA_UPDATES" in result.stdout


def test_the_bankid_simulators_users_have_an_ocsp_responder(server: PkiServer) -> None:
    """The simulator issues its users on demand; the responder their certificates name
    answers for them over HTTP (and for no other CA's)."""
    import httpx
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509 import ocsp

    from devtools.pki import UserIdentity, get_test_pki

    test_pki = get_test_pki(server.directory)
    user = test_pki.bankid_user(UserIdentity("199001011234", "Eva", "Ek")).certificate
    aia = user.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    (url,) = [d.access_location.value for d in aia]
    assert url == f"{server.url}/spv-test/ocsp/bankid-ca"

    def ask(cert: x509.Certificate, issuer: x509.Certificate) -> ocsp.OCSPResponse:
        request = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1()).build()
        body = request.public_bytes(serialization.Encoding.DER)
        answer = httpx.post(url, content=body, headers={"Content-Type": "application/ocsp-request"})
        assert answer.status_code == 200
        return ocsp.load_der_ocsp_response(answer.content)

    good = ask(user, test_pki.bankid_ca.certificate)
    assert good.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    assert good.certificate_status == ocsp.OCSPCertStatus.GOOD
    assert good.serial_number == user.serial_number
    assert good.certificates == [test_pki.bankid_ocsp.certificate]
    seal = x509.load_pem_x509_certificate(server.paths.seal_cert.read_bytes())
    seal_ca = x509.load_pem_x509_certificate(server.paths.seal_ca_cert.read_bytes())
    other = ask(seal, seal_ca)
    assert other.response_status == ocsp.OCSPResponseStatus.UNAUTHORIZED
