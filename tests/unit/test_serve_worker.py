"""What a ``behorighet serve`` worker does once it has loaded the app."""

from __future__ import annotations

import gc

import pytest

from app import serve


def test_a_worker_keeps_what_loading_made_out_of_full_collections(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Else a full collection walks all of it now and then (about 100 ms with the app's
    certificates, catalogues and mappers), stalling every thread of the worker."""
    warmed: list[bool] = []
    monkeypatch.setattr("app.intake.decoder.warm_decoder", lambda: warmed.append(True))
    loaded = [object() for _ in range(1000)]  # stands for what loading the app made
    assert gc.get_freeze_count() == 0
    try:
        serve._worker_started(None)
        assert gc.get_freeze_count() >= len(loaded)
        assert warmed == [True]  # and the intake decoder starts
    finally:
        gc.unfreeze()
