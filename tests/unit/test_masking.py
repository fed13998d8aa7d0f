"""Personal data and secrets never show in logs."""

from __future__ import annotations

import json
import logging

from infra.logs import JsonFormatter
from infra.masking import mask_email, mask_phone, mask_text, redact_url


def test_a_phone_number_keeps_country_code_and_last_two_digits() -> None:
    assert mask_phone("+358401234567") == "+358*******67"


def test_an_email_keeps_its_first_letter_and_domain() -> None:
    assert mask_email("aino@example.fi") == "a***@example.fi"


def test_free_text_is_masked_wherever_numbers_and_addresses_appear() -> None:
    text = mask_text("sent to +358401234567 and aino@example.fi")
    assert "+358401234567" not in text
    assert "aino@" not in text


def test_a_url_loses_its_password() -> None:
    assert redact_url("amqp://guest:s3cret@127.0.0.1:5672/%2F") == "amqp://guest:***@127.0.0.1:5672/%2F"


def test_json_log_lines_mask_the_message_and_extra_fields() -> None:
    record = logging.LogRecord("herald", logging.INFO, __file__, 1, "to %s", ("+358401234567",), None)
    record.recipient = "aino@example.fi"
    entry = json.loads(JsonFormatter().format(record))
    assert entry["msg"] == "to +358*******67"
    assert entry["recipient"] == "a***@example.fi"


def test_ids_with_long_digit_runs_are_not_taken_for_phone_numbers() -> None:
    from infra.masking import mask_text

    line = "sent ntf_13cf632c8af65309a8175fe2a21b5b67 as SM96e5cbec337d4281bcf0a90e1234593b to +358401234567"
    assert mask_text(line) == (
        "sent ntf_13cf632c8af65309a8175fe2a21b5b67 as SM96e5cbec337d4281bcf0a90e1234593b to +358*******67"
    )
