"""The evidence both channels give: an e-signed form and a posted form's scanned pages are
each sealed (PAdES B-LTA) with an evidence page a person can read and the same facts as
attached files, tagged PDF/A-3a; ``verify-pdf``, pyHanko and pdfsig accept both."""

from __future__ import annotations

import hashlib
import io
import json
import re
import subprocess
from pathlib import Path

from click.testing import CliRunner
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import PdfFileReader
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.service import history
from app.documents import pki
from app.documents.cli import verify_pdf_command
from app.documents.validate import Level, validate_sealed_pdf
from app.eid.models import EidOrder, OrderStatus
from app.intake import reading
from app.intake.clerk_actions import confirm_paper_form
from app.intake.models import BatchSource, PaperForm
from app.registrations.models import DocumentKind, Errand
from tests import scan_corpus as corpus
from tests.conftest import EVA
from tests.factories import (
    clerk,
    printed,
    printed_for_post,
    received_by_esignature,
    registration_draft,
    seal_material,
)
from tests.support import pdf_page_texts
from tests.unit.test_long_term import _independent_checks
from workflows import runtime


def _document(errand: Errand, kind: DocumentKind) -> bytes:
    return next(d for d in errand.documents if d.kind is kind).content


def _validated(pdf: bytes, material: pki.SealMaterial) -> object:
    identity = pki.SealIdentity(fingerprints=frozenset({pki.fingerprint(material.signing_cert)}))
    report = validate_sealed_pdf(pdf, trust_roots=material.trust_roots, seal_identity=identity)
    assert report.accepted and report.level == Level.B_LTA, report.reason
    return report


def _stamp(pdf: bytes) -> str:
    """The words of the seal's stamp, on the last page (its widget's description)."""
    reader = PdfFileReader(io.BytesIO(pdf))
    (widget,) = reader.root["/Pages"]["/Kids"][-1]["/Annots"]
    return str(widget.get_object()["/TU"])


def _grouped_in(hex_text: str, text: str) -> bool:
    """The hash as the page prints it: groups of eight, perhaps over two lines."""
    groups = [hex_text[i : i + 8] for i in range(0, len(hex_text), 8)]
    return all(g in text for g in groups) and text.index(groups[0]) < text.index(groups[-1])


# --- PDF/A-3a: what the tests of every PDF check, on the sealed documents ---------------


def _parent_tree(reader: PdfFileReader) -> dict[int, generic.PdfObject]:
    """The structure tree's parent tree, by key (what a validator looks marked content up in)."""
    nums = reader.root["/StructTreeRoot"]["/ParentTree"]["/Nums"]
    return {int(nums[i]): nums[i + 1] for i in range(0, len(nums), 2)}


def _holds(element: generic.DictionaryObject, mcid: int) -> bool:
    kids = element["/K"]
    kids = kids if isinstance(kids, generic.ArrayObject) else [kids]
    return any(
        (isinstance(k, generic.NumberObject) and int(k) == mcid)
        or (isinstance(k, generic.DictionaryObject) and int(k.get("/MCID", -1)) == mcid)
        for k in (kid.get_object() for kid in kids)
    )


def _assert_tagged_pdf_a_3a(pdf: bytes, tmp_path: Path, lang: str = "sv") -> None:
    path = tmp_path / f"pdfa-{hashlib.sha256(pdf).hexdigest()[:8]}.pdf"
    path.write_bytes(pdf)
    subprocess.run(["qpdf", "--check", str(path)], check=True, capture_output=True)
    info = subprocess.run(["pdfinfo", str(path)], check=True, capture_output=True, text=True)
    assert re.search(r"^Tagged:\s+yes$", info.stdout, re.M)
    xmp = subprocess.run(["pdfinfo", "-meta", str(path)], check=True, capture_output=True)
    assert re.search(rb'pdfaid:part(="|>)3', xmp.stdout)
    assert re.search(rb'pdfaid:conformance(="|>)A', xmp.stdout)
    fonts = subprocess.run(["pdffonts", str(path)], check=True, capture_output=True, text=True)
    rows = fonts.stdout.splitlines()[2:]
    assert rows and all(re.search(r"\byes\s+yes\s+yes\b", row) for row in rows), fonts.stdout

    reader = PdfFileReader(io.BytesIO(pdf))
    root = reader.root
    assert str(root["/Lang"]) == lang and root["/MarkInfo"]["/Marked"]
    assert root["/OutputIntents"][0]["/S"] == "/GTS_PDFA1"
    parents = _parent_tree(reader)
    for ref in root["/Pages"]["/Kids"]:
        page = ref.get_object()
        content = page["/Contents"]
        streams = content if isinstance(content, generic.ArrayObject) else [content]
        data = b"".join(s.get_object().data for s in streams)
        # Every piece of marked content on every page belongs to a structure element…
        owners = parents[int(page["/StructParents"])].get_object()
        for mcid in (int(m) for m in re.findall(rb"/MCID (\d+)", data)):
            element = owners[mcid].get_object()
            assert element["/Type"] == "/StructElem" and _holds(element, mcid), (ref, mcid)
        # …and every visible annotation (the seal's widget) is held by a Form element; the
        # document timestamps' widgets, added after the seal, have no area.
        for annotation in page.get("/Annots", ()):
            widget = annotation.get_object()
            x1, y1, x2, y2 = (float(v) for v in widget["/Rect"])
            if (x2 - x1) * (y2 - y1) == 0:
                continue
            form = parents[int(widget["/StructParent"])].get_object()
            assert form["/S"] == "/Form" and form["/Alt"]
            assert form["/K"].raw_get("/Obj").idnum == annotation.idnum
    # The attachments are PDF/A-3 associated files.
    specs = {str(spec.get_object()["/F"]) for spec in root["/AF"]}
    for spec in root["/AF"]:
        assert spec.get_object()["/AFRelationship"] == "/Supplement"
    assert specs


def _verify_pdf(pdf: bytes, tmp_path: Path, pki_dir: Path) -> str:
    path = tmp_path / "sealed.pdf"
    path.write_bytes(pdf)
    result = CliRunner().invoke(
        verify_pdf_command,
        [
            "--trust-roots",
            str(pki_dir / "root-ca.pem"),
            "--seal-cert",
            str(pki_dir / "seal.pem"),
            str(path),
        ],
    )
    assert result.exit_code == 0, result.output
    return result.stdout


# --- the e-signed form -------------------------------------------------------------------


def test_an_esigned_form_carries_its_evidence_page_and_records(
    session: Session, tmp_path: Path, pki_dir: Path
) -> None:
    errand = received_by_esignature(session, registration_draft(session))
    session.flush()
    order = session.scalars(
        select(EidOrder).where(EidOrder.errand_id == errand.id, EidOrder.status == OrderStatus.USED)
    ).one()
    assert order.document is not None and order.completion is not None
    sealed = _document(errand, DocumentKind.SIGNED)
    assert sealed.startswith(order.document), "the signed bytes stay the file's first"

    texts = pdf_page_texts(sealed)
    form_pages = len(pdf_page_texts(order.document))
    evidence = "\n".join(texts[form_pages:])
    assert len(texts) == form_pages + 1, "one evidence page"
    assert "Bevis om elektronisk underskrift" in evidence
    assert "Eva Ek" in evidence and "19521003-****" in evidence
    assert EVA not in "".join(texts) and "19521003-9847" not in evidence
    assert order.order_ref in evidence and "BankID" in evidence
    assert "BankID Simulator Issuing CA" in evidence  # the signer certificate's issuer
    assert _grouped_in(hashlib.sha256(order.document).hexdigest(), evidence)
    assert f"filens första {len(order.document)} byte" in evidence
    # The events up to sealing, oldest first, with who did them.
    said = [
        evidence.index("Utkast skapat – David Dahl"),
        evidence.index("Skickat för underskrift med BankID – David Dahl"),
        evidence.index("Underskrivet med BankID – system: bankid"),
    ]
    assert said == sorted(said)
    assert "Mottaget av SPV" not in evidence  # received after sealing
    # The seal as it was made.
    material = seal_material()
    assert "Myndighetens elektroniska sigill" in evidence and "PAdES B-LTA" in evidence
    assert f"{material.signing_cert.serial_number:X}" in re.sub(r"\s", "", evidence)
    assert "Elektroniskt underskriven av Eva Ek med BankID" in _stamp(sealed)

    report = _validated(sealed, material)
    files = report.evidence  # type: ignore[attr-defined]
    assert set(files) == {
        "bankid-signatur.xml",
        "bankid-ocsp.der",
        "bankid-completion.json",
        "arendehandelser.json",
    }
    completion = json.loads(files["bankid-completion.json"])
    assert completion["orderRef"] == order.order_ref
    assert completion["sha256"] == order.document_sha256
    assert completion["signedBytes"] == len(order.document)
    data = completion["completionData"]
    for key in ("device", "bankIdIssueDate", "user"):
        assert data[key] == order.completion[key]
    assert data["device"]["ipAddress"] and data["device"]["uhi"]
    assert "signature" not in data and "ocspResponse" not in data  # attached as they are
    events = json.loads(files["arendehandelser.json"])
    logged = [e for e in history(session, errand) if e.action != "errand.receive"]
    assert [(e["action"], e["audit_hash"]) for e in events["events"]] == [
        (e.action, e.hash) for e in logged
    ]

    _assert_tagged_pdf_a_3a(sealed, tmp_path)
    _independent_checks(sealed, material, report, tmp_path)  # type: ignore[arg-type]
    out = _verify_pdf(sealed, tmp_path, pki_dir)
    assert "Level: PAdES B-LTA" in out and "bankid-completion.json" in out


# --- the posted form ---------------------------------------------------------------------


def test_a_posted_forms_scan_is_sealed_with_its_evidence_page(
    session: Session, tmp_path: Path, pki_dir: Path
) -> None:
    errand = printed_for_post(session, registration_draft(session))
    scanned = corpus.as_pdf(corpus.scan_pdf(printed(errand), ["clean-200", "rotated+1"]))
    received = reading.receive_file(
        session, clerk(session), scanned, "post-3dec.pdf", BatchSource.UPLOAD
    )
    session.commit()
    current = runtime.current()
    reading.read_batch(current.session_factory, received.batch.id, current.settings.qr_key)
    session.expire_all()
    form = session.scalars(select(PaperForm).where(PaperForm.errand_id == errand.id)).one()
    material = seal_material()
    confirm_paper_form(
        session,
        clerk(session),
        form,
        signature_present=True,
        signer_is_named=True,
        material=material,
        note="Underskriften i blått bläck",
    )
    batch = received.batch
    sealed = _document(errand, DocumentKind.SCAN)

    texts = pdf_page_texts(sealed)
    assert texts[:2] == ["", ""], "the two scanned pages, as images"
    evidence = "\n".join(texts[2:])
    assert f"sida {len(texts) - 2} av {len(texts) - 2}" in texts[-1]
    assert "Bevis om blankett som kommit in på papper" in evidence
    assert "post-3dec.pdf" in evidence and f"parti {batch.id}" in evidence
    assert _grouped_in(batch.sha256, evidence)
    for page in (1, 2):
        assert f"Sida {page} av 2" in evidence
    assert evidence.count("QR-koden läst: MAC och formulärdata stämmer") == 2
    assert "Kontrollerad av" in evidence and "Karin" in evidence
    assert "Underskriften i blått bläck" in evidence
    assert "Utskrivet för post" in evidence and "Mottaget av SPV" in evidence
    assert "Inkommen på papper, inskannad och förseglad" in _stamp(sealed)

    report = _validated(sealed, material)
    files = report.evidence  # type: ignore[attr-defined]
    assert set(files) == {"skanning.json", "arendehandelser.json"}
    scan = json.loads(files["skanning.json"])
    assert scan["batches"] == [
        {
            "id": batch.id,
            "filename": "post-3dec.pdf",
            "sha256": batch.sha256,
            "pages": 2,
            "scannedAt": scan["batches"][0]["scannedAt"],
        }
    ]
    assert [(p["formPage"], p["outcome"], p["matchedByClerk"]) for p in scan["pages"]] == [
        (1, "matched", False),
        (2, "matched", False),
    ]
    assert scan["signatureCheck"]["signaturePresent"] is True
    archive = scan["archive"]
    assert hashlib.sha256(sealed[: archive["bytes"]]).hexdigest() == archive["sha256"]

    _assert_tagged_pdf_a_3a(sealed, tmp_path)
    _independent_checks(sealed, material, report, tmp_path)  # type: ignore[arg-type]
    assert "skanning.json" in _verify_pdf(sealed, tmp_path, pki_dir)
