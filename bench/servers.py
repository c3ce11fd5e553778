"""What the benches share: quiet logs, and waiting until a server they start answers."""

from __future__ import annotations

import logging
import os
import subprocess
import time

import httpx


def quiet_logs() -> None:
    """Warnings and errors only, here and in the workers a bench starts (``LOG_LEVEL``): a
    line a request or a certificate fetched would bury the tables. The web servers whose
    pages and checks are timed keep production's INFO, their lines going to a file."""
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    logging.disable(logging.INFO)  # the apps made in-process set their own level: INFO


def wait_until_healthy(base: str, process: subprocess.Popen[bytes], seconds: float = 60) -> None:
    """Until ``base``/healthz answers 200; RuntimeError when the server exits first."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            raise RuntimeError(f"the server at {base} exited ({process.returncode})")
        time.sleep(0.1)
    raise RuntimeError(f"the server at {base} did not answer in {seconds:.0f} s")
