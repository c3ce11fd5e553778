"""``behorighet serve``: the production web entry (gunicorn, from the settings), and the
end user's address through the reverse proxy (what BankID is told)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask, request, request_started
from prometheus_client.parser import text_string_to_metric_families

from devtools.pki import ensure_test_pki
from tests.support import REDIS_URL, free_port, wait_for

BEHORIGHET = Path(sys.executable).parent / "behorighet"
PRODUCTION_FILES = {  # production-shaped settings from the test PKI's files
    "BANKID_CERT_FILE": "seal.pem",
    "BANKID_KEY_FILE": "seal-key.pem",
    "BANKID_CA_FILE": "root-ca.pem",
    "BANKID_TRUST_ROOTS_FILE": "root-ca.pem",
    "SEAL_CERT_FILE": "seal.pem",
    "SEAL_KEY_FILE": "seal-key.pem",
    "SEAL_CHAIN_FILE": "seal-ca.pem",
    "SEAL_TRUST_ROOTS_FILE": "root-ca.pem",
}


def _remote_addrs(app: Flask, headers: dict[str, str]) -> str:
    seen: list[str] = []

    def record(_sender: Flask, **_extra: object) -> None:
        seen.append(request.remote_addr or "")

    with request_started.connected_to(record, app):
        app.test_client().get("/healthz", headers=headers, environ_base={"REMOTE_ADDR": "10.0.0.2"})
    return seen[0]


@pytest.mark.parametrize(
    ("proxies", "seen"),
    [(0, "10.0.0.2"), (1, "203.0.113.9")],
    ids=["no proxy: the header is not believed", "one proxy: its header is"],
)
def test_the_end_users_address_comes_through_the_trusted_proxies(
    make_app: Callable[..., Flask], proxies: int, seen: str
) -> None:
    app = make_app(trusted_proxies=proxies)
    forged_and_real = {"X-Forwarded-For": "198.51.100.1, 203.0.113.9"}
    assert _remote_addrs(app, forged_and_real) == seen


def _children(pid: int) -> set[str]:
    """The process ids of ``pid``'s children (gunicorn's workers)."""
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False)
    return set(found.stdout.split())


def _get(url: str, **headers: str) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as r:
            return int(r.status)
    except urllib.error.HTTPError as refused:
        return refused.code
    except OSError:
        return 0


def _counted(url: str, token: str, route: str) -> float:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        families = text_string_to_metric_families(response.read().decode())
        return sum(
            sample.value
            for family in families
            for sample in family.samples
            if sample.name == "behorighet_http_requests_total"
            and sample.labels == {"route": route, "method": "GET", "status": "200"}
        )


@pytest.mark.slow  # two gunicorn workers start twice: about 15 s
def test_serve_runs_gunicorn_with_the_settings_workers_and_reloads_and_stops_gracefully(
    committed_db: None, database_url: str, pki_dir: Path, tmp_path: Path
) -> None:
    """…and logs JSON lines only, and its ``/metrics`` (behind the token) counts the requests
    of both workers, the replaced ones' too (PROMETHEUS_MULTIPROC_DIR)."""
    port = free_port()
    ensure_test_pki(pki_dir)
    pki = {name: str(pki_dir / file) for name, file in PRODUCTION_FILES.items()}
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "BROKER_URL": REDIS_URL,
        "WEB_WORKERS": "2",
        "WEB_THREADS": "2",
        "SECRET_KEY": "serve-test",
        "QR_SECRET": "serve-test-qr",
        "AUDIT_KEY": "serve-test-audit-key-of-at-least-32-characters",
        "BANKID_URL": "https://appapi2.test.bankid.com/rp/v6.0/",
        "TSA_URL": "https://tsa.example/rfc3161",
        "MAIL_URL": "smtp://127.0.0.1:9",
        "PUBLIC_BASE_URL": "https://behorighet.example",
        "METRICS_TOKEN": "serve-test-metrics",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        **pki,
    }
    server = subprocess.Popen(
        [str(BEHORIGHET), "serve", "--bind", f"127.0.0.1:{port}"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        ready = f"http://127.0.0.1:{port}/readyz"
        wait_for(lambda: _get(ready) == 200, timeout=30, message="serve to answer /readyz")
        # WEB_WORKERS=2: both boot (the second may come a moment after the first answers).
        wait_for(lambda: len(_children(server.pid)) == 2, timeout=30, message="two workers")
        workers = _children(server.pid)
        healthz = f"http://127.0.0.1:{port}/healthz"
        assert all(_get(healthz, **{"X-Request-ID": f"probe-{i}"}) == 200 for i in range(8))
        metrics = f"http://127.0.0.1:{port}/metrics"
        assert _get(metrics) == 401
        assert _counted(metrics, "serve-test-metrics", "/healthz") == 8
        server.send_signal(signal.SIGHUP)  # a graceful reload: new workers, no downtime
        wait_for(
            lambda: len(_children(server.pid)) == 2 and _children(server.pid).isdisjoint(workers),
            timeout=30,
            message="the workers to be replaced",
        )
        assert _get(ready) == 200
        assert _get(healthz) == 200
        assert _counted(metrics, "serve-test-metrics", "/healthz") == 9  # the old workers' too
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
        output = server.stdout.read().decode() if server.stdout else ""
    lines, not_json = [], []
    for line in filter(str.strip, output.splitlines()):
        try:
            lines.append(json.loads(line))
        except json.JSONDecodeError:
            not_json.append(line)
    assert not not_json, "\n".join(not_json)
    assert any(line["message"].startswith("Booting worker") for line in lines)
    assert not [line for line in lines if line["logger"] == "gunicorn.access"]  # ours only
    probes = [line for line in lines if line.get("request_id", "").startswith("probe-")]
    assert len(probes) == 8
    answered = {(p["message"], p["route"], p["status"]) for p in probes}
    assert answered == {("request", "/healthz", 200)}
