"""Every stand-in's model, imported in one place so that their metadata holds all tables."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from devtools.bankid_simulator.models import SimulatorFault, SimulatorOrder
from devtools.db import DevtoolsBase
from devtools.mail_sink.models import SinkMessage

metadata = DevtoolsBase.metadata
"""The stand-ins' tables (none of them is the product's)."""


def create_tables(engine: Engine) -> None:
    """Create the stand-ins' tables that are missing (idempotent)."""
    metadata.create_all(engine)


__all__ = [
    "DevtoolsBase",
    "SimulatorFault",
    "SimulatorOrder",
    "SinkMessage",
    "create_tables",
    "metadata",
]
