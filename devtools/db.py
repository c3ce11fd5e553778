"""The declarative base of the stand-ins' own tables, outside the product's metadata.

Their tables live beside the product's in the same database (so the stand-ins share its
transactions), but no production migration creates them: ``behorighet demo`` and the
tests do, with :func:`devtools.models.create_tables`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

from app.db import NAMING_CONVENTION, UTCDateTime


class DevtoolsBase(DeclarativeBase):
    """The base of every stand-in's table (not the product's ``app.db.Base``)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}
