"""End-to-end fixtures: the ``herald`` CLI and the Procfile processes, as a user runs them."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import urllib.request
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import REPO, wait_for
from tooling.local.ports import free_port

BIN = Path(sys.executable).parent


def scrape(port: int) -> str | None:
    """The text of ``/metrics`` on the loopback ``port``; ``None`` while nothing answers there."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            return str(response.read().decode())
    except OSError:
        return None


def group_stacks(pid: int) -> str:
    """Every thread's Python stack in the process group ``pid`` leads (py-spy), for a process that
    outlived SIGTERM: which process of it hung, and where."""
    spy = BIN / "py-spy"
    found = subprocess.run(["pgrep", "-g", str(pid)], capture_output=True, text=True, check=False)
    dumps = []
    for member in found.stdout.split():
        dump = subprocess.run(
            [str(spy), "dump", "--pid", member], capture_output=True, text=True, timeout=30, check=False
        )
        dumps.append(f"== pid {member}\n{dump.stdout or dump.stderr}")
    return "\n".join(dumps)


def sample(text: str | None, series: str) -> float:
    """A sample's value in an exposition (0 while absent): ``series`` as written, labels included."""
    found = re.search(rf"^{re.escape(series)} ([0-9.e+]+)$", text or "", re.MULTILINE)
    return float(found.group(1)) if found else 0.0


class Deployment:
    """A herald installation in a temporary directory, with its own queues and database."""

    def __init__(self, base_env: dict[str, str], workdir: Path, database_url: str | None = None) -> None:
        self.workdir = workdir
        self.db_path = workdir / "herald.db"
        #: SQLite in the working directory unless given (e.g. a PostgreSQL schema of its own).
        self.database_url = database_url or f"sqlite:///{self.db_path}"
        self.env = {
            **os.environ,
            **base_env,
            "HERALD_QUEUE_PREFIX": f"e2e-{uuid.uuid4().hex[:8]}",
            "HERALD_DATABASE_URL": self.database_url,
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "COLUMNS": "200",  # usage errors are boxed by rich; keep their sentences on one line
        }
        api_port = free_port()
        self.env["HERALD_API_PORT"] = str(api_port)
        self.env["HERALD_PUBLIC_URL"] = f"http://127.0.0.1:{api_port}"
        self.processes: list[subprocess.Popen[bytes]] = []
        self._logs: dict[int, str] = {}

    def herald(
        self, *args: str, stdin: str | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run a ``herald`` command to completion."""
        return subprocess.run(
            [str(BIN / "herald"), *args],
            env=self.env,
            cwd=self.workdir,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start(self, *argv: str, log: str) -> subprocess.Popen[bytes]:
        """Start a long-running process in its own process group."""
        handle = (self.workdir / log).open("wb")
        process = subprocess.Popen(
            list(argv),
            env=self.env,
            cwd=self.workdir,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes.append(process)
        self._logs[process.pid] = log
        return process

    def stop_all(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                stacks = group_stacks(process.pid)
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
                # A process that outlives SIGTERM would be killed by its supervisor too: say which,
                # with the end of its log and where each of its processes stood (the run's warnings
                # summary shows it even when tests pass).
                tail = self.log(self._logs[process.pid])[-1500:] if process.pid in self._logs else ""
                warnings.warn(
                    f"{' '.join(map(str, process.args))} did not stop within 30 s of SIGTERM and was "
                    f"killed; its log ends:\n{tail}\nits stacks:\n{stacks}",
                    stacklevel=1,
                )

    def database_exists(self) -> bool:
        """Whether there is a database to read yet (a PostgreSQL one always exists)."""
        return not self.database_url.startswith("sqlite") or self.db_path.exists()

    def query(self, sql: str) -> list[Any]:
        """Read the deployment's database (as an operator would with sqlite3 or psql)."""
        engine = create_engine(self.database_url)
        try:
            with engine.connect() as conn:
                return list(conn.execute(text(sql)))
        finally:
            engine.dispose()

    def log(self, name: str) -> str:
        return (self.workdir / name).read_text(errors="replace")


@pytest.fixture
def deployment(herald_env: dict[str, str], tmp_path: Path) -> Iterator[Deployment]:
    deployment = Deployment(herald_env, tmp_path)
    yield deployment
    deployment.stop_all()


@pytest.fixture
def deployment_on_each_store(
    herald_env: dict[str, str], tmp_path: Path, database_url: str
) -> Iterator[Deployment]:
    """A deployment on SQLite, then one on PostgreSQL (ids ``[sqlite]``, ``[postgresql]``)."""
    deployment = Deployment(herald_env, tmp_path, database_url)
    yield deployment
    deployment.stop_all()  # before database_url's teardown drops the PostgreSQL schema


def start_sandbox(deployment: Deployment) -> str:
    """``herald sandbox twilio`` on a free port; returns its base URL once it answers."""
    port = free_port()
    deployment.start(str(BIN / "herald"), "sandbox", "twilio", "--port", str(port), log="sandbox.log")
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", port)) == 0

    wait_for(answers, timeout=30, what=f"the twilio sandbox on port {port}")
    deployment.env["HERALD_TWILIO_BASE_URL"] = url
    # The Procfile's email line needs an SMTP server too: every deployment that runs it gets one.
    start_smtp_sandbox(deployment)
    return url


def start_smtp_sandbox(deployment: Deployment) -> int:
    """``herald sandbox smtp`` on a free port, with ``HERALD_SMTP_*`` pointing at it; returns the port."""
    port = free_port()
    deployment.start(str(BIN / "herald"), "sandbox", "smtp", "--port", str(port), log="smtp-sandbox.log")

    def answers() -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", port)) == 0

    wait_for(answers, timeout=30, what=f"the smtp sandbox on port {port}")
    deployment.env.update(
        {
            "HERALD_SMTP_HOST": "127.0.0.1",
            "HERALD_SMTP_PORT": str(port),
            "HERALD_SMTP_FROM": "Acme Billing <billing@acme.example>",
        }
    )
    return port


def write_jsonl(path: Path, items: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(item) + "\n" for item in items))
    return path


__all__ = ["REPO", "Deployment", "free_port", "start_sandbox", "start_smtp_sandbox", "write_jsonl"]
