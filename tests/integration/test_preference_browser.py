"""The preference page in a real browser: headless Chromium (Debian's ``chromium`` and
``chromium-driver`` packages, driven by Selenium; nothing is downloaded) opens the link from an
email captured at the SMTP sandbox, switches a category and SMS for one of two accounts off, saves,
and both the page and the store show the change. Screenshots are kept in ``tests/artefacts/``
(``HERALD_TEST_ARTEFACTS`` to put them elsewhere)."""

from __future__ import annotations

import os
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from pydantic import SecretStr
from sqlalchemy import select

from infra.bootstrap import Services
from infra.store.consent import consent_trail
from infra.store.tables import contact_emails, customer_contacts
from producers.api.app import create_app
from tests.conftest import wait_for
from tests.factories import customer, invoice_created
from tests.integration.conftest import import_customers, publish
from tooling.local.ports import free_port

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ARTEFACTS = Path(os.environ.get("HERALD_TEST_ARTEFACTS", Path(__file__).parents[1] / "artefacts")) / "browser"


PORT = free_port()
PUBLIC = f"http://127.0.0.1:{PORT}"


@pytest.fixture
def pipeline_fields() -> dict[str, Any]:
    return {"public_url": PUBLIC, "link_secret": SecretStr("browser-secret")}


@pytest.fixture
def served(pipeline: Services) -> Iterator[str]:
    """The api app on the pipeline's services, at ``PUBLIC``."""
    app = create_app(pipeline.settings, pipeline)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=PORT, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, timeout=10, what="the HTTP app")
    yield PUBLIC
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def browser() -> Iterator[Any]:
    """Headless Chromium through Debian's chromedriver."""
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        pytest.fail("Debian's chromium and chromium-driver are needed: `make system` installs them")
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not try to download a driver
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=900,1400"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def _aino(customer_id: str, name: str) -> dict[str, Any]:
    record = customer(
        customer_id,
        contacts=[
            {
                "contact_id": "P1",
                "primary": True,
                "name": "Aino",
                "mobile": "+358 40 1234567",
                "locale": "en",
                "emails": [{"address": "aino@example.fi"}],
            }
        ],
    )
    return {**record, "name": name}


def test_a_contact_switches_a_category_and_one_accounts_sms_off_in_a_real_browser(
    pipeline: Services, smtp_sandbox: Any, served: str, browser: Any
) -> None:
    from selenium.webdriver.common.by import By

    import_customers(pipeline, _aino("C1", "Home"), _aino("C2", "Summer cottage"))
    publish(pipeline.settings, invoice_created("evt_1", id="INV-1", customer_id="C1"))
    message = wait_for(lambda: smtp_sandbox.messages and smtp_sandbox.messages[0], what="the invoice email")
    text = message.get_body(("plain",)).get_content()
    (link,) = re.findall(rf"{re.escape(served)}/preferences/\S+", text)

    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    browser.get(link)
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
    assert browser.find_element(By.TAG_NAME, "h1").text == "Your notification preferences"
    browser.save_screenshot(str(ARTEFACTS / "1-opened.png"))

    category = browser.find_element(By.NAME, "new_invoice|aino@example.fi")
    cottage = browser.find_element(By.NAME, "sms|C2")
    home = browser.find_element(By.NAME, "sms|C1")
    assert category.is_selected()
    assert cottage.is_selected()
    assert home.is_selected()
    # Clicked by their labels, as a person would: every box has one.
    browser.find_element(By.CSS_SELECTOR, f"label[for='{category.get_attribute('id')}']").click()
    browser.find_element(By.CSS_SELECTOR, f"label[for='{cottage.get_attribute('id')}']").click()
    browser.save_screenshot(str(ARTEFACTS / "2-switched.png"))
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()

    saved = wait_for(lambda: browser.find_elements(By.ID, "saved"), timeout=15, what="the saved page")
    said = saved[0].text
    browser.save_screenshot(str(ARTEFACTS / "3-saved.png"))
    assert "aino@example.fi: New invoices: on → off" in said
    assert "Text messages about account Summer cottage: on → off" in said
    assert not browser.find_element(By.NAME, "new_invoice|aino@example.fi").is_selected()
    assert not browser.find_element(By.NAME, "sms|C2").is_selected()
    assert browser.find_element(By.NAME, "sms|C1").is_selected()
    assert browser.find_element(By.NAME, "payment_confirmation|aino@example.fi").is_selected()

    with pipeline.reading() as conn:
        categories = conn.execute(
            select(contact_emails.c.categories).where(contact_emails.c.address == "aino@example.fi")
        ).scalar_one()
        sms = dict(
            conn.execute(
                select(customer_contacts.c.customer_id, customer_contacts.c.sms_enabled).where(
                    customer_contacts.c.contact_id == "P1"
                )
            ).all()
        )
        trail = consent_trail(conn, "acme", "P1")
    assert categories["new_invoice"] is False
    assert categories["payment_confirmation"] is True
    assert sms == {"C1": None, "C2": False}
    assert {(r["toggle"], r["source"]) for r in trail} == {
        ("aino@example.fi new_invoice", "preference_page"),
        ("customer C2 sms", "preference_page"),
    }
    assert all(
        (ARTEFACTS / name).stat().st_size > 0 for name in ("1-opened.png", "2-switched.png", "3-saved.png")
    )
