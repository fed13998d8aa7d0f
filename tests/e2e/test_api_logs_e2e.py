"""``herald api`` as the Procfile runs it: every line it writes, uvicorn's own included, is one
JSON object, with phone numbers and addresses masked and API keys never shown."""

from __future__ import annotations

import json
import signal
import urllib.error
import urllib.request
from typing import Any

from tests.conftest import wait_for
from tests.e2e.conftest import BIN, Deployment

#: A well-formed key nobody made.
WRONG_KEY = "hk_" + "Q" * 43


def _get(url: str, headers: dict[str, str] | None = None) -> int | None:
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 - a loopback URL
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except OSError:
        return None


def _lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]  # each line is JSON


def test_every_line_of_the_api_process_is_masked_json_uvicorns_access_lines_included(
    deployment: Deployment,
) -> None:
    base = deployment.env["HERALD_PUBLIC_URL"]
    process = deployment.start(
        str(BIN / "herald"), "api", "--port", deployment.env["HERALD_API_PORT"], log="api.log"
    )
    wait_for(lambda: _get(f"{base}/healthz") == 200, timeout=60, what="the api to answer /healthz")
    assert _get(f"{base}/nope?to=%2B358401234567&email=aino%40example.fi") == 404
    assert _get(f"{base}/contacts/P1", {"Authorization": f"Bearer {WRONG_KEY}"}) == 401
    wait_for(
        lambda: '"path": "/contacts/P1"' in deployment.log("api.log"), timeout=30, what="the access lines"
    )
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)

    raw = deployment.log("api.log")
    assert "401234567" not in raw
    assert "aino" not in raw
    assert WRONG_KEY[3:] not in raw
    lines = _lines(raw)
    access = {line["path"]: line for line in lines if line["logger"] == "uvicorn.access"}
    assert access["/nope?to=%2B358*******67&email=a***%40example.fi"]["status"] == 404
    assert access["/contacts/P1"]["status"] == 401
    assert "/healthz" not in access  # successful probes are not logged
    failed = [line for line in lines if line["logger"] == "herald.api.auth"]
    assert [(f["level"], f["reason"]) for f in failed] == [("warning", "unknown")]
    assert any(line["logger"] == "uvicorn.error" for line in lines)  # startup and shutdown lines
