"""A RabbitMQ for development, demos and tests, without Docker or a system service.

``ensure_broker(url, data_dir)`` returns at once when ``url`` answers. Otherwise,
for a local url, it starts a node as the current user: listening on 127.0.0.1
only, data, logs and Erlang cookie under ``data_dir``, no plugins. Where
``rabbitmq-server`` is missing and we are root it installs Debian's package.

    python -m tooling.local.rabbitmq up|down|status [--url URL] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pika

from infra.masking import redact_url
from tooling.local.debian import apt_install

DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
_LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
# The server script itself; /usr/sbin/rabbitmq-server is a wrapper that switches to the rabbitmq user.
_SERVER_CANDIDATES = ("/usr/lib/rabbitmq/bin/rabbitmq-server", "/usr/sbin/rabbitmq-server")


class BrokerStartError(RuntimeError):
    """No broker answers and none could be started; the message says why."""


def broker_answers(url: str, timeout: float = 2.0) -> bool:
    """Whether an AMQP connection with these credentials opens. Never raises for network errors."""
    params = pika.URLParameters(url)
    params.socket_timeout = timeout
    params.stack_timeout = timeout
    params.blocked_connection_timeout = timeout
    params.connection_attempts = 1
    try:
        pika.BlockingConnection(params).close()
    except (pika.exceptions.AMQPError, OSError):
        return False
    return True


def _server_binary() -> str | None:
    for candidate in _SERVER_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("rabbitmq-server")


def _install() -> str:
    apt_install(
        "rabbitmq-server",
        not_root=BrokerStartError(
            "rabbitmq-server is not installed: install it (apt-get install rabbitmq-server) "
            "or set HERALD_AMQP_URL to a broker that answers"
        ),
    )
    binary = _server_binary()
    if binary is None:
        raise BrokerStartError("installed rabbitmq-server but cannot find its server script")
    return binary


def node_name(port: int) -> str:
    """The Erlang node name of the local node listening on AMQP ``port``."""
    return f"herald-{port}@localhost"


def _node_env(
    data_dir: Path, port: int, dist_port: int | None = None, extra_conf: str = ""
) -> dict[str, str]:
    (data_dir / "rabbitmq.conf").write_text(
        f"listeners.tcp.default = 127.0.0.1:{port}\nloopback_users.guest = true\n{extra_conf}"
    )
    (data_dir / "enabled_plugins").write_text("[].\n")
    (data_dir / "rabbitmq-env.conf").touch()
    return {
        **os.environ,
        "HOME": str(data_dir),  # the Erlang cookie lives here
        "RABBITMQ_NODENAME": node_name(port),
        "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
        "RABBITMQ_NODE_PORT": str(port),
        "RABBITMQ_DIST_PORT": str(dist_port or port + 20000),
        "RABBITMQ_MNESIA_BASE": str(data_dir / "mnesia"),
        "RABBITMQ_LOG_BASE": str(data_dir / "log"),
        "RABBITMQ_PID_FILE": str(data_dir / "rabbitmq.pid"),
        "RABBITMQ_CONFIG_FILE": str(data_dir / "rabbitmq.conf"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(data_dir / "enabled_plugins"),
        "RABBITMQ_CONF_ENV_FILE": str(data_dir / "rabbitmq-env.conf"),
        "ERL_EPMD_ADDRESS": "127.0.0.1",
        # Without this the Erlang distribution port listens on every interface.
        # No scheduler busy-waiting: idle nodes (a cluster's three) then leave a shared CPU alone.
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1} "
        "+sbwt none +sbwtdcpu none +sbwtdio none",
    }


def _log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def ensure_broker(
    url: str,
    data_dir: Path,
    *,
    timeout: float = 90.0,
    dist_port: int | None = None,
    extra_conf: str = "",
) -> str:
    """Return ``url`` once a broker answers there, starting a local node if needed.

    The node is named after its AMQP port (``herald-PORT@localhost``); its Erlang distribution port
    (loopback only) is ``dist_port``, by default the AMQP port + 20000. Started again with the same
    ``data_dir`` after ``stop_broker``, it is the same node: durable queues and persistent messages
    are still there.
    """
    if broker_answers(url):
        return url
    parts = urlsplit(url)
    if parts.hostname not in _LOCAL_HOSTS:
        raise BrokerStartError(f"the broker at {redact_url(url)} does not answer")
    port = parts.port or 5672
    data_dir = Path(data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    with (data_dir / "start.lock").open("w") as lock:
        # Two callers at once (parallel test runs) must not start two nodes.
        fcntl.flock(lock, fcntl.LOCK_EX)
        if broker_answers(url):
            return url
        binary = _server_binary() or _install()
        if broker_answers(url):  # the package's own service may have started one
            return url
        log_path = data_dir / "node.log"
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [binary],
                env=_node_env(data_dir, port, dist_port, extra_conf),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        (data_dir / "launcher.pid").write_text(str(process.pid))
        deadline = time.monotonic() + timeout
        while not broker_answers(url, timeout=1.0):
            if process.poll() is not None:
                raise BrokerStartError(
                    f"rabbitmq-server exited with {process.returncode}; "
                    f"last lines of {log_path}:\n{_log_tail(log_path)}"
                )
            if time.monotonic() > deadline:
                raise BrokerStartError(
                    f"rabbitmq-server did not answer within {timeout:g}s; last lines of {log_path}:\n"
                    f"{_log_tail(log_path)}"
                )
            time.sleep(0.5)
    return url


def stop_broker(data_dir: Path, timeout: float = 30.0, *, sig: signal.Signals = signal.SIGTERM) -> bool:
    """Stop a node this module started under ``data_dir``; True if one was running. ``SIGKILL``
    for ``sig`` kills it as a crash would (no goodbye to its clients or its cluster)."""
    pid_file = Path(data_dir) / "launcher.pid"
    try:
        pid = int(pid_file.read_text())
    except (OSError, ValueError):
        return False
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pid_file.unlink(missing_ok=True)
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            break
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.2)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)
    return True


def main(argv: list[str] | None = None) -> int:
    """``up`` | ``down`` | ``status`` for a local node."""
    parser = argparse.ArgumentParser(prog="python -m tooling.local.rabbitmq", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument("--url", default=os.environ.get("HERALD_AMQP_URL", DEFAULT_URL))
    parser.add_argument("--data-dir", type=Path, default=Path(".herald/rabbitmq"))
    args = parser.parse_args(argv)
    if args.command == "up":
        try:
            ensure_broker(args.url, args.data_dir)
        except BrokerStartError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"RabbitMQ answers at {redact_url(args.url)}")
        return 0
    if args.command == "down":
        print("stopped" if stop_broker(args.data_dir) else "no local node was running")
        return 0
    answers = broker_answers(args.url)
    print(f"RabbitMQ {'answers' if answers else 'does not answer'} at {redact_url(args.url)}")
    return 0 if answers else 1


if __name__ == "__main__":
    raise SystemExit(main())
