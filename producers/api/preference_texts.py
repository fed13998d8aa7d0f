"""The preference page's words in each shipped locale (en, fi, ja); English for any other."""

from __future__ import annotations

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Your notification preferences",
        "intro": "Choose what {org} sends you.",
        "email_legend": "Email to {address}",
        "notify": "Send me email at this address",
        "categories_legend": "Which emails",
        "new_invoice": "New invoices",
        "pending_reminders": "Payment reminders",
        "payment_confirmation": "Payment confirmations",
        "refunds": "Refunds",
        "required": "Required",
        "required_reason": "{org} must send these.",
        "sms_legend": "Text messages (SMS)",
        "sms_account": "Text me about account {account}",
        "sms_blocked": "{org} does not send text messages for this account.",
        "opted_out": "You replied STOP to our text messages. Reply START to get them again.",
        "suppressed": "Email to this address bounced; {org} will not email it until they have checked it.",
        "save": "Save my preferences",
        "saved": "Saved. What changed:",
        "nothing_changed": "Saved. Nothing changed.",
        "on": "on",
        "off": "off",
        "sms_change": "Text messages about account {account}",
        "bad_title": "This link cannot be used",
        "bad_malformed": "This is not a preference link. Please use the link from your latest message.",
        "bad_expired": "This link has expired. Please use the link from your latest message.",
        "bad_other": "This link is not valid. Please use the link from your latest message.",
        "unsubscribed": "You are unsubscribed. You can change this on your preference page.",
    },
    "fi": {
        "title": "Ilmoitusasetuksesi",
        "intro": "Valitse, mitä {org} lähettää sinulle.",
        "email_legend": "Sähköposti osoitteeseen {address}",
        "notify": "Lähetä minulle sähköpostia tähän osoitteeseen",
        "categories_legend": "Mitkä sähköpostit",
        "new_invoice": "Uudet laskut",
        "pending_reminders": "Maksumuistutukset",
        "payment_confirmation": "Maksuvahvistukset",
        "refunds": "Hyvitykset",
        "required": "Pakollinen",
        "required_reason": "{org} on velvollinen lähettämään nämä.",
        "sms_legend": "Tekstiviestit (SMS)",
        "sms_account": "Lähetä tekstiviestejä asiakkuudesta {account}",
        "sms_blocked": "{org} ei lähetä tekstiviestejä tästä asiakkuudesta.",
        "opted_out": "Vastasit tekstiviestiimme STOP. Vastaa START saadaksesi niitä taas.",
        "suppressed": "Sähköposti tähän osoitteeseen palautui; {org} ei lähetä sinne ennen tarkistusta.",
        "save": "Tallenna asetukset",
        "saved": "Tallennettu. Muutokset:",
        "nothing_changed": "Tallennettu. Mikään ei muuttunut.",
        "on": "päällä",
        "off": "pois",
        "sms_change": "Tekstiviestit asiakkuudesta {account}",
        "bad_title": "Linkkiä ei voi käyttää",
        "bad_malformed": "Tämä ei ole asetuslinkki. Käytä uusimman viestin linkkiä.",
        "bad_expired": "Linkki on vanhentunut. Käytä uusimman viestin linkkiä.",
        "bad_other": "Linkki ei kelpaa. Käytä uusimman viestin linkkiä.",
        "unsubscribed": "Tilaus on peruttu. Voit muuttaa tätä asetussivullasi.",
    },
    "ja": {
        "title": "通知の設定",
        "intro": "{org} から受け取る通知を選んでください。",
        "email_legend": "{address} へのメール",
        "notify": "このアドレスにメールを送る",
        "categories_legend": "受け取るメール",
        "new_invoice": "新しい請求書",
        "pending_reminders": "支払いのリマインダー",
        "payment_confirmation": "支払いの確認",
        "refunds": "返金",
        "required": "必須",
        "required_reason": "{org} はこれらを送る必要があります。",
        "sms_legend": "SMS(テキストメッセージ)",
        "sms_account": "アカウント {account} について SMS を送る",
        "sms_blocked": "{org} はこのアカウントの SMS を送っていません。",
        "opted_out": "SMS に STOP と返信されました。再開するには START と返信してください。",
        "suppressed": "このアドレスへのメールは届きませんでした。{org} が確認するまで送りません。",
        "save": "設定を保存",
        "saved": "保存しました。変更点:",
        "nothing_changed": "保存しました。変更はありません。",
        "on": "オン",
        "off": "オフ",
        "sms_change": "アカウント {account} の SMS",
        "bad_title": "このリンクは使えません",
        "bad_malformed": "これは設定のリンクではありません。最新のメッセージのリンクを使ってください。",
        "bad_expired": "このリンクは期限切れです。最新のメッセージのリンクを使ってください。",
        "bad_other": "このリンクは無効です。最新のメッセージのリンクを使ってください。",
        "unsubscribed": "配信を停止しました。設定ページで変更できます。",
    },
}


def language(locale: str | None) -> str:
    """The shipped language for a contact's locale (``fi-FI`` → ``fi``); English otherwise."""
    head = (locale or "en").split("-")[0].split("_")[0].lower()
    return head if head in TEXTS else "en"


def texts(locale: str | None) -> dict[str, str]:
    """The page's words for ``locale``."""
    return TEXTS[language(locale)]
