"""Sample filled-in forms (Skatteverket's test personnummer) for the document tests, the
scanned-paper corpus and the benchmarks: one place, so they all render the same forms."""

from __future__ import annotations

from datetime import UTC, datetime

from app.config import qr_mac_key
from app.documents.render import CodeLine, DocumentData
from app.registrations.data import RegistrationData, RemovalData
from app.registrations.models import Channel, ErrandKind

KEY = qr_mac_key("test-secret")
CREATED = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)

REGISTRATION = {
    "orgnr": "2021004920",
    "employer_name": "Provverket",
    "all_codes": False,
    "employer_codes": ["B2001", "B2002"],
    "personnummer": "198507049859",
    "given_name": "Åsa",
    "family_name": "Öberg",
    "email": "asa.oberg@provverket.se",
    "phone": "070-123 45 67",
    "title": "HR-chef",
    "role": "delegated_orderer",
    "signatory_name": "Bertil Berg",
    "signatory_personnummer": "196408233234",
    "signatory_title": "Generaldirektör",
}
REMOVAL = {
    "orgnr": "2021004920",
    "employer_name": "Provverket",
    "reason": "left",
    "personnummer": "198507049859",
    "given_name": "Åsa",
    "family_name": "Öberg",
    "replacement": {
        "personnummer": "199001012380",
        "given_name": "Cecilia",
        "family_name": "Carlsson",
        "email": "cecilia.carlsson@provverket.se",
        "phone": "08-123 456",
        "title": "Controller",
        "role": "orderer",
    },
    "signatory_name": "Bertil Berg",
    "signatory_personnummer": "196408233234",
    "signatory_title": "Generaldirektör",
}
CODES = [
    CodeLine("B2001", "Provverket huvudkontor"),
    CodeLine("B2002", "Provverket Sundsvall", True),
]

"""The forms as stored (``Errand.form_data``); typed below, as the PDFs take them."""

REGISTRATION_DATA = DocumentData(
    ErrandKind.REGISTRATION,
    "BB-7K3M-Q9XT",
    123,
    RegistrationData.from_json(REGISTRATION),
    CODES,
    CREATED,
)
REMOVAL_DATA = DocumentData(
    ErrandKind.REMOVAL,
    "BB-4H2P-ZX8R",
    4567,
    RemovalData.from_json(REMOVAL),
    [],
    CREATED,
    Channel.PAPER,
)
