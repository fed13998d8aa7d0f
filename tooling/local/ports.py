"""Free loopback ports for local servers (brokers, databases, sandboxes, the api in tests).

A port the kernel hands out for ``bind(0)`` lies in the ephemeral range, which every outgoing
connection on the machine draws from too. A server that stops and starts again on such a port
(a broker node in a fault test) can find a client socket sitting on it and die of ``eaddrinuse``.
So the ports here are drawn from below the ephemeral range, which outgoing connections never use.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

#: Where the search starts: above the well-known and common registered service ports.
LOWEST = 10000
_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def ephemeral_range() -> tuple[int, int]:
    """The kernel's range for outgoing connections (Linux's default when it cannot be read)."""
    try:
        low, high = (int(part) for part in _RANGE_FILE.read_text().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999


def _is_free(port: int, host: str) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1", *, also_free: int | None = None) -> int:
    """A port free on ``host`` outside the ephemeral range, safe to stop and restart a server on.

    ``also_free``: an offset whose port must be free too (a RabbitMQ node's distribution port).
    """
    low, high = ephemeral_range()
    candidates = range(LOWEST, low) if low - LOWEST >= 1000 else range(high + 1, 65536)
    for _ in range(200):
        port = random.choice(candidates)
        if also_free is not None and not (0 < port + also_free <= 65535):
            continue
        if _is_free(port, host) and (also_free is None or _is_free(port + also_free, host)):
            return port
    raise OSError(f"no free port on {host} outside the ephemeral range {low}-{high}")


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct ports, each as :func:`free_port` gives them."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port(host)
        if port not in ports:
            ports.append(port)
    return ports
