"""``herald demo``: the whole pipeline on this machine, end to end.

Broker (local node when none answers), the Twilio and SMTP sandboxes, the Procfile
processes under honcho, the demo directory, a burst of events, and the
resulting history.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pika
import typer
from rich.table import Table
from sqlalchemy import func, select

from infra import topology
from infra.bootstrap import Services, bootstrap, shutdown
from infra.masking import redact_url
from infra.settings import Settings
from infra.store.directory import upsert_customer
from infra.store.tables import notifications, status_outbox
from producers.cli import context
from producers.cli.console import err, out
from producers.cli.contacts import consent
from producers.cli.history import history
from producers.publisher import Publisher
from producers.webhooks import operations as webhook_ops
from schemas.directory import CustomerRecord
from schemas.notifications import Status
from tooling.demo import data as demo_data
from tooling.demo.unsubscribe import show_unsubscribe
from tooling.sandboxes.gocardless import GoCardlessConfig, GoCardlessSandbox
from tooling.sandboxes.smtp import SmtpSandbox
from tooling.sandboxes.twilio import SandboxConfig, TwilioSandbox
from tooling.sandboxes.webhook_receiver import WebhookReceiver

WORK = Path(".herald")
DEMO_SID = "AC" + "d" * 32
DEMO_TOKEN = "demo-auth-token"  # noqa: S105 - the local sandbox's, not a real secret
DEMO_FROM = "+15005550006"
DEMO_EMAIL_FROM = "Acme Billing <billing@acme.example>"
DEMO_GOCARDLESS_TOKEN = "demo-gocardless-token"  # noqa: S105 - the local sandbox's, not a real secret
DEMO_LINK_SECRET = "demo-link-secret"  # noqa: S105 - signs the demo's own links only


def _purge(url: str, prefix: str) -> None:
    # Messages left by an interrupted demo point at a database that was reset.
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        for stage in topology.STAGES:
            queue = topology.queue_name(prefix, stage)
            for name in (queue, topology.delay_queue(queue), topology.dead_letter_queue(queue)):
                channel = connection.channel()
                try:
                    channel.queue_purge(name)
                    channel.close()
                except pika.exceptions.ChannelClosedByBroker:
                    pass  # the queue does not exist yet
    finally:
        connection.close()


def _demo_settings() -> Settings:
    """The demo's settings: what its processes read from the environment the demo just set. They
    become this command's settings too, so the history it prints comes from the demo's store."""
    settings = Settings()
    context.begin(settings)
    return settings


def _wait_settled(svc: Services, expected: int, timeout: float) -> tuple[Counter[str], bool]:
    """Notifications by status once the pipeline has settled (or the timeout passed), and whether it did."""
    deadline = time.monotonic() + timeout
    counts: Counter[str] = Counter()
    while time.monotonic() < deadline:
        with svc.transaction() as conn:
            rows = conn.execute(
                select(notifications.c.channel, notifications.c.status, func.count()).group_by(
                    notifications.c.channel, notifications.c.status
                )
            ).all()
        counts = Counter()
        for _channel, status, n in rows:
            counts[status] += n
        # Settled once every SMS is delivered (status callbacks) or ended otherwise; SMTP reports
        # no delivery, so an email is settled once sent.
        sms_sent = sum(n for channel, status, n in rows if channel == "sms" and status == Status.SENT)
        unsettled = counts[Status.PENDING] + counts[Status.SENDING] + sms_sent
        if sum(counts.values()) >= expected and unsettled == 0:
            return counts, True
        time.sleep(0.5)  # the poll interval; the deadline above bounds the wait
    return counts, False


def _print_received(svc: Services, receiver: WebhookReceiver, timeout: float) -> None:
    """Wait until the receiver sandbox has every status event herald recorded (or the timeout),
    then print what it received, verified, by type, and one notification's events in order."""
    deadline = time.monotonic() + timeout
    while True:
        with svc.reading() as conn:
            written = int(conn.execute(select(func.count()).select_from(status_outbox)).scalar_one())
        got = {r.webhook_id for r in receiver.state.accepted()}
        if len(got) >= written or time.monotonic() > deadline:
            break
        time.sleep(0.5)  # the poll interval; the deadline above bounds the wait
    accepted = receiver.state.accepted()
    table = Table(title=f"webhooks received and verified by the receiver sandbox ({len(got)} of {written})")
    table.add_column("type")
    table.add_column("count", justify="right")
    for type_, n in sorted(Counter(str(r.type) for r in accepted).items()):
        table.add_row(type_, str(n))
    out.print(table)
    first = next((r for r in accepted if r.type == "notification.delivered"), None)
    if first is not None:
        nid = first.payload["data"]["notification_id"]
        for r in accepted:
            data = r.payload["data"]
            if data.get("notification_id") == nid:
                out.print(
                    f"  {data['invoice_id']} {data['channel']} {data['recipient']}: {r.type} "
                    f"({data.get('reason') or data['status']}) webhook-id {r.webhook_id}",
                    markup=False,
                )


def demo(
    events: int = typer.Option(200, min=1, max=200, help="invoice.created events to publish."),
    timeout: float = typer.Option(180, help="Seconds to wait for the pipeline to settle."),
) -> None:
    """Run the demo pipeline end to end and print the resulting history."""
    WORK.mkdir(exist_ok=True)
    db = WORK / "demo.db"
    for leftover in WORK.glob("demo.db*"):
        leftover.unlink()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        api_port = probe.getsockname()[1]
    overrides = {
        "HERALD_DATABASE_URL": f"sqlite:///{db.resolve()}",
        "HERALD_QUEUE_PREFIX": "herald-demo",
        "HERALD_TWILIO_ACCOUNT_SID": os.environ.get("HERALD_TWILIO_ACCOUNT_SID", DEMO_SID),
        "HERALD_TWILIO_AUTH_TOKEN": os.environ.get("HERALD_TWILIO_AUTH_TOKEN", DEMO_TOKEN),
        "HERALD_TWILIO_FROM": os.environ.get("HERALD_TWILIO_FROM", DEMO_FROM),
        "HERALD_LOG_FORMAT": "json",
        # The sandbox has no carrier to protect: the per-sender rate limit is off for the demo.
        "HERALD_SMS_SEGMENTS_PER_SECOND": os.environ.get("HERALD_SMS_SEGMENTS_PER_SECOND", "0"),
        # The demo shows every message at once, whatever the hour: no quiet hours unless asked for.
        "HERALD_DEFAULT_SEND_WINDOWS": os.environ.get("HERALD_DEFAULT_SEND_WINDOWS", "sms=any,email=any"),
        "HERALD_API_PORT": str(api_port),
        # The sandbox sends its signed status callbacks to the api process.
        "HERALD_PUBLIC_URL": f"http://127.0.0.1:{api_port}",
        # Signs the preference links every email carries (docs/preferences.md).
        "HERALD_LINK_SECRET": os.environ.get("HERALD_LINK_SECRET", DEMO_LINK_SECRET),
    }
    os.environ.update(overrides)
    settings = _demo_settings()
    url = settings.amqp_url.get_secret_value()

    from tooling.local import rabbitmq as rabbitmq_local

    out.print(f"[bold]1. broker[/]: {redact_url(url)}")
    rabbitmq_local.ensure_broker(url, WORK / "rabbitmq")
    _purge(url, settings.queue_prefix)

    sandbox = TwilioSandbox(
        SandboxConfig(overrides["HERALD_TWILIO_ACCOUNT_SID"], overrides["HERALD_TWILIO_AUTH_TOKEN"])
    )
    sandbox.start()
    os.environ["HERALD_TWILIO_BASE_URL"] = sandbox.url
    mail = SmtpSandbox()
    mail.start()
    os.environ.update(
        {
            "HERALD_SMTP_HOST": mail.host,
            "HERALD_SMTP_PORT": str(mail.port),
            "HERALD_SMTP_FROM": os.environ.get("HERALD_SMTP_FROM", DEMO_EMAIL_FROM),
        }
    )
    # The Procfile's collect line needs GoCardless: the demo gives it the local sandbox.
    gocardless = GoCardlessSandbox(
        GoCardlessConfig(os.environ.get("HERALD_GOCARDLESS_ACCESS_TOKEN", DEMO_GOCARDLESS_TOKEN))
    )
    gocardless.start()
    os.environ["HERALD_GOCARDLESS_ACCESS_TOKEN"] = gocardless.config.access_token
    os.environ["HERALD_GOCARDLESS_BASE_URL"] = gocardless.url
    settings = _demo_settings()
    out.print(
        f"[bold]2. sandboxes[/]: twilio {sandbox.url}, smtp {mail.host}:{mail.port},"
        f" gocardless {gocardless.url}"
    )

    svc = bootstrap(settings)
    customers = demo_data.demo_customers()
    with svc.transaction() as conn:
        for record in customers:
            upsert_customer(conn, CustomerRecord.model_validate(record), region=svc.settings.default_region)
    out.print(f"[bold]3. directory[/]: {len(customers)} customers imported")
    receiver = WebhookReceiver()
    receiver.start()
    endpoint = webhook_ops.add(svc, demo_data.DEMO_ORG, receiver.url + "/herald", None)
    receiver.state.secrets = [endpoint["secret"]]
    out.print(
        f"    webhook receiver {receiver.url}: endpoint {endpoint['endpoint_id']} of {demo_data.DEMO_ORG}"
    )

    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    honcho = shutil.which("honcho", path=env["PATH"]) or "honcho"
    log = (WORK / "demo-workers.log").open("w")
    procs = subprocess.Popen(
        [honcho, "-f", "Procfile", "start"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    out.print(f"[bold]4. workers[/]: honcho start (logs in {log.name})")
    try:
        batch = demo_data.invoice_events(events) + demo_data.showcase_events()
        with Publisher(settings) as publisher:
            published = publisher.publish_many(batch)
        out.print(f"[bold]5. published[/]: {published} events, confirmed by RabbitMQ")

        # Each invoice event makes one notification; the showcase adds six more decisions.
        counts, settled = _wait_settled(svc, events + 6, timeout)
        table = Table(title="notifications by status")
        table.add_column("status")
        table.add_column("count", justify="right")
        for status, n in sorted(counts.items()):
            table.add_row(status, str(n))
        out.print(table)
        out.print(f"SMS captured by the sandbox: {len(sandbox.messages())}")
        out.print(f"Emails captured by the SMTP sandbox: {len(mail.messages)}")
        _print_received(svc, receiver, timeout=60)
        unsubscribed = show_unsubscribe(svc, settings, mail.messages, timeout=30)
        shutdown(svc)
        for invoice in ("INV-00001", "INV-09001", "INV-09002", "INV-09003", "INV-09005"):
            history(invoice=invoice, contact=None, org=None, as_json=False, reveal=False)
        consent(contact="P-SMS-OFF", org="acme", as_json=False, reveal=False)
        if not unsubscribed:
            err.print("[red]the one-click unsubscribe did not skip the next invoice's email[/]")
            raise typer.Exit(1)
        if not settled:
            err.print("[red]the pipeline did not settle in time[/]; see the worker log")
            raise typer.Exit(1)
    finally:
        os.killpg(procs.pid, signal.SIGTERM)
        try:
            procs.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(procs.pid, signal.SIGKILL)
        sandbox.stop()
        mail.stop()
        gocardless.stop()
        receiver.stop()
        log.close()
    out.print("done. The broker keeps running for the next run; stop it with: herald broker down")
