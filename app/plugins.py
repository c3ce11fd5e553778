"""Plugins: parts from outside the product plugged in when the app is made.

The demo and the tests plug their stand-ins (a BankID simulator, a mail sink, a test PKI,
…) in through :func:`app.create_app`'s ``plugins``, in the places the real adapters
take: settings, blueprints and the app's extensions. The product knows that it runs with
stand-ins only because a plugin says so, in :attr:`Settings.stand_ins
<app.config.Settings.stand_ins>`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from flask import Flask

from app.config import Settings


class Plugin(Protocol):
    """Something plugged into the app when it is made."""

    def configure(self, settings: Settings) -> Settings:
        """The settings the app runs with: ``settings`` with what the plugin provides
        (the stand-ins it declares, adapters such as the seal's source)."""
        ...

    def init_app(self, app: Flask) -> None:
        """Register the plugin's blueprints and services on the made app (its runtime is
        ``app.extensions["behorighet"]``)."""
        ...


def configure_all(settings: Settings, plugins: Iterable[Plugin]) -> Settings:
    """``settings`` as every plugin in turn configures it."""
    for plugin in plugins:
        settings = plugin.configure(settings)
    return settings
