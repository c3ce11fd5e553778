"""Benchmark of the whole e-signed pipeline against its bare PDF work, in one run.

    .venv/bin/python bench/bench_pipeline.py [--runs 9] [--database both|sqlite|postgresql]

*Bare* (DESIGN §7): WeasyPrint renders the form, pyHanko seals it (invisible PAdES B-T,
same key and timestamper) and validates the seal. *Pipeline*: one registration as the
product handles it, step by step in one process, on a SQLite file and on PostgreSQL
(``DATABASE_URL``, or a fresh database made and dropped next to ``TEST_PG_ADMIN_URL``'s):
the draft, the PDF to sign, the sign order, the signature checked (XML-DSig, OCSP) and the
form sealed with its evidence, the receipt, the automated checks (the seal validated and
the evidence checked again), a caseworker's claim and approval, the grant applied with its
emails queued, the decision letter archived. BankID's work is not ours and is timed apart:
what the simulator does in the person's app (making the signature), and its answers to
the product's calls (start, collect: BankID's servers in production). Bare and pipeline
run in turns, so that both share the machine's load alike; medians of ``--runs``.
DESIGN §7 bar: pipeline ≤ 1.3× bare; ends with ``RESULT pipeline_<database>_ratio <ratio>
1.3 PASS|FAIL`` per database (and exits 1 if one fails).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_access import fresh_database
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.validation import validate_pdf_signature, validate_pdf_timestamp
from pyhanko.sign.validation.dss import DocumentSecurityStore
from pyhanko_certvalidator import ValidationContext
from servers import quiet_logs
from sqlalchemy import select, update
from sqlalchemy.orm import Session

BAR = 1.3
PEOPLE = [  # Skatteverket's test personnummer, registered in turn at Provverket
    ("198507049859", "Fredrik", "Falk"),
    ("198112189876", "Anna", "Andersson"),
    ("197205119824", "Cecilia", "Carlsson"),
    ("199001019810", "Bertil", "Berg"),
]


class Product:
    """The app on its own database with the BankID simulator in-process."""

    def __init__(self, url: str | None) -> None:
        from app import create_app
        from app.cli import migrate_database
        from app.config import Settings
        from devtools.models import create_tables
        from devtools.plugin import StandIns
        from devtools.seed import seed_demo
        from devtools.settings import StandInSettings

        folder = tempfile.mkdtemp(prefix="bench-pipeline-")
        url = url or f"sqlite:///{folder}/bench.sqlite3"
        self.test_pki_dir = f"{folder}/pki"
        # The test PKI's OCSP responders and CRLs: sealing fetches from them (B-LTA).
        from devtools.pki import PkiServer

        self.pki_server = PkiServer(self.test_pki_dir).start()
        self.stand_ins = StandIns(
            StandInSettings(test_pki_dir=self.test_pki_dir, mail_sink=False, demo_scanner=False)
        )
        migrate_database(url)
        self.app = create_app(
            Settings(database_url=url, broker_url="stub://", secret_key="bench"),
            [self.stand_ins],
        )
        self.runtime = self.app.extensions["behorighet"]
        self.settings = self.runtime.settings
        self.client = self.app.extensions["bankid_client"]
        create_tables(self.runtime.engine)
        with self.runtime.unit_of_work() as session:
            seed_demo(session)
        self.simulated_s = 0.0
        """Time in the BankID simulator's app (the person signing), summed over the runs."""
        self.bankid_s = 0.0
        """Time BankID took to answer the product's calls, summed over the runs."""
        self.runs = 0
        self.phases: dict[str, float] = {}
        """Time per phase of :meth:`errand`, summed over the runs."""

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[Session]:
        """A unit of work, its time added to the phase's total."""
        started = time.perf_counter()
        with self.runtime.unit_of_work() as session:
            yield session
        self.phases[name] = self.phases.get(name, 0.0) + time.perf_counter() - started

    def warmed(self) -> None:
        """The warm-up run done: the phases' times and the simulator's count from here."""
        self.simulated_s = self.bankid_s = 0.0
        self.phases.clear()

    def errand(self) -> None:
        """One registration, from the draft to the archived decision."""
        from app.access.models import Person, RoleGrant
        from app.casework import service as casework
        from app.core.agents import Agent, AgentKind
        from app.db import utcnow
        from app.eid import service as eid
        from app.eid.models import EidOrder
        from app.registrations import documents, signing
        from app.registrations import service as registrations
        from app.registrations.data import RegistrationData
        from app.registrations.models import Errand
        from app.staff.models import StaffMember
        from devtools.bankid_simulator.app_actions import open_and_approve
        from workflows import pipeline
        from workflows.verification import verifiers_for

        personnummer, given, family = PEOPLE[self.runs % len(PEOPLE)]
        self.runs += 1
        system = Agent.system("bench")
        with self.phase("draft, PDF to sign, sign order") as session:
            david = session.scalars(
                select(Person).where(Person.personnummer == "200001029834")
            ).one()
            submitter = Agent(AgentKind.PERSON, david.id, david.personnummer)
            errand = registrations.create_registration(
                session,
                submitter,
                RegistrationData.from_json(
                    {
                        "orgnr": "2021004920",
                        "personnummer": personnummer,
                        "given_name": given,
                        "family_name": family,
                        "email": f"{given.lower()}@provverket.example",
                        "role": "orderer",
                        "signatory_name": "Eva Ek",
                        "signatory_personnummer": "195210039847",
                    }
                ),
            )
            pdf = documents.signable_form(errand, self.settings)
            session.commit()  # no lock held while BankID answers (as the views do)
            order = signing.start(
                session, submitter, _BankId(self, session), errand, pdf,
                "127.0.0.1", "bench",
            )  # fmt: skip
            errand_id, order_id, order_ref = errand.id, order.id, order.order_ref
        started = time.perf_counter()
        with self.runtime.unit_of_work() as session:  # the person, in the BankID app
            open_and_approve(
                session,
                order_ref,
                "195210039847",
                self.stand_ins.simulator_config,
                self.stand_ins.pki,
            )
        self.simulated_s += time.perf_counter() - started
        with self.phase("signature checked, form sealed") as session:
            errand = session.get(Errand, errand_id)
            assert errand is not None
            order = session.get(EidOrder, order_id)
            assert order is not None
            session.commit()  # no lock held while BankID answers (as the views do)
            collected = eid.poll(session, _BankId(self, session), order, timedelta(0))
            assert collected.status.value == "complete"
            signing.finish(session, order, errand, documents.seal_context(self.settings))
        with self.phase("receipt") as session:
            pipeline.issue_receipt(session, errand_id)
        with self.phase("automated checks") as session:
            assert pipeline.verify(
                session, errand_id, system, verifiers_for(session, self.settings)
            )
        with self.phase("claim and approve") as session:
            errand = session.get(Errand, errand_id)
            assert errand is not None
            ingrid = session.scalars(select(StaffMember).where(StaffMember.is_caseworker)).first()
            assert ingrid is not None
            agent = Agent(AgentKind.STAFF, ingrid.id, ingrid.personnummer, is_caseworker=True)
            assert casework.claim(session, agent, errand)
            assert casework.approve_errand(session, agent, errand)
        with self.phase("apply (grant, emails)") as session:
            assert pipeline.apply(
                session, errand_id, system, base_url=self.settings.public_base_url
            )
        with self.phase("archive (decision letter)") as session:
            assert pipeline.archive(session, errand_id, system)
        with self.runtime.unit_of_work() as session:  # (~1 ms) the same people again later
            session.execute(
                update(RoleGrant)
                .where(RoleGrant.source_errand_id == errand_id)
                .values(valid_to_dt=utcnow())
            )


class _BankId:
    """The BankID client as the bench calls it: the session's transaction ended before each
    call (SQLite takes its write lock at BEGIN, and the simulator answering in-process
    writes to the same file), and the time BankID takes to answer (the simulator's RP API,
    BankID's servers in production) added to the product's ``bankid_s``."""

    def __init__(self, product: Product, session: Session) -> None:
        self.product, self.session = product, session

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            self.session.commit()
            started = time.perf_counter()
            try:
                return getattr(self.product.client, name)(*args, **kwargs)
            finally:
                self.product.bankid_s += time.perf_counter() - started

        return call


def bare(test_pki_dir: str) -> Callable[[], object]:
    """WeasyPrint render + pyHanko seal + validation of the same form, as one step: sealed
    as the product seals (PAdES B-LTA: the chain's revocation data fetched and embedded, a
    document timestamp on top; issue 17) and validated as such with pyHanko alone: the
    document timestamp as of now, the seal as of that timestamp with the DSS's revocation
    data (hard-fail), as the product does but with nothing of the product's around it."""

    from app.config import Settings, qr_mac_key
    from app.documents.pki import seal_material
    from app.documents.render import render_form_pdf
    from app.documents.seal import fetching_validation_context
    from devtools.seal import TestPkiSeal
    from tests.sample_forms import REGISTRATION_DATA

    material = seal_material(Settings(secret_key="bench", seal_source=TestPkiSeal(test_pki_dir)))
    key = qr_mac_key("bench")
    meta = signers.PdfSignatureMetadata(
        field_name="Bare",
        subfilter=fields.SigSeedSubFilter.PADES,
        md_algorithm="sha256",
        embed_validation_info=True,
        use_pades_lta=True,
        validation_context=fetching_validation_context(material),
    )
    signer = signers.PdfSigner(meta, material.signer, timestamper=material.timestamper)

    def step() -> object:
        form = render_form_pdf(REGISTRATION_DATA, lang="sv", key=key, for_print=False)
        sealed = signer.sign_pdf(
            IncrementalPdfFileWriter(io.BytesIO(form)), bytes_reserved=16384
        ).getvalue()
        reader = PdfFileReader(io.BytesIO(sealed))
        roots = list(material.trust_roots)
        archived = validate_pdf_timestamp(
            reader.embedded_timestamp_signatures[-1],
            validation_context=ValidationContext(trust_roots=roots),
            skip_diff=True,
        )
        context = DocumentSecurityStore.read_dss(reader).as_validation_context(
            {
                "trust_roots": roots,
                "moment": archived.timestamp,
                "revocation_mode": "hard-fail",
                "retroactive_revinfo": True,
            }
        )
        return validate_pdf_signature(reader.embedded_regular_signatures[-1], context, context)

    return step


def timed_s(step: Callable[[], object]) -> float:
    started = time.perf_counter()
    step()
    return time.perf_counter() - started


def run(url: str | None, runs: int) -> bool:
    """Bare and pipeline on one database, in turns (the machine's load is shared alike):
    prints the medians, the table and the RESULT line."""
    product = Product(url)
    bare_step = bare(product.test_pki_dir)
    bare_step()  # warm-up: fonts, keys, caches
    product.errand()
    product.warmed()
    bare_times, pipeline_times = [], []
    for _ in range(runs):
        bare_times.append(timed_s(bare_step))
        simulated_s, bankid_s = product.simulated_s, product.bankid_s
        total_s = timed_s(product.errand)
        simulated_s = product.simulated_s - simulated_s
        bankid_s = product.bankid_s - bankid_s
        pipeline_times.append(total_s - simulated_s - bankid_s)
    bare_s, pipeline_s = statistics.median(bare_times), statistics.median(pipeline_times)
    ratio = pipeline_s / bare_s
    verdict = "" if ratio <= BAR else " (over the bar)"
    print(f"bare render + seal + validate: {bare_s * 1000:.0f} ms")
    print(f"pipeline, one registration:    {pipeline_s * 1000:.0f} ms"
          f" (+ {product.simulated_s / runs * 1000:.0f} ms in the BankID simulator's app,"
          f" {product.bankid_s / runs * 1000:.0f} ms for BankID's answers)")  # fmt: skip
    for name, seconds in product.phases.items():
        print(f"  {name:<34} {seconds / runs * 1000:>6.0f} ms")
    print()
    print("| e-signed pipeline (DESIGN §7: ≤ 1.3× bare) | bare | pipeline | pipeline / bare |")
    print("|---|---|---|---|")
    database = "SQLite" if product.settings.database_url.startswith("sqlite") else "PostgreSQL"
    print(f"| one registration, {database} | {bare_s * 1000:.0f} ms |"
          f" {pipeline_s * 1000:.0f} ms | {ratio:.2f}×{verdict} |")  # fmt: skip
    print(f"RESULT pipeline_{database.lower()}_ratio {ratio:.2f} {BAR} "
          f"{'PASS' if ratio <= BAR else 'FAIL'}")  # fmt: skip
    return ratio <= BAR


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument(
        "--database",
        choices=["both", "sqlite", "postgresql"],
        default="both",
        help="PostgreSQL: DATABASE_URL, or a fresh database next to TEST_PG_ADMIN_URL's",
    )
    args = parser.parse_args()
    quiet_logs()
    if args.database == "both":  # one process each: two apps' caches and pools apart
        codes = [
            subprocess.call([sys.executable, __file__, "--runs", str(args.runs), "--database", db])
            for db in ("sqlite", "postgresql")
        ]
        sys.exit(max(codes))
    if args.database == "sqlite":
        passed = run(None, args.runs)
    elif os.environ.get("DATABASE_URL"):
        passed = run(os.environ["DATABASE_URL"], args.runs)
    else:
        with fresh_database(keep=False) as url:
            passed = run(url.replace("postgresql://", "postgresql+psycopg://"), args.runs)
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
