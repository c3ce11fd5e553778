"""The Alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

import app.models  # noqa: F401  (every model registered on Base.metadata)
from app.db import Base
from devtools import models as devtools_models


def _production_object(name: str | None, type_: str, _parents: dict[str, str | None]) -> bool:
    """Everything but the stand-ins' own tables, which the tests make beside the product's."""
    return not (type_ == "table" and name in devtools_models.metadata.tables)


def test_migrations_match_the_models(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "include_name": _production_object}
            )
            differences = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert differences == []


def test_no_stand_in_table_is_the_products() -> None:
    assert not set(devtools_models.metadata.tables) & set(Base.metadata.tables)
