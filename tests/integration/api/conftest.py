"""The HTTP API's fixtures: two organisations with data, a key of each level, a client."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from infra.bootstrap import Services
from infra.store.api_keys import create_key
from infra.store.directory import upsert_customer
from infra.store.notifications import record_event
from producers.api.app import create_app
from schemas.access import Level
from schemas.directory import CustomerRecord
from schemas.events import event_adapter
from schemas.validation import event_to_json
from tests.factories import customer, invoice_created

#: The API tests' body limit: small, so a test's oversize body stays small too.
MAX_BODY = 4096


@dataclass
class Api:
    """A client of the app on the ``store`` fixture's database, and a key per level (acme) plus
    an admin key of the other organisation."""

    client: TestClient
    keys: dict[str, str]
    other_admin: str

    def call(self, method: str, path: str, key: str | None, **kwargs: Any) -> Any:
        """One request, with ``Authorization: Bearer <key>`` when a key is given."""
        headers = dict(kwargs.pop("headers", {}))
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        return self.client.request(method, path, headers=headers, **kwargs)


def _seed(store: Services, org: str, customer_id: str, contact_id: str, invoice: str) -> None:
    record = {**customer(customer_id), "org_id": org}
    record["contacts"] = [
        {
            "contact_id": contact_id,
            "primary": True,
            "name": "Aino",
            "mobile": "+358401234567",
            "locale": "fi",
            "emails": [{"address": f"{contact_id.lower()}@example.fi"}],
        }
    ]
    raw = {**invoice_created(f"evt_{invoice}", id=invoice, customer_id=customer_id), "org_id": org}
    event = event_adapter.validate_python(raw)
    with store.transaction() as conn:
        upsert_customer(conn, CustomerRecord.model_validate(record), region="FI")
        record_event(conn, event, event_to_json(event), "routed")


@pytest.fixture
def api(store: Services) -> Api:
    """acme (C1, contact P1, invoice INV-1) and other (C9, Q9, INV-9), and the app."""
    _seed(store, "acme", "C1", "P1", "INV-1")
    _seed(store, "other", "C9", "Q9", "INV-9")
    with store.transaction() as conn:
        keys = {level.value: create_key(conn, "acme", level, f"{level} key")[1] for level in Level}
        other_admin = create_key(conn, "other", Level.ADMIN)[1]
    settings = store.settings.model_copy(update={"api_max_body_bytes": MAX_BODY})
    return Api(TestClient(create_app(settings, store)), keys, other_admin)
