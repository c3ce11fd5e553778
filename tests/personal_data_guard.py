"""The suite's guard against personal data in logs and metrics (issue 19, item 4).

Every log record any test makes in this process is written once more, as production writes
it (:func:`app.logging.log_formatter`, JSON), and searched for a whole personnummer; after
each test the metrics' label values are searched too. A find fails the test that made it,
with the place and the line, the number itself masked in the message.

Only valid personnummer count (date and check digit, ``personnummer``'s parse): an
organisation number or a reference is not one. Processes a test starts (``behorighet
worker``, ``serve``) write their own logs and are not searched here."""

from __future__ import annotations

import logging
import re
import threading

from prometheus_client import REGISTRY

from app.core.ids import InvalidIdNumber, mask_personnummer_in_text, normalise_personnummer
from app.logging import log_formatter

_CANDIDATE = re.compile(r"(?<!\d)(?:\d{2})?\d{6}[-+]?\d{4}(?!\d)")


def whole_personnummer_in(text: str) -> list[str]:
    """The valid personnummer written out whole in ``text``."""
    found = []
    for match in _CANDIDATE.finditer(text):
        try:
            normalise_personnummer(match.group())
        except InvalidIdNumber:
            continue
        found.append(match.group())
    return found


class PersonalDataGuard(logging.Handler):
    """A root handler that keeps what was written with a whole personnummer in it."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)  # what production writes
        self.set_name("personal-data-guard")
        self.setFormatter(log_formatter(json_logs=True))
        self._lock_finds = threading.Lock()
        self.finds: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # a record the formatter cannot write is not written either
            return
        if whole_personnummer_in(line):
            with self._lock_finds:
                self.finds.append(f"log {record.name}: {mask_personnummer_in_text(line)}")

    def take(self) -> list[str]:
        with self._lock_finds:
            finds, self.finds = self.finds, []
        return finds + _metric_labels_with_personnummer()

    def install(self) -> None:
        root = logging.getLogger()
        if self not in root.handlers:
            root.addHandler(self)


def _metric_labels_with_personnummer() -> list[str]:
    finds = []
    for metric in REGISTRY.collect():
        for sample in metric.samples:
            for label, value in sample.labels.items():
                if whole_personnummer_in(str(value)):
                    finds.append(
                        f"metric {sample.name} label {label}={mask_personnummer_in_text(value)}"
                    )
    return finds
