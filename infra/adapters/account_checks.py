"""Checking a provider's credentials before connecting it: one cheap authenticated read each,
through the official clients, answering who the provider says we are."""

from __future__ import annotations

from infra.adapters.gocardless_account import GoCardlessAccount, GoCardlessRefused, GoCardlessUnavailable
from infra.adapters.gocardless_client import build_gocardless_client
from infra.errors import ConfigurationError, HeraldError
from infra.settings import Settings


class CheckFailed(HeraldError):
    """The provider refused the credentials (or could not be asked); the message is the provider's."""


def check_gocardless(settings: Settings) -> str:
    """The creditor id ``HERALD_GOCARDLESS_ACCESS_TOKEN`` acts for, asked at GoCardless."""
    try:
        return GoCardlessAccount(build_gocardless_client(settings, timeout=15)).creditor_id()
    except (GoCardlessRefused, GoCardlessUnavailable) as exc:
        raise CheckFailed(f"GoCardless refused the access token: {exc}") from exc


def check_twilio(settings: Settings) -> str:
    """The account SID, once Twilio has accepted SID + token and says it owns ``HERALD_TWILIO_FROM``."""
    from twilio.base.exceptions import TwilioException, TwilioRestException
    from twilio.rest import Client

    if not (settings.twilio_account_sid and settings.twilio_auth_token and settings.twilio_from):
        raise ConfigurationError(
            "missing setting(s): HERALD_TWILIO_ACCOUNT_SID, HERALD_TWILIO_AUTH_TOKEN and HERALD_TWILIO_FROM"
        )
    client = Client(settings.twilio_account_sid, settings.twilio_auth_token.get_secret_value())
    client.api.base_url = settings.twilio_base_url  # the sandbox in tests, Twilio otherwise
    try:
        account = client.api.v2010.accounts(settings.twilio_account_sid).fetch()
        if account.status not in (None, "active"):
            raise CheckFailed(f"the Twilio account is {account.status}")
        owned = client.api.v2010.account.incoming_phone_numbers.list(
            phone_number=settings.twilio_from, limit=1
        )
    except TwilioRestException as exc:
        raise CheckFailed(f"Twilio refused: {exc.msg} (HTTP {exc.status}, code {exc.code})") from exc
    except (TwilioException, OSError) as exc:
        raise CheckFailed(f"Twilio did not answer: {type(exc).__name__}") from exc
    if not owned and not settings.twilio_from.isalnum():
        raise CheckFailed(f"the Twilio account does not own HERALD_TWILIO_FROM {settings.twilio_from}")
    return str(account.sid)


def check_vonage(settings: Settings) -> str:
    """The API key, once Vonage has accepted key + secret (the account's balance, read through the
    official SDK at ``HERALD_VONAGE_REST_URL``)."""
    from requests.exceptions import RequestException
    from vonage_http_client.errors import AuthenticationError, HttpRequestError
    from vonage_utils.errors import VonageError

    from infra.bootstrap import build_vonage

    if not (settings.vonage_api_key and settings.vonage_api_secret and settings.vonage_from):
        raise ConfigurationError(
            "missing setting(s): HERALD_VONAGE_API_KEY, HERALD_VONAGE_API_SECRET and HERALD_VONAGE_FROM"
        )
    adapter = build_vonage(settings)
    try:
        balance = adapter.client().account.get_balance()
    except AuthenticationError as exc:
        raise CheckFailed("Vonage refused the API key and secret (HTTP 401)") from exc
    except HttpRequestError as exc:
        raise CheckFailed(f"Vonage refused: HTTP {exc.response.status_code}") from exc
    except (RequestException, VonageError, ValueError) as exc:
        raise CheckFailed(f"Vonage did not answer: {type(exc).__name__}") from exc
    finally:
        adapter.close()
    return f"{settings.vonage_api_key}, balance {balance.value:.2f}"
