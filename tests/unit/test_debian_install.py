"""Installing Debian's package for a local launcher (``tooling.local.debian``): root only, the package
lists updated only when apt knows no candidate. No command is run: ``subprocess.run`` is recorded."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from tooling.local import debian


class _Apt:
    def __init__(self, policy: str) -> None:
        self.policy = policy
        self.calls: list[list[str]] = []

    def __call__(self, argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        self.calls.append(argv)
        return subprocess.CompletedProcess(argv, 0, stdout=self.policy if argv[0] == "apt-cache" else "")


def _apt(monkeypatch: pytest.MonkeyPatch, policy: str, euid: int = 0) -> _Apt:
    apt = _Apt(policy)
    monkeypatch.setattr(debian.subprocess, "run", apt)
    monkeypatch.setattr(debian.os, "geteuid", lambda: euid)
    return apt


def test_anyone_but_root_gets_the_callers_own_error_and_nothing_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    apt = _apt(monkeypatch, "", euid=1000)
    with pytest.raises(LookupError, match="install it yourself"):
        debian.apt_install("postgresql", not_root=LookupError("install it yourself"))
    assert apt.calls == []


def test_a_package_apt_has_a_candidate_for_is_installed_without_updating_the_lists(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    apt = _apt(monkeypatch, "postgresql:\n  Installed: (none)\n  Candidate: 15+248\n")
    debian.apt_install("postgresql", not_root=RuntimeError())
    assert apt.calls == [
        ["apt-cache", "policy", "postgresql"],
        ["apt-get", "install", "-y", "-qq", "postgresql"],
    ]


@pytest.mark.parametrize("policy", ["", "rabbitmq-server:\n  Installed: (none)\n  Candidate: (none)\n"])
def test_on_a_fresh_machine_the_lists_are_updated_first(monkeypatch: pytest.MonkeyPatch, policy: str) -> None:
    apt = _apt(monkeypatch, policy)
    debian.apt_install("rabbitmq-server", not_root=RuntimeError())
    assert apt.calls == [
        ["apt-cache", "policy", "rabbitmq-server"],
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "rabbitmq-server"],
    ]
