"""PostgreSQL, Redis and RabbitMQ of a test's own, in a temporary folder on free ports, to
stop and start at will: never the shared services (other people's tests run on them)."""

from __future__ import annotations

import contextlib
import glob
import os
import random
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    """A free port below the kernel's ephemeral range (32768 and up), so that no client's
    outgoing connection takes it while the service is down for a restart."""
    rng = random.Random()
    while True:
        port = rng.randrange(20000, 32000)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


def _wait_for_port(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def _wait_until_closed(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            return
        time.sleep(0.1)
    raise TimeoutError(f"127.0.0.1:{port} still listens after {timeout}s")


def _as(user: str, args: list[str], **kwargs: object) -> subprocess.CompletedProcess[bytes]:
    """Run ``args`` as ``user`` (the servers refuse to run as root)."""
    prefix = ["runuser", "-u", user, "--"] if os.geteuid() == 0 else []
    return subprocess.run([*prefix, *args], check=True, capture_output=True, **kwargs)  # type: ignore[call-overload, no-any-return]


def _owned_by(user: str, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(folder, user)
    return folder


class PrivatePostgres:
    """A PostgreSQL cluster of its own (initdb, pg_ctl), trust auth on 127.0.0.1."""

    def __init__(self, root: Path) -> None:
        self.bin = Path(sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1])
        self.root = _owned_by("postgres", root / "postgres")
        self.data = self.root / "data"
        self.port = free_port()
        _as("postgres", [str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres",
                         "--auth=trust", "-E", "UTF8", "--no-sync"])  # fmt: skip

    def url(self, database: str, driver: str = "postgresql+psycopg") -> str:
        return f"{driver}://postgres@127.0.0.1:{self.port}/{database}"

    def _ctl(self, *args: str) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        _as("postgres", [str(self.bin / "pg_ctl"), "-D", str(self.data), "-l",
                         str(self.root / "log"), "-w", "-o", options, *args])  # fmt: skip

    def start(self) -> None:
        self._ctl("start")

    def restart(self) -> None:
        """A fast shutdown (every connection is ended) and a start."""
        self._ctl("-m", "fast", "restart")

    def stop(self) -> None:
        self._ctl("-m", "immediate", "stop")

    @property
    def pid(self) -> int | None:
        """The postmaster's process id while it runs."""
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (FileNotFoundError, IndexError, ValueError):
            return None


class PrivateRedis:
    """A redis-server of its own, its data in an append-only file (kept across a restart)."""

    def __init__(self, root: Path) -> None:
        self.folder = root / "redis"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.folder)],
            stdout=(self.folder / "log").open("ab"),
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        _wait_for_port(self.port)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)
        _wait_until_closed(self.port)

    def restart(self) -> None:
        self.stop()
        self.start()


class PrivateRabbitMQ:
    """A RabbitMQ node of its own (its name, ports, Mnesia and log folders; no plugins)."""

    def __init__(self, root: Path) -> None:
        self.folder = _owned_by("rabbitmq", root / "rabbitmq")
        plugins = self.folder / "enabled_plugins"
        plugins.write_text("[].\n")
        self.port, self.dist_port = free_port(), free_port()
        self.node = f"fault{os.getpid()}@localhost"
        self.env = {
            **os.environ,
            "HOME": "/var/lib/rabbitmq",  # the Erlang cookie rabbitmqctl needs
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.folder / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.folder / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(plugins),
            "RABBITMQ_CONFIG_FILE": str(self.folder / "none"),
        }
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"

    @property
    def pid(self) -> int | None:
        """The node's first process (``runuser``, the script, then the Erlang VM below)."""
        return self.process.pid if self.process is not None else None

    def _command(self, name: str) -> list[str]:
        prefix = ["runuser", "-u", "rabbitmq", "--"] if os.geteuid() == 0 else []
        return [*prefix, f"/usr/lib/rabbitmq/bin/{name}"]

    def start(self, attempts: int = 3) -> None:
        for attempt in range(attempts):
            self.process = subprocess.Popen(
                self._command("rabbitmq-server"),
                env=self.env,
                cwd=self.folder,
                stdout=(self.folder / "out.log").open("ab"),
                stderr=subprocess.STDOUT,
                start_new_session=True,  # the node's processes in a group of their own
            )
            try:
                _wait_for_port(self.port, timeout=45)
                return
            except TimeoutError:
                self._kill()
                print(f"RabbitMQ {self.node} did not start in 45 s; again")
                if attempt == attempts - 1:
                    log = (self.folder / "out.log").read_text(errors="replace")[-3000:]
                    raise TimeoutError(f"RabbitMQ {self.node} did not start:\n{log}") from None

    def stop(self) -> None:
        """``rabbitmqctl stop``; on a machine so loaded that the Erlang CLI does not get its
        answer in time (seen at load average 40), SIGTERM to the node (a clean stop too)."""
        try:
            subprocess.run(
                [*self._command("rabbitmqctl"), "-n", self.node, "stop"],
                env=self.env,
                capture_output=True,
                check=False,
                timeout=60,
            )
        except subprocess.TimeoutExpired:
            if self.process is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGTERM)
        if self.process is not None:
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._kill()
        _wait_until_closed(self.port)
        _wait_until_closed(self.dist_port)  # a new node could not take it yet

    def _kill(self) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def restart(self) -> None:
        self.stop()
        self.start()
