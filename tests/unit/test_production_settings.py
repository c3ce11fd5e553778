"""Outside the demo and the tests the product refuses to start on demo defaults, and says
which settings are missing or unsafe (issue 15)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app import create_app
from app.config import Settings, UnsafeSettings, production_problems

BEHORIGHET = Path(sys.executable).parent / "behorighet"


def production(tmp_path: Path, **changes: object) -> Settings:
    """Settings as an agency would give them (the files exist, their contents aside)."""
    files = {}
    for name in ("bankid_cert_file", "bankid_key_file", "bankid_ca_file",
                 "bankid_trust_roots_file", "seal_cert_file", "seal_key_file",
                 "seal_trust_roots_file"):  # fmt: skip
        path = tmp_path / f"{name}.pem"
        path.write_text("-----BEGIN CERTIFICATE-----\n")
        files[name] = str(path)
    values: dict[str, object] = {
        "database_url": "postgresql+psycopg://behorighet@db.internal/behorighet",
        "broker_url": "amqp://behorighet:x@mq.internal:5672/behorighet",
        "secret_key": "s" * 64,
        "qr_secret": "q" * 64,
        "audit_key": "a" * 64,
        "bankid_url": "https://appapi2.bankid.com/rp/v6.0/",
        "tsa_url": "https://tsa.example.se/rfc3161",
        "mail_url": "smtp+starttls://behorighet:x@smtp.internal:587",
        "public_base_url": "https://behorighet.spv.se",
        **files,
        **changes,
    }
    values.setdefault("given", frozenset(values))
    return Settings(**values)  # type: ignore[arg-type]


def test_complete_production_settings_pass(tmp_path: Path) -> None:
    assert production_problems(production(tmp_path)) == []


def test_demo_defaults_are_refused_each_by_name() -> None:
    problems = "\n".join(production_problems(Settings()))
    for name in (
        "SECRET_KEY",
        "QR_SECRET",
        "AUDIT_KEY",
        "BANKID_CERT_FILE",
        "BANKID_KEY_FILE",
        "BANKID_CA_FILE",
        "BANKID_TRUST_ROOTS_FILE",
        "SEAL_CERT_FILE",
        "SEAL_KEY_FILE",
        "SEAL_TRUST_ROOTS_FILE",
        "TSA_URL",
        "MAIL_URL",
        "PUBLIC_BASE_URL",
        "DATABASE_URL",
        "BROKER_URL",
    ):
        assert name in problems


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"bankid_url": "http://127.0.0.1:5000/bankid-simulator/rp/v6.0/"}, "BANKID_URL"),
        ({"bankid_url": "https://localhost:5000/rp/v6.0/"}, "BANKID_URL"),
        ({"seal_cert_file": "/nonexistent/seal.pem"}, "SEAL_CERT_FILE: no such file"),
        ({"public_base_url": "http://behorighet.spv.se"}, "PUBLIC_BASE_URL"),
        ({"broker_url": "stub://"}, "BROKER_URL"),
    ],
)
def test_one_unsafe_setting_is_named(tmp_path: Path, change: dict[str, str], named: str) -> None:
    [problem] = production_problems(production(tmp_path, **change))
    assert problem.startswith(named)


def test_the_app_and_the_commands_refuse_to_start(tmp_path: Path) -> None:
    with pytest.raises(UnsafeSettings, match="SECRET_KEY is not set"):
        create_app(production(tmp_path, secret_key="x", given=frozenset()))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SECRET_", "QR_"))}
    for command in (["serve"], ["migrate"]):
        run = subprocess.run(
            [str(BEHORIGHET), *command], env=env, capture_output=True, text=True, timeout=60
        )
        assert run.returncode != 0
        assert "Refusing to start with unsafe settings" in run.stderr
        assert "SECRET_KEY is not set" in run.stderr and "Traceback" not in run.stderr
