"""A throwaway PostgreSQL for tests and development, without Docker or a system service.

``LocalPostgres`` runs ``initdb`` for a new cluster in a temporary directory, starts it on
127.0.0.1 only (its Unix socket inside that directory too, a free port), creates a database and
hands back a ``postgresql+psycopg://`` URL; ``stop()`` shuts the server down and removes the
directory. It uses Debian's server binaries (``/usr/lib/postgresql/<newest>/bin``); where they are
missing and we are root it installs Debian's ``postgresql`` package. PostgreSQL refuses to run as
root, so as root the cluster belongs to the ``postgres`` system user the package creates.

Durability is switched off (``fsync``, ``synchronous_commit``, ``full_page_writes``): the data is
thrown away at the end, and tests want speed. Autovacuum looks every second rather than every
minute, so plans are made on statistics as fresh as a long-running server's.

    python -m tooling.local.postgres      # start one, print its URL, remove it on Ctrl-C
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

from infra.masking import redact_url
from tooling.local.debian import apt_install
from tooling.local.ports import free_port

_DEBIAN_ROOT = Path("/usr/lib/postgresql")
_SERVICE_USER = "postgres"
_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",  # parallel workers, dramatiq threads and the e2e processes
    "shared_buffers": "'32MB'",
    "logging_collector": "off",
    # Statistics as fresh as a long-running server's: a cluster minutes old otherwise keeps the
    # plans it made on empty tables. A notification's foreign-key check on ``events``, planned
    # while ``events`` was empty, scanned the whole table until autovacuum's first ANALYZE a
    # minute later: 1 ms of server CPU a notification in a benchmark, 0.2 ms once analysed.
    "autovacuum_naptime": "1",
}


class PostgresStartError(RuntimeError):
    """No local PostgreSQL could be started; the message says why."""


def server_bin_dir() -> Path | None:
    """The newest Debian PostgreSQL ``bin`` directory with ``initdb`` and ``postgres``, if any."""
    candidates = []
    for path in _DEBIAN_ROOT.glob("*/bin"):
        if (path / "initdb").is_file() and (path / "postgres").is_file():
            with contextlib.suppress(ValueError):
                candidates.append((int(path.parent.name), path))
    if candidates:
        return max(candidates)[1]
    # Elsewhere (not Debian) the binaries may simply be on PATH.
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _install() -> Path:
    apt_install(
        "postgresql",
        not_root=PostgresStartError(
            "PostgreSQL server binaries are not installed: install them (apt-get install postgresql) "
            "or set HERALD_TEST_DATABASE_URL to a PostgreSQL that answers"
        ),
    )
    bin_dir = server_bin_dir()
    if bin_dir is None:
        raise PostgresStartError("installed postgresql but cannot find initdb under /usr/lib/postgresql")
    return bin_dir


class LocalPostgres:
    """One throwaway cluster: ``start()`` returns its URL, ``stop()`` removes every trace.

    Also a context manager (``with LocalPostgres() as url: …``).
    """

    def __init__(self, database: str = "herald", user: str = "herald") -> None:
        self.database = database
        self.user = user
        self.url: str | None = None
        self._dir: Path | None = None
        self._bin: Path | None = None

    def _as_owner(self, argv: list[str]) -> list[str]:
        """``argv`` run as the cluster's owner: the ``postgres`` user when we are root."""
        if os.geteuid() != 0:
            return argv
        setpriv = shutil.which("setpriv")
        if setpriv:  # execs in place, so signals and exit codes are the server's own
            return [setpriv, f"--reuid={_SERVICE_USER}", f"--regid={_SERVICE_USER}", "--init-groups", *argv]
        return ["runuser", "-u", _SERVICE_USER, "--", *argv]

    def _run(self, argv: list[str], what: str) -> None:
        assert self._dir is not None
        env = {**os.environ, "LC_ALL": "C.UTF-8", "HOME": str(self._dir), "PGTZ": "UTC"}
        result = subprocess.run(
            self._as_owner(argv), cwd=self._dir, env=env, capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise PostgresStartError(f"{what} failed ({result.returncode}):\n{result.stdout}{result.stderr}")

    def start(self, timeout: float = 60.0) -> str:
        """Create, start and return the URL of a new cluster with one database."""
        self._bin = server_bin_dir() or _install()
        # Under /tmp, not the repository: the postgres user must be able to reach the directory.
        self._dir = Path(tempfile.mkdtemp(prefix="herald-pg-"))
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam(_SERVICE_USER)
            except KeyError:
                raise PostgresStartError(
                    f"running as root needs the {_SERVICE_USER!r} system user (Debian's postgresql "
                    "package creates it): PostgreSQL refuses to run as root"
                ) from None
            os.chown(self._dir, owner.pw_uid, owner.pw_gid)
        try:
            return self._start(timeout)
        except BaseException:
            self.stop()
            raise

    def _start(self, timeout: float) -> str:
        assert self._dir is not None
        assert self._bin is not None
        data, pwfile = self._dir / "data", self._dir / "pwfile"
        password = secrets.token_urlsafe(18)
        pwfile.write_text(password + "\n")
        if os.geteuid() == 0:
            owner = pwd.getpwnam(_SERVICE_USER)
            os.chown(pwfile, owner.pw_uid, owner.pw_gid)
        pwfile.chmod(0o600)
        self._run(
            [
                str(self._bin / "initdb"),
                "-D",
                str(data),
                "-U",
                self.user,
                f"--pwfile={pwfile}",
                "--auth=scram-sha-256",  # other users of this machine must not get in on loopback
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ],
            "initdb",
        )
        pwfile.unlink()
        port = free_port()
        settings = {**_SETTINGS, "port": str(port), "unix_socket_directories": f"'{self._dir}'"}
        with (data / "postgresql.conf").open("a") as conf:
            conf.write("\n# herald throwaway cluster\n")
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())
        log = self._dir / "server.log"
        self._run(
            [
                str(self._bin / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(log),
                "-w",
                "-t",
                str(int(timeout)),
                "start",
            ],
            "pg_ctl start",
        )
        admin = f"postgresql://{self.user}:{password}@127.0.0.1:{port}/postgres"
        import psycopg  # only here: importing this module must not need the driver

        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f'CREATE DATABASE "{self.database}"')
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)  # pg_ctl said ready; the listener may lag a moment
        self.url = f"postgresql+psycopg://{self.user}:{password}@127.0.0.1:{port}/{self.database}"
        return self.url

    def stop(self) -> None:
        """Stop the server (fast shutdown) and remove its directory; safe to call twice."""
        if self._dir is None:
            return
        data = self._dir / "data"
        if self._bin is not None and (data / "postmaster.pid").exists():
            try:
                self._run(
                    [str(self._bin / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "-t", "30", "stop"],
                    "pg_ctl stop",
                )
            except PostgresStartError:
                self._kill(data)
        shutil.rmtree(self._dir, ignore_errors=True)
        self._dir = None
        self.url = None

    def halt(self, timeout: float = 30.0) -> None:
        """Stop the server (``pg_ctl stop -m fast``) but keep the cluster: ``resume`` starts it again."""
        assert self._dir is not None, "not started"
        assert self._bin is not None
        data = self._dir / "data"
        self._run(
            [str(self._bin / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "-t", str(int(timeout)), "stop"],
            "pg_ctl stop",
        )

    def resume(self, timeout: float = 60.0) -> None:
        """Start a ``halt``-ed cluster again, on the same port with the same data."""
        assert self._dir is not None, "not started"
        assert self._bin is not None
        data, log = self._dir / "data", self._dir / "server.log"
        wait = ["-w", "-t", str(int(timeout))]
        self._run(
            [str(self._bin / "pg_ctl"), "-D", str(data), "-l", str(log), *wait, "start"], "pg_ctl start"
        )

    @staticmethod
    def _kill(data: Path) -> None:
        # pg_ctl could not stop it: the first line of postmaster.pid is the server's pid.
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int((data / "postmaster.pid").read_text().splitlines()[0])
            os.kill(pid, signal.SIGQUIT)

    def __enter__(self) -> str:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    """Start a cluster, print its URL, and remove it when interrupted."""
    del argv
    cluster = LocalPostgres()
    try:
        url = cluster.start()
    except PostgresStartError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        # The URL (with its password) goes to stdout for the developer to use; logs get the redacted one.
        print(url, flush=True)
        print(f"PostgreSQL answers at {redact_url(url)}; Ctrl-C stops and removes it", file=sys.stderr)
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    raise SystemExit(main())
