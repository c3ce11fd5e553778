"""The stand-ins, plugged into the product: ``create_app(settings, plugins=[StandIns()])``.

:meth:`StandIns.configure` declares the stand-ins in :attr:`Settings.stand_ins
<app.config.Settings.stand_ins>` and points the product's adapters at them, through the
settings the real ones take: the seal's source (the test PKI), the roots BankID signatures
must chain to (the test PKI's root) and BankID's URL (the simulator's).
:meth:`StandIns.init_app` registers their pages and gives the app a BankID client that
reaches the simulator in the process.
"""

from __future__ import annotations

import dataclasses
from functools import cached_property
from pathlib import Path
from typing import cast

from flask import Flask

from app.config import Settings, StandIn
from devtools.bankid_simulator.orders import SimulatorConfig
from devtools.pki import TestPki, get_test_pki
from devtools.seal import TestPkiSeal
from devtools.settings import StandInSettings

SIMULATOR_RP_API = "http://127.0.0.1/bankid-simulator/rp/v6.0/"
"""The simulator's RP API, as the product's BankID client is configured (the transport
reaches it in the process, whatever the port)."""

TRANSLATIONS = Path(__file__).resolve().parent / "translations"
"""The catalogues of the stand-ins' pages (the product's hold none of their messages)."""


class StandIns:
    """The demo's and the tests' stand-ins, as one plugin of :func:`app.create_app`."""

    def __init__(self, settings: StandInSettings | None = None) -> None:
        self.settings = settings or StandInSettings.from_env()

    @classmethod
    def of(cls, app: Flask) -> StandIns:
        """The stand-ins plugged into ``app``."""
        return cast(StandIns, app.extensions["stand_ins"])

    @cached_property
    def pki(self) -> TestPki:
        """The test PKI, made on first use."""
        return get_test_pki(self.settings.pki_directory)

    @property
    def simulator_config(self) -> SimulatorConfig:
        return SimulatorConfig.from_settings(self.settings)

    def configure(self, settings: Settings) -> Settings:
        stand_ins = set(settings.stand_ins)
        changes: dict[str, object] = {}
        own_seal = settings.seal_pkcs12_file or settings.seal_cert_file
        if self.settings.test_seal and not own_seal:
            stand_ins.add(StandIn.SEAL)
            changes["seal_source"] = TestPkiSeal(self.settings.test_pki_dir)
        if self.settings.bankid_simulator:
            stand_ins.add(StandIn.BANKID)
            changes["bankid_url"] = SIMULATOR_RP_API
            changes["bankid_trust_roots_file"] = settings.bankid_trust_roots_file or str(
                self.pki.root_certificate_file
            )
        if self.settings.audit_checkpoint_dir and not settings.audit_checkpoint_dir:
            changes["audit_checkpoint_dir"] = self.settings.audit_checkpoint_dir
        if self.settings.mail_sink:
            stand_ins.add(StandIn.MAIL)
        if self.settings.demo_scanner:
            stand_ins.add(StandIn.SCANNER)
        if self.settings.company_register:
            stand_ins.add(StandIn.COMPANY_REGISTER)
        if self.settings.review_clock:
            stand_ins.add(StandIn.REVIEW_CLOCK)
        return dataclasses.replace(settings, stand_ins=frozenset(stand_ins), **changes)  # type: ignore[arg-type]

    def init_app(self, app: Flask) -> None:
        app.extensions["stand_ins"] = self
        app.extensions["babel"].translation_directories.append(str(TRANSLATIONS))
        if self.settings.bankid_simulator:
            from app.eid.bankid import make_bankid_client
            from devtools.bankid_simulator.transport import in_process_transport
            from devtools.bankid_simulator.views import bp as simulator_bp

            app.register_blueprint(simulator_bp)
            settings = app.extensions["behorighet"].settings
            app.extensions["bankid_client"] = make_bankid_client(
                settings, transport=in_process_transport(app)
            )
        if self.settings.mail_sink:
            from devtools.mail_sink.views import bp as mail_sink_bp

            app.register_blueprint(mail_sink_bp)
        if self.settings.demo_scanner:
            from devtools.demo_scanner import bp as demo_scanner_bp

            app.register_blueprint(demo_scanner_bp)
        if self.settings.review_clock:
            from devtools.review_clock import bp as review_clock_bp

            app.register_blueprint(review_clock_bp)
        if self.settings.company_register:
            from devtools.company_register import bp as company_register_bp

            app.register_blueprint(company_register_bp)
