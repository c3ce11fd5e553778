"""Micro-benchmark of the e-signed document's PDF work, each step's median in one run.

    .venv/bin/python bench/bench_seal.py [--runs 30]

Steps: rendering the form (WeasyPrint, PDF/A-3a), sealing it (evidence attached, visible
stamp, PAdES B-LTA with the local test TSA and the test PKI's OCSP responders and CRLs
served on a free port) and validating the seal; beside them, pyHanko's
bare cost on the same document and key (an invisible B-T signature; validation of it
alone), the reference the product's ratios are measured against (DESIGN §7).
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext
from servers import quiet_logs

from app.config import Settings, qr_mac_key
from app.documents.pki import SealIdentity, fingerprint, seal_material
from app.documents.render import render_form_pdf
from app.documents.seal import Evidence, seal_pdf
from app.documents.validate import validate_sealed_pdf
from devtools.pki import PkiServer
from devtools.seal import TestPkiSeal
from tests.sample_forms import REGISTRATION_DATA

FORM = REGISTRATION_DATA
EVIDENCE = [
    Evidence("bankid-signature.xml", b"<Signature>" + b"x" * 6000 + b"</Signature>",
             "application/xml", "BankID-signaturen"),
    Evidence("bankid-ocsp.der", bytes(range(256)) * 8, "application/ocsp-response",
             "OCSP-svaret"),
]  # fmt: skip


def median_ms(step: Callable[[], object], runs: int) -> tuple[float, float]:
    """Median and fastest time of ``runs`` calls after one warm-up call, in milliseconds."""
    step()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        step()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    quiet_logs()

    with tempfile.TemporaryDirectory() as pki_dir, PkiServer(Path(pki_dir)):
        material = seal_material(Settings(secret_key="bench", seal_source=TestPkiSeal(pki_dir)))
        identity = SealIdentity(fingerprints=frozenset({fingerprint(material.signing_cert)}))
        key = qr_mac_key("bench")
        form = render_form_pdf(FORM, lang="sv", key=key, for_print=False)
        sealed = seal_pdf(form, material=material, evidence=EVIDENCE, signer_name="Bertil Berg",
                          lang="sv")  # fmt: skip
        meta = signers.PdfSignatureMetadata(
            field_name="Bare", subfilter=fields.SigSeedSubFilter.PADES, md_algorithm="sha256"
        )
        bare_signer = signers.PdfSigner(meta, material.signer, timestamper=material.timestamper)
        # The same room for the signature as the seal has (pyHanko's own estimate would
        # sign a dummy first, and leave 50 % more room for each validation to parse).
        reserved = len(PdfFileReader(io.BytesIO(sealed)).embedded_regular_signatures[-1]
                       .pkcs7_content)  # fmt: skip

        def bare_seal() -> bytes:
            writer = IncrementalPdfFileWriter(io.BytesIO(form))
            return bare_signer.sign_pdf(writer, bytes_reserved=2 * reserved).getvalue()

        bare_sealed = bare_seal()

        def bare_validate() -> object:
            sig = PdfFileReader(io.BytesIO(bare_sealed)).embedded_regular_signatures[-1]
            context = ValidationContext(trust_roots=list(material.trust_roots))
            return validate_pdf_signature(sig, context, context)

        report = validate_sealed_pdf(
            sealed, trust_roots=material.trust_roots, seal_identity=identity
        )
        assert report.accepted, report.reason

        steps: list[tuple[str, Callable[[], object]]] = [
            ("render form (WeasyPrint, PDF/A-3a)",
             lambda: render_form_pdf(FORM, lang="sv", key=key, for_print=False)),
            ("seal: evidence + stamp + PAdES B-LTA",
             lambda: seal_pdf(form, material=material, evidence=EVIDENCE,
                              signer_name="Bertil Berg", lang="sv")),
            ("  pyHanko bare: invisible B-T", bare_seal),
            ("validate sealed PDF (B-LTA)", lambda: validate_sealed_pdf(
                sealed, trust_roots=material.trust_roots, seal_identity=identity)),
            ("  pyHanko bare: validate_pdf_signature", bare_validate),
        ]  # fmt: skip
        print(f"{'step':<40} {'median ms':>10} {'min ms':>8}   ({args.runs} runs)")
        results = {}
        for name, step in steps:
            median, fastest = median_ms(step, args.runs)
            results[name] = median
            print(f"{name:<40} {median:>10.1f} {fastest:>8.1f}")
        total = sum(v for k, v in results.items() if not k.startswith(" "))
        print(f"{'render + seal + validate':<40} {total:>10.1f}")
        print(f"sizes: form {len(form)} B, sealed {len(sealed)} B")


if __name__ == "__main__":
    main()
