"""The stand-ins' own settings: none of them is the product's."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from app.config import INSTANCE_DIR


@dataclass(frozen=True)
class StandInSettings:
    """What the demo and the tests set up in place of the real parts."""

    test_pki_dir: str = field(default_factory=lambda: str(INSTANCE_DIR / "test-pki"))
    """Where the one test PKI (the seal, the TSA, the BankID simulator's CA and users;
    certomancer's configuration, the keys and the certificates) is made once and kept
    (``TEST_PKI_DIR``); keep it, so earlier seals and signatures stay verifiable. Its
    certificates name its OCSP responders and CRLs at the URL it was made with
    (:func:`devtools.pki.ensure_test_pki`)."""

    bankid_simulator: bool = True
    """Serve the BankID simulator (RP API v6.0 under ``/bankid-simulator/rp/v6.0/`` and the
    stand-in app page ``/bankid-simulator/app``) and point the product's BankID client at
    it, in the process."""

    bankid_order_ttl_s: float = 180.0
    """A simulator order not completed this long after it started fails with
    ``expiredTransaction`` (BankID: 3 minutes; ``BANKID_SIMULATOR_ORDER_TTL_S``)."""

    test_seal: bool = True
    """Seal with the test PKI and its TSA in the process, unless the product's settings
    name a seal of their own (``SEAL_PKCS12_FILE`` or ``SEAL_CERT_FILE``)."""

    mail_sink: bool = True
    """Serve the mail sink's page ``/demo/e-post`` (the demo also runs the SMTP sink on
    ``MAIL_URL``'s loopback port and stores what it receives)."""

    demo_scanner: bool = True
    """Serve ``/demo/skanning``, a stand-in for SPV's mailroom scanner: a PDF of every form
    waiting for the post, printed and scanned, for the clerk to upload."""

    review_clock: bool = True
    """Serve ``/demo/granskning``, where a caseworker lets days go by for the recurring
    review (``devtools.review_clock``)."""
    company_register: bool = True
    """Serve ``/demo/bolagsverket``: a caseworker's button that imports the demo's extract
    of the company register's signatories (``devtools/signatory_extract_demo.csv``), as
    ``behorighet signatories import`` does outside the demo."""

    audit_checkpoint_dir: str | None = None
    """Where the demo keeps the audit chain's checkpoints when the product's settings name
    no place (``instance/audit-checkpoints`` for ``behorighet demo``; the tests name their
    own)."""

    @property
    def pki_directory(self) -> Path:
        return Path(self.test_pki_dir)

    @classmethod
    def from_env(cls, **overrides: object) -> StandInSettings:
        env = os.environ
        values: dict[str, object] = {
            "audit_checkpoint_dir": str(INSTANCE_DIR / "audit-checkpoints"),
        }
        if env.get("TEST_PKI_DIR"):
            values["test_pki_dir"] = env["TEST_PKI_DIR"]
        if env.get("BANKID_SIMULATOR_ORDER_TTL_S"):
            values["bankid_order_ttl_s"] = float(env["BANKID_SIMULATOR_ORDER_TTL_S"])
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]
