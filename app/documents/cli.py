"""``behorighet verify-pdf FILE``: is this PDF sealed by the agency and unchanged since?

Kept light to import (pyHanko is loaded when the command runs), since every ``behorighet``
command imports the command table.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import click

from app.config import Settings


def _utc(dt: datetime | None) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if dt else "an unknown time"


@contextlib.contextmanager
def _quiet_pyhanko(quiet: bool) -> Iterator[None]:
    """pyHanko logs every failed check with a traceback; the reason printed says enough."""
    loggers = [logging.getLogger(name) for name in ("pyhanko", "pyhanko_certvalidator")]
    levels = [logger.level for logger in loggers]
    if quiet:
        for logger in loggers:
            logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


@click.command("verify-pdf")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--trust-roots",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="PEM file of trusted root certificates (default SEAL_TRUST_ROOTS_FILE).",
)
@click.option(
    "--seal-cert",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The agency's seal certificate, the only one accepted (default: "
    "SEAL_CERT_FINGERPRINTS, SEAL_SUBJECT + SEAL_ORGANISATION_NUMBER or SEAL_CERT_FILE).",
)
@click.option("--verbose", is_flag=True, help="Show pyHanko's own log of the validation.")
def verify_pdf_command(
    file: Path, trust_roots: Path | None, seal_cert: Path | None, verbose: bool
) -> None:
    """Check the agency's seal on FILE: the agency's, intact, trusted, over the whole file
    (but PAdES B-LTA's DSS updates and document timestamps), timestamped; and name the
    PAdES level it reached (B-B, B-T, B-LT, B-LTA).

    Exits 0 only when the seal is accepted; otherwise prints the reason and exits 1.
    """
    from app.documents import pki
    from app.documents.validate import validate_sealed_pdf

    settings = Settings.from_env()
    try:
        if trust_roots is not None:
            roots = pki.load_certificates(trust_roots, "trust roots file")
        else:
            roots = pki.trust_roots(settings)
        if seal_cert is not None:
            identity = pki.SealIdentity(
                fingerprints=frozenset({pki.fingerprint(pki.load_certificates(seal_cert)[0])})
            )
        else:
            identity = pki.accepted_seal(settings)
    except pki.SealConfigurationError as exc:
        click.echo(f"Rejected: {exc}", err=True)
        sys.exit(1)
    try:
        data = file.read_bytes()
    except OSError as exc:
        click.echo(f"Rejected: cannot read {file}: {exc.strerror}", err=True)
        sys.exit(1)
    with _quiet_pyhanko(not verbose):
        report = validate_sealed_pdf(data, trust_roots=roots, seal_identity=identity)
    if not report.accepted:
        click.echo(f"Rejected: {report.reason}", err=True)
        sys.exit(1)
    click.echo(
        f"Accepted: sealed by {report.signer} at {_utc(report.signed_dt)}, "
        f"timestamp {_utc(report.timestamp_dt)}"
    )
    click.echo(f"Level: PAdES {report.level}, validated as of {_utc(report.validated_at)}")
    if report.archive_timestamp_dt is not None:
        click.echo(f"Newest document timestamp: {_utc(report.archive_timestamp_dt)}")
    if report.evidence_names:
        click.echo("Evidence: " + ", ".join(report.evidence_names))
