"""A test PKI whose TSA certificate ends within a year and is renewed, for the archive's
re-timestamping (``app.documents.archive``, ``app.registrations.archive``), and the clock
its tests move: certomancer's services (OCSP, CRLs), the TSA's time and the product's
``now`` all moved together, no sleeping."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pyhanko.sign.timestamps import TimeStamper, TimestampRequestError

from app.config import Settings
from app.documents import pki
from app.documents.render import render_form_pdf
from app.documents.seal import seal_pdf
from app.registrations.archive import ArchiveSources
from devtools.pki import PkiServer, TsaCertificatePlan
from devtools.seal import TestPkiSeal
from devtools.timestamps import load_local_timestamper
from tests.sample_forms import KEY, REGISTRATION_DATA

NOW = datetime.now(UTC).replace(microsecond=0)
TSA_ENDS = NOW + timedelta(days=300)
"""When the TSA's first certificate ends."""
TSA_RENEWED_ENDS = NOW + timedelta(days=5 * 365)
"""When its renewed certificate ends."""
MARGIN = timedelta(days=180)
DUE = NOW + timedelta(days=150)
"""A moment within the margin of the first certificate's end (150 days left)."""
AFTER_FIRST_TSA = NOW + timedelta(days=400)
"""A moment after the first certificate ended."""


class ArchivePki:
    """The PKI served by ``server`` (made with :data:`TSA_ENDS` and a renewal)."""

    def __init__(self, server: PkiServer) -> None:
        self.server = server
        self.base = pki.seal_material(
            Settings(secret_key="x", seal_source=TestPkiSeal(str(server.directory)))
        )

    @classmethod
    @contextlib.contextmanager
    def served(cls, directory: Path) -> Iterator[ArchivePki]:
        plan = TsaCertificatePlan(valid_to=TSA_ENDS, renewed_to=TSA_RENEWED_ENDS)
        with PkiServer(directory, tsa=plan) as server:
            yield cls(server)

    def seal(self, pdf: bytes) -> bytes:
        """Sealed now, timestamped by the TSA's first certificate."""
        return seal_pdf(pdf, material=self.base, evidence=[], signer_name="Bertil Berg", lang="sv")

    def renewed(self, at: datetime) -> pki.SealMaterial:
        """The seal material at ``at``: the TSA on its renewed certificate, stamping ``at``."""
        stamper = load_local_timestamper(self.server.paths, renewed=True, fixed_dt=at)
        return dataclasses.replace(self.base, timestamper=stamper)

    def sources(self, material: pki.SealMaterial | None = None) -> ArchiveSources:
        material = material or self.base
        return ArchiveSources(
            material=material,
            trust_roots=material.trust_roots,
            seal_identity=pki.SealIdentity(
                fingerprints=frozenset({pki.fingerprint(material.signing_cert)})
            ),
        )

    @contextlib.contextmanager
    def moved_to(self, at: datetime) -> Iterator[datetime]:
        """The PKI's services at ``at`` (certomancer's time travel) until the block ends."""
        self.server.moment = at
        try:
            yield at
        finally:
            self.server.moment = None


class FailingTsa(TimeStamper):
    """A TSA that does not answer (as pyHanko's HTTP client reports it)."""

    async def async_request_tsa_response(self, req: object) -> object:  # type: ignore[override]
        raise TimestampRequestError("the TSA is down")


# The two test modules' fixtures (imported by them).
@pytest.fixture(scope="module", name="archive_pki")
def archive_pki_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ArchivePki]:
    with ArchivePki.served(tmp_path_factory.mktemp("archive-pki")) as served:
        yield served


@pytest.fixture(scope="module", name="form_pdf")
def form_pdf_fixture() -> bytes:
    return render_form_pdf(REGISTRATION_DATA, lang="sv", key=KEY, for_print=False)
