"""Signed preference links: valid, tampered, expired, rotated key, wrong organisation."""

from __future__ import annotations

import base64
import json

import pytest
from pydantic import SecretStr

from infra.link_tokens import LinkError, LinkSigner
from infra.settings import Settings

NOW = 1_800_000_000.0


def signer(**kw: object) -> LinkSigner:
    return LinkSigner("k1", b"s3cret", ttl_days=90, **kw)  # type: ignore[arg-type]


def test_a_valid_token_names_organisation_contact_and_address() -> None:
    token = signer().sign("acme", "C1", "ann@example.com", now=NOW)
    claims = signer().verify(token, org_id="acme", now=NOW + 60)
    assert (claims.org_id, claims.contact_id) == ("acme", "C1")
    assert signer().address_of(claims, ["bob@example.com", "Ann@Example.com"]) == "Ann@Example.com"
    assert signer().address_of(claims, ["bob@example.com"]) is None
    assert claims.key_id == "k1"
    assert claims.expires_at == int(NOW) + 90 * 86400
    assert len(claims.token_id) >= 12


def test_the_token_is_not_a_bare_database_id() -> None:
    token = signer().sign("acme", "C1", "ann@example.com", now=NOW)
    assert token.count(".") == 2
    assert "C1" not in token.split(".")[0]
    payload = token.split(".")[1]
    decoded = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode()
    assert "ann" not in decoded  # the address is named by a keyed digest, never in clear
    assert signer().sign("acme", "C1", "ann@example.com", now=NOW) != token  # a fresh token id each time


def _swap_payload(token: str, **changes: object) -> str:
    kid, payload, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{kid}.{forged}.{sig}"


@pytest.mark.parametrize(
    "changes", [{"c": "C2"}, {"o": "other"}, {"a": "eve@example.com"}, {"x": int(NOW) + 10**9}]
)
def test_a_tampered_token_is_refused(changes: dict[str, object]) -> None:
    token = _swap_payload(signer().sign("acme", "C1", "ann@example.com", now=NOW), **changes)
    with pytest.raises(LinkError) as caught:
        signer().verify(token, now=NOW)
    assert caught.value.problem == "bad_signature"


def test_a_changed_signature_is_refused() -> None:
    token = signer().sign("acme", "C1", "ann@example.com", now=NOW)
    kid, payload, sig = token.split(".")
    flipped = ("A" if sig[0] != "A" else "B") + sig[1:]
    with pytest.raises(LinkError, match="changed"):
        signer().verify(f"{kid}.{payload}.{flipped}", now=NOW)


def test_a_token_signed_with_another_secret_is_refused() -> None:
    token = LinkSigner("k1", b"not-ours").sign("acme", "C1", "a@example.com", now=NOW)
    with pytest.raises(LinkError) as caught:
        signer().verify(token, now=NOW)
    assert caught.value.problem == "bad_signature"


def test_an_expired_token_is_refused() -> None:
    token = signer().sign("acme", "C1", "ann@example.com", now=NOW)
    signer().verify(token, now=NOW + 90 * 86400 - 1)
    with pytest.raises(LinkError) as caught:
        signer().verify(token, now=NOW + 90 * 86400 + 1)
    assert caught.value.problem == "expired"


def test_the_expiry_follows_the_setting() -> None:
    short = LinkSigner("k1", b"s3cret", ttl_days=1)
    token = short.sign("acme", "C1", "a@example.com", now=NOW)
    with pytest.raises(LinkError, match="expired"):
        short.verify(token, now=NOW + 86400 + 1)


def test_a_rotated_key_still_opens_old_links_and_signs_new_ones() -> None:
    old_token = signer().sign("acme", "C1", "ann@example.com", now=NOW)
    rotated = LinkSigner("k2", b"new-secret", previous={"k1": b"s3cret"})
    assert rotated.verify(old_token, now=NOW).key_id == "k1"
    new_token = rotated.sign("acme", "C1", "ann@example.com", now=NOW)
    assert new_token.startswith("k2.")
    assert rotated.verify(new_token, now=NOW).key_id == "k2"
    with pytest.raises(LinkError) as caught:  # once the old key is retired, its links stop opening
        LinkSigner("k2", b"new-secret").verify(old_token, now=NOW)
    assert caught.value.problem == "unknown_key"


def test_a_key_id_cannot_be_swapped_to_another_key() -> None:
    token = signer().sign("acme", "C1", "ann@example.com", now=NOW)
    both = LinkSigner("k2", b"new-secret", previous={"k1": b"s3cret"})
    with pytest.raises(LinkError):
        both.verify("k2." + token.split(".", 1)[1], now=NOW)


def test_another_organisations_token_is_refused() -> None:
    token = signer().sign("acme", "C1", "ann@example.com", now=NOW)
    with pytest.raises(LinkError) as caught:
        signer().verify(token, org_id="globex", now=NOW)
    assert caught.value.problem == "wrong_organisation"


@pytest.mark.parametrize(
    "token",
    ["", "abc", "k1..", "k1.x.y", "a.b.c.d", "k1." + "A" * 5000 + ".x", "k1.\x00.\xff", "ü.ü.ü"],
)
def test_garbage_is_refused_as_not_a_link(token: str) -> None:
    with pytest.raises(LinkError):
        signer().verify(token, now=NOW)


def test_signer_from_settings_reads_rotation_and_ttl() -> None:
    settings = Settings(
        link_secret=SecretStr("new"),
        link_key_id="k2",
        link_previous_secrets=SecretStr("k1=old, broken ,=x"),
        link_ttl_days=7,
    )
    made = LinkSigner.from_settings(settings)
    assert made is not None
    assert made.ttl_seconds == 7 * 86400
    old = LinkSigner("k1", b"old").sign("acme", "C1", "a@example.com", now=NOW)
    assert made.verify(old, now=NOW).contact_id == "C1"
    assert LinkSigner.from_settings(Settings()) is None


def test_a_link_token_is_masked_in_log_text() -> None:
    from infra.masking import mask_text

    token = signer().sign("acme", "C1", "ann@example.com", now=NOW)
    line = f'"POST /preferences/acme/{token}/unsubscribe?kind=invoice HTTP/1.1" 200'
    masked = mask_text(line)
    assert token not in masked
    assert masked == '"POST /preferences/acme/***/unsubscribe?kind=invoice HTTP/1.1" 200'
