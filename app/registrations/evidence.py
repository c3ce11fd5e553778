"""What a sealed document of an errand carries as evidence, for both channels alike.

An e-signed form (:func:`esign_evidence`) and a posted form's scanned pages
(:func:`paper_evidence`) each get, before the agency's seal, an evidence page a person
can read (:class:`~app.documents.evidence_page.EvidencePage`) and the same facts as
machine-readable attached files (:class:`~app.documents.seal.Evidence`, PDF/A-3
associated files): the errand's events up to sealing (:data:`EVENTS_NAME`, with each
event's place and hash in the audit log's chain), and the channel's own record – BankID's
completion data (:data:`COMPLETION_NAME`) or the scan and the clerk's check
(:data:`SCAN_NAME`). The page is in the errand's language (the Swedish msgids and their
English translations, like the receipt and the decision letter).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.x509.oid import NameOID
from sqlalchemy.orm import Session

from app.audit.service import actor_names, history
from app.core.i18n import long_date, translations
from app.core.ids import format_orgnr, mask_personnummer
from app.documents.evidence_page import EvidencePage, EvidenceSection, grouped
from app.documents.pki import SealMaterial
from app.documents.seal import Evidence
from app.registrations.codes import HISTORY_MESSAGES
from app.registrations.models import Errand, ErrandKind

EVENTS_NAME = "arendehandelser.json"
"""The errand's events up to sealing, as JSON, among a sealed document's attachments."""
COMPLETION_NAME = "bankid-completion.json"
"""BankID's completion data (but the signature and OCSP response, attached as they are)."""
SCAN_NAME = "skanning.json"
"""The scan: its file, the pages and how each was matched, the clerk's check."""

_KIND_NAMES = {
    ErrandKind.REGISTRATION: "Anmälan – behörig beställare",
    ErrandKind.REMOVAL: "Ta bort behörig beställare",
}

Gettext = Callable[[str], str]


def second_name(name: str) -> str:
    """The second joint signature's file beside the first's: ``bankid-signatur-2.xml``."""
    path = PurePosixPath(name)
    return f"{path.stem}-2{path.suffix}"


def _utc(dt: datetime | None) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if dt else "–"


def _iso(dt: datetime | None) -> str | None:
    return dt.astimezone(UTC).isoformat() if dt else None


def _json(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True).encode("utf-8")


def _name_of(name: x509.Name | asn1_x509.Name) -> str:
    """A certificate's subject or issuer as its common name and organisation."""
    if isinstance(name, asn1_x509.Name):
        native = name.native
        parts = [str(native[key]) for key in ("common_name", "organization_name") if key in native]
        return _joined(parts) or name.human_friendly
    parts = [
        str(attribute.value)
        for oid in (NameOID.COMMON_NAME, NameOID.ORGANIZATION_NAME)
        for attribute in name.get_attributes_for_oid(oid)
    ]
    return _joined(parts) or name.rfc4514_string()


def _joined(parts: list[str]) -> str:
    """A common name and an organisation, the latter left out when the former names it."""
    if len(parts) == 2 and parts[1] in parts[0]:
        parts = parts[:1]
    return ", ".join(parts)


def _serial(certificate: x509.Certificate | asn1_x509.Certificate) -> str:
    return grouped(f"{certificate.serial_number:x}".upper(), 4)


# --- shared parts ------------------------------------------------------------------------


@dataclass(frozen=True)
class EventLog:
    """The errand's events up to sealing: rows for the page, JSON for the attachment."""

    rows: tuple[tuple[str, str], ...]
    attachment: Evidence


def event_log(session: Session, errand: Errand, _: Gettext) -> EventLog:
    events = history(session, errand)
    names = actor_names(session, events)
    rows = []
    records: list[dict[str, Any]] = []
    for event in events:
        verb = event.action.removeprefix("errand.")
        said = _(HISTORY_MESSAGES[verb]) if verb in HISTORY_MESSAGES else event.action
        rows.append((_utc(event.occurred_dt), f"{said} – {names[event.actor]}"))
        records.append(
            {
                "time": _iso(event.occurred_dt),
                "action": event.action,
                "actor": event.actor,
                "actor_name": names[event.actor],
                "audit_chain": event.chain,
                "audit_seq": event.seq,
                "audit_hash": event.hash,
            }
        )
    attachment = Evidence(
        EVENTS_NAME,
        _json({"errand": errand.reference, "events": records}),
        "application/json",
        "The errand's events up to sealing, from the audit log (with their chain hashes)",
    )
    return EventLog(tuple(rows), attachment)


def seal_section(material: SealMaterial, sealed_at: datetime, _: Gettext) -> EvidenceSection:
    """What the agency's seal will be: by which certificate, when, of what kind."""
    certificate = material.signing_cert
    tsa = material.tsa_url or _("testtjänst (ingen riktig tidsstämpel)")
    return EvidenceSection(
        _("Myndighetens elektroniska sigill"),
        (
            (_("Förseglat av"), _name_of(certificate.subject)),
            (_("Certifikatet utfärdat av"), _name_of(certificate.issuer)),
            (_("Certifikatets serienummer"), _serial(certificate)),
            (_("Förseglat"), _utc(sealed_at)),
            (
                _("Form"),
                _("PAdES B-LTA över hela filen, också den här sidan"),
            ),
            (_("Tidsstämplar från"), tsa),
        ),
    )


@dataclass(frozen=True)
class _Sealing:
    """What every evidence page ends with: the events up to sealing and the seal."""

    events: EventLog
    material: SealMaterial
    sealed_at: datetime


def _page(
    errand: Errand,
    _: Gettext,
    heading: str,
    lead: str,
    sections: Sequence[EvidenceSection],
    sealing: _Sealing,
    attached: Sequence[Evidence],
) -> EvidencePage:
    """The page: ``sections``, then the events and the seal; ``lead`` names the files."""
    return EvidencePage(
        lang=errand.language,
        agency=_("Statens tjänstepensionsverk"),
        meta=(errand.reference, long_date(sealing.sealed_at, errand.language)),
        heading=heading,
        lead=lead % {"files": _attachments(attached)},
        sections=(
            *sections,
            EvidenceSection(_("Händelser fram till förseglingen"), sealing.events.rows),
            seal_section(sealing.material, sealing.sealed_at, _),
        ),
        footer=_("Bevis för ärende %(ref)s, sida %(page)s av %(pages)s").replace(
            "%(ref)s", errand.reference
        ),
    )


def _errand_rows(errand: Errand, _: Gettext) -> tuple[tuple[str, str], ...]:
    employer = errand.data.employer
    return (
        (_("Ärende"), f"{errand.reference}, {_(_KIND_NAMES[errand.kind])}"),
        (_("Arbetsgivare"), f"{employer.name} ({format_orgnr(employer.orgnr)})"),
    )


def _attachments(files: Sequence[Evidence]) -> str:
    return ", ".join(f.name for f in files)


# --- the e-signed form -----------------------------------------------------------------


@dataclass(frozen=True)
class BankIdSigning:
    """What the evidence of a BankID signature says (checked before sealing)."""

    name: str
    personnummer: str
    order_ref: str
    completed_dt: datetime | None
    certificate: x509.Certificate
    """The signer's certificate."""
    ocsp_produced_dt: datetime
    """When BankID's OCSP responder said the certificate was good."""
    completion: dict[str, Any]
    """BankID's ``completionData`` as received."""
    signed_bytes: int
    """How many bytes were signed: the file's first (the form as rendered)."""
    sha256: str


def _completion_record(signing: BankIdSigning, name: str) -> Evidence:
    completion = {
        key: value
        for key, value in signing.completion.items()
        if key not in ("signature", "ocspResponse")
    }
    return Evidence(
        name,
        _json(
            {
                "orderRef": signing.order_ref,
                "completedAt": _iso(signing.completed_dt),
                "completionData": completion,
                "signedBytes": signing.signed_bytes,
                "sha256": signing.sha256,
            }
        ),
        "application/json",
        "BankID's completion data: device IP, BankID issue date, unique hardware id (uhi)",
    )


def _signing_sections(
    errand: Errand, signing: BankIdSigning, _: Gettext
) -> tuple[EvidenceSection, EvidenceSection]:
    return (
        EvidenceSection(
            _("Undertecknare"),
            (
                (_("Namn"), signing.name),
                (_("Personnummer"), mask_personnummer(signing.personnummer)),
                *_errand_rows(errand, _),
            ),
        ),
        EvidenceSection(
            _("Underskrift med BankID"),
            (
                (_("Orderreferens"), signing.order_ref),
                (_("Slutförd"), _utc(signing.completed_dt)),
                (_("Certifikatet utfärdat av"), _name_of(signing.certificate.issuer)),
                (_("Certifikatets serienummer"), _serial(signing.certificate)),
                (
                    _("Spärrkontroll"),
                    _("giltigt enligt BankID:s OCSP-svar %(time)s")
                    % {"time": _utc(signing.ocsp_produced_dt)},
                ),
                (_("Underskrivet dokument, SHA-256"), grouped(signing.sha256)),
                (
                    _("Vilka byte"),
                    _("filens första %(count)s byte: formuläret som undertecknaren såg")
                    % {"count": signing.signed_bytes},
                ),
            ),
        ),
    )


def esign_evidence(
    session: Session,
    errand: Errand,
    signings: Sequence[BankIdSigning],
    material: SealMaterial,
    sealed_at: datetime,
    files: Sequence[Evidence],
) -> tuple[EvidencePage, list[Evidence]]:
    """The evidence page of an e-signed form and the files attached beside ``files`` (the
    BankID signatures and their OCSP responses): one signature, or two where two sign
    jointly (the second's completion data as ``bankid-completion-2.json``)."""
    _ = translations(errand.language).gettext
    records = [
        _completion_record(signing, COMPLETION_NAME if k == 0 else second_name(COMPLETION_NAME))
        for k, signing in enumerate(signings)
    ]
    events = event_log(session, errand, _)
    attached = [*files, *records, events.attachment]
    sections = [section for s in signings for section in _signing_sections(errand, s, _)]
    lead = _(
        "SPV lade till den här sidan efter kontrollen av BankID-underskriften, före "
        "myndighetens sigill. Bilagor i maskinläsbar form: %(files)s."
    )
    sealing = _Sealing(events, material, sealed_at)
    heading = _("Bevis om elektronisk underskrift")
    page = _page(errand, _, heading, lead, sections, sealing, attached)
    return page, attached


# --- the posted form --------------------------------------------------------------------


@dataclass(frozen=True)
class ScannedFile:
    """A scanned file (a batch) that pages of a posted form came in."""

    batch_id: int
    filename: str
    sha256: str
    pages: int
    scanned_dt: datetime


@dataclass(frozen=True)
class ScannedPage:
    """A page of a posted form as the scan found it."""

    form_page: int
    form_pages: int
    batch_id: int
    file_page: int
    """Its place in the scanned file, from 1."""
    outcome: str
    """What reading its code found (``matched``: the code's MAC and form data held)."""
    matched_by_clerk: bool


@dataclass(frozen=True)
class ScanRecord:
    """The scan and the clerk's check of a posted form."""

    files: tuple[ScannedFile, ...]
    pages: tuple[ScannedPage, ...]
    clerk: str
    checked_dt: datetime
    signature_present: bool
    signer_is_named: bool
    note: str
    archive_bytes: int
    """How many bytes the scanned pages' PDF has (the sealed file's first)."""
    archive_sha256: str
    co_signature_present: bool | None = None
    """Where two sign jointly: the clerk found the second signatory's signature too."""


def _file_rows(f: ScannedFile, _: Gettext) -> tuple[tuple[str, str], ...]:
    batch = _("parti %(id)s") % {"id": f.batch_id}
    return (
        (_("Fil"), f"{f.filename} ({batch})"),
        (_("Inläst"), _utc(f.scanned_dt)),
        (_("Filens SHA-256"), grouped(f.sha256)),
    )


def _page_said(page: ScannedPage, _: Gettext) -> str:
    where = {"n": page.file_page, "batch": page.batch_id}
    if page.matched_by_clerk:
        return _("parti %(batch)s sida %(n)s, matchad av registrator (koden: %(outcome)s)") % {
            **where,
            "outcome": page.outcome,
        }
    return _("parti %(batch)s sida %(n)s, QR-koden läst: MAC och formulärdata stämmer") % where


def paper_evidence(
    session: Session,
    errand: Errand,
    scan: ScanRecord,
    material: SealMaterial,
    sealed_at: datetime,
) -> tuple[EvidencePage, list[Evidence]]:
    """The evidence page of a posted form's scanned pages and the files attached."""
    _ = translations(errand.language).gettext
    yes, no = _("ja"), _("nej")
    record = Evidence(
        SCAN_NAME,
        _json(
            {
                "errand": errand.reference,
                "batches": [
                    {
                        "id": f.batch_id,
                        "filename": f.filename,
                        "sha256": f.sha256,
                        "pages": f.pages,
                        "scannedAt": _iso(f.scanned_dt),
                    }
                    for f in scan.files
                ],
                "pages": [
                    {
                        "formPage": p.form_page,
                        "formPages": p.form_pages,
                        "batch": p.batch_id,
                        "filePage": p.file_page,
                        "outcome": p.outcome,
                        "matchedByClerk": p.matched_by_clerk,
                    }
                    for p in scan.pages
                ],
                "signatureCheck": {
                    "clerk": scan.clerk,
                    "checkedAt": _iso(scan.checked_dt),
                    "signaturePresent": scan.signature_present,
                    "signerIsNamed": scan.signer_is_named,
                    "note": scan.note,
                    **(
                        {"coSignaturePresent": scan.co_signature_present}
                        if scan.co_signature_present is not None
                        else {}
                    ),
                },
                "archive": {"bytes": scan.archive_bytes, "sha256": scan.archive_sha256},
            }
        ),
        "application/json",
        "The scan: its file and hash, the pages matched by their QR codes, the clerk's check",
    )
    events = event_log(session, errand, _)
    attached = [record, events.attachment]
    check_rows = [
        (_("Kontrollerad av"), scan.clerk),
        (_("Kontrollerad"), _utc(scan.checked_dt)),
        (_("Underskrift finns"), yes if scan.signature_present else no),
        (_("Av namngiven firmatecknare"), yes if scan.signer_is_named else no),
    ]
    if scan.co_signature_present is not None:
        check_rows.append(
            (
                _("Den andra firmatecknarens underskrift finns"),
                yes if scan.co_signature_present else no,
            )
        )
    if scan.note:
        check_rows.append((_("Anteckning"), scan.note))
    sections = [
        EvidenceSection(
            _("Inkommen på papper"),
            (
                *_errand_rows(errand, _),
                *(row for f in scan.files for row in _file_rows(f, _)),
                (_("De inskannade sidornas SHA-256"), grouped(scan.archive_sha256)),
                (
                    _("Vilka byte"),
                    _("den här filens första %(count)s byte: sidorna som bilder")
                    % {"count": scan.archive_bytes},
                ),
            ),
        ),
        EvidenceSection(
            _("Blankettens sidor"),
            tuple(
                (
                    _("Sida %(k)s av %(m)s") % {"k": p.form_page, "m": p.form_pages},
                    _page_said(p, _),
                )
                for p in scan.pages
            ),
        ),
        EvidenceSection(_("Kontroll av underskriften"), tuple(check_rows)),
    ]
    lead = _(
        "SPV lade till den här sidan efter registratorns kontroll av underskriften, före "
        "myndighetens sigill. Bilagor i maskinläsbar form: %(files)s."
    )
    sealing = _Sealing(events, material, sealed_at)
    heading = _("Bevis om blankett som kommit in på papper")
    page = _page(errand, _, heading, lead, sections, sealing, attached)
    return page, attached
