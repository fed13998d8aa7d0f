"""Installing a Debian package for the local launchers (RabbitMQ, PostgreSQL), as root only."""

from __future__ import annotations

import os
import subprocess


def apt_install(package: str, *, not_root: Exception) -> None:
    """Install Debian's ``package`` with apt-get, updating the package lists first when apt knows no
    candidate for it (a fresh machine has none). Raises ``not_root`` unless we are root: the caller's
    own error, saying how else to get what it wanted."""
    if os.geteuid() != 0:
        raise not_root
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    policy = subprocess.run(["apt-cache", "policy", package], capture_output=True, text=True, check=False)
    if "Candidate: (none)" in policy.stdout or "Candidate" not in policy.stdout:
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=True)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", package], env=env, check=True, stdout=subprocess.DEVNULL
    )
