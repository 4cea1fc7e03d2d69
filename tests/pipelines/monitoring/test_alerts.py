"""Alert delivery for real: the pure routing node, then the delivery dataset with its credentials,
against a webhook receiver and TLS mail relays on loopback, and dead endpoints."""

from __future__ import annotations

import logging
import time
from email import message_from_bytes
from pathlib import Path

import pytest
from cryptography import x509
from kedro.io import DataCatalog, DatasetError

from readmit_kedro.io import alert_delivery
from readmit_kedro.io.alert_delivery import AlertDeliveryDataset
from readmit_kedro.pipelines.monitoring.nodes import route_alerts
from tests.support.net import free_port
from tests.support.tls import ServerCertificate, make_certificate, smtp_relay

from .conftest import RUN_DATE, webhook_receiver

ALERTS = {
    "run_date": RUN_DATE,
    "alerts": [
        {"severity": "critical", "title": "Model performance dropped",
         "message": "concept drift: roc_auc 0.501 is 0.179 below the champion's 0.680"},
        {"severity": "warning", "title": "Data drift detected",
         "message": "data drift: PSI of feature num_lab_procedures 1.496 > 0.2 (by 1.296)"},
        {"severity": "info", "title": "Weekly monitoring report", "message": "all counts here"},
    ],
}  # fmt: skip
SECRET_PATH = "/services/T0000/B0000/XXXXsecretXXXX"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> ServerCertificate:
    """A relay certificate for 127.0.0.1, signed by a CA no system trusts."""
    return make_certificate(tmp_path_factory.mktemp("tls"))


def alerting(params: dict, recipients: list[str] | None = None) -> dict:
    config = {**params["alerting"], "email": dict(params["alerting"]["email"])}
    config["email"]["recipients"] = ["oncall@example.org"] if recipients is None else recipients
    return config


def deliver(
    tmp_path: Path, params: dict, credentials: dict | None, alerts: dict = ALERTS
) -> tuple[dict, list[dict]]:
    """Run the node, save its outbox through the dataset; (the delivery log, its entries)."""
    dataset = AlertDeliveryDataset(
        filepath=str(tmp_path / "delivery_log.json"), credentials=credentials
    )
    dataset.save(route_alerts(alerts, alerting(params)))
    log = dataset.load()
    return log, log["deliveries"]


def smtp(port: int, **more: str) -> dict:
    return {"host": "127.0.0.1", "port": port, **more}


def statuses(deliveries: list[dict]) -> dict[str, str]:
    return {entry["channel"]: entry["status"] for entry in deliveries}


def detail(deliveries: list[dict], channel: str) -> str:
    return next(e["detail"] for e in deliveries if e["channel"] == channel)


def test_the_routing_node_is_pure_and_holds_no_channel_secret(params: dict) -> None:
    outbox = route_alerts(ALERTS, alerting(params))
    assert set(outbox) == {"run_date", "timeout_seconds", "alerts", "messages"}
    assert (
        outbox["messages"]["webhook"]["alerts"] == 2 and outbox["messages"]["email"]["alerts"] == 2
    )
    assert set(outbox["messages"]["email"]) == {
        "alerts", "subject", "text", "sender", "recipients",
    }  # fmt: skip
    assert route_alerts(ALERTS, alerting(params)) == outbox


def test_alerts_reach_the_webhook_and_the_tls_mailbox(
    tmp_path: Path, params: dict, webhook, certificate: ServerCertificate
) -> None:
    url, posted = webhook
    with smtp_relay(certificate) as relay:
        credentials = {
            "webhook": {"url": url},
            "smtp": smtp(relay.port, login="monitoring", password="dummy",
                         ca_file=str(certificate.ca_file)),
        }  # fmt: skip
        log, deliveries = deliver(tmp_path, params, credentials)
    assert log["run_date"] == RUN_DATE
    assert statuses(deliveries) == {"log": "sent", "webhook": "sent", "email": "sent"}

    # Design routing: critical -> webhook + e-mail, warning -> webhook (Slack), info -> e-mail.
    assert len(posted) == 1
    assert posted[0]["path"] == "/hooks/monitoring"
    assert posted[0]["content_type"] == "application/json"
    text = posted[0]["body"]["text"]
    assert set(posted[0]["body"]) == {"text"}
    assert "[CRITICAL] Model performance dropped" in text
    assert "[WARNING] Data drift detected" in text
    assert "Weekly monitoring report" not in text

    assert relay.logins == [("monitoring", "dummy")]  # AUTH only after STARTTLS
    assert len(relay.envelopes) == 1
    assert relay.envelopes[0].rcpt_tos == ["oncall@example.org"]
    mail = message_from_bytes(relay.envelopes[0].content)
    assert mail["From"] == params["alerting"]["email"]["sender"]
    assert mail["Subject"] == f"[readmit-monitoring] {RUN_DATE}: CRITICAL (1 critical, 1 info)"
    body = mail.get_payload()
    assert "[CRITICAL] Model performance dropped" in body
    assert "[INFO] Weekly monitoring report" in body
    assert "Data drift detected" not in body


def test_a_relay_whose_certificate_is_not_trusted_gets_nothing(
    tmp_path: Path, params: dict, certificate: ServerCertificate, caplog: pytest.LogCaptureFixture
) -> None:
    """The same relay without the CA: verification fails, the channel is logged as failed and the
    run goes on (no exception), and no byte of the mail or the login crossed in clear."""
    with smtp_relay(certificate) as relay:
        _, deliveries = deliver(
            tmp_path, params, {"smtp": smtp(relay.port, login="monitoring", password="testing")}
        )
    assert statuses(deliveries)["email"] == "failed"
    assert "CERTIFICATE_VERIFY_FAILED" in detail(deliveries, "email")
    assert relay.envelopes == [] and relay.logins == []
    assert "Alert channel email failed (report kept)" in caplog.text


def test_a_certificate_for_another_host_is_refused(tmp_path: Path, params: dict) -> None:
    """The CA is trusted but the certificate names mail.example.org, not 127.0.0.1."""
    other = make_certificate(tmp_path, x509.DNSName("mail.example.org"))
    with smtp_relay(other) as relay:
        _, deliveries = deliver(
            tmp_path, params, {"smtp": smtp(relay.port, ca_file=str(other.ca_file))}
        )
    assert statuses(deliveries)["email"] == "failed"
    assert "CERTIFICATE_VERIFY_FAILED" in detail(deliveries, "email")
    assert relay.envelopes == []


def test_a_relay_without_starttls_gets_nothing_in_clear(tmp_path: Path, params: dict) -> None:
    with smtp_relay() as relay:
        _, deliveries = deliver(tmp_path, params, {"smtp": smtp(relay.port)})
    assert statuses(deliveries)["email"] == "failed"
    assert "STARTTLS" in detail(deliveries, "email")
    assert relay.envelopes == []


def test_port_465_is_smtps(
    tmp_path: Path, params: dict, certificate: ServerCertificate, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Implicit TLS on the SMTPS port (465 is privileged, so the test's port stands in for it)."""
    with smtp_relay(certificate, implicit_tls=True) as relay:
        monkeypatch.setattr(alert_delivery, "_SMTPS_PORT", relay.port)
        credentials = {"smtp": smtp(relay.port, ca_file=str(certificate.ca_file))}
        _, deliveries = deliver(tmp_path, params, credentials)
        _, untrusted = deliver(tmp_path, params, {"smtp": smtp(relay.port)})
    assert statuses(deliveries)["email"] == "sent" and len(relay.envelopes) == 1
    assert statuses(untrusted)["email"] == "failed"


@pytest.mark.parametrize(
    "url",
    [
        f"http://hooks.example.org{SECRET_PATH}",  # plain http off loopback
        f"http://10.0.0.7:8080{SECRET_PATH}",
        f"ftp://hooks.example.org{SECRET_PATH}",
        f"hooks.slack.com{SECRET_PATH}",  # no scheme
        f"https://{SECRET_PATH}",  # no host
    ],
)
def test_a_webhook_url_that_is_not_https_is_refused_without_showing_it(url: str) -> None:
    with pytest.raises(
        DatasetError, match=r"credentials webhook\.url must be an https URL"
    ) as error:
        AlertDeliveryDataset(filepath="unused.json", credentials={"webhook": {"url": url}})
    assert "secret" not in str(error.value)


@pytest.mark.parametrize(
    "url",
    [
        f"https://hooks.example.org{SECRET_PATH}",
        f"http://127.0.0.1:8080{SECRET_PATH}",
        f"http://localhost{SECRET_PATH}",
    ],
)
def test_https_and_loopback_http_webhooks_are_accepted(url: str) -> None:
    dataset = AlertDeliveryDataset(filepath="log.json", credentials={"webhook": {"url": url}})
    assert "secret" not in str(dataset)  # the description Kedro logs never shows the URL


def test_the_catalog_refuses_a_plain_http_webhook_credential() -> None:
    """Through Kedro's credentials resolution, as `kedro run` builds the dataset."""
    catalog = DataCatalog.from_config(
        {
            "log": {
                "type": "readmit_kedro.io.alert_delivery.AlertDeliveryDataset",
                "filepath": "log.json",
                "credentials": "readmit_alerts",
            }
        },
        credentials={
            "readmit_alerts": {"webhook": {"url": f"http://hooks.example.org{SECRET_PATH}"}}
        },
    )
    with pytest.raises(DatasetError, match=r"webhook\.url must be an https URL") as error:
        catalog["log"]
    assert "secret" not in str(error.value)


@pytest.mark.parametrize(
    ("credentials", "message"),
    [
        ({"smtp": {"hostname": "smtp.example.org"}}, r"smtp\.hostname is not a setting"),
        ({"mail": {"host": "smtp.example.org"}}, "mail is not an alert channel"),
        ({"smtp": {"host": "smtp.example.org", "port": "smtp"}}, r"smtp\.port must be an int"),
        ({"smtp": {"host": "smtp.example.org", "login": "x"}}, "must be set together"),
    ],
)
def test_bad_smtp_credentials_are_named(credentials: dict, message: str) -> None:
    with pytest.raises(DatasetError, match=message):
        AlertDeliveryDataset(filepath="unused.json", credentials=credentials)


def test_dead_endpoints_are_logged_and_do_not_fail_the_run(
    tmp_path: Path, params: dict, caplog: pytest.LogCaptureFixture
) -> None:
    dead = free_port()
    started = time.monotonic()
    credentials = {"webhook": {"url": f"http://127.0.0.1:{dead}/"}, "smtp": smtp(dead)}
    _, deliveries = deliver(tmp_path, params, credentials)
    assert time.monotonic() - started < 2 * params["alerting"]["timeout_seconds"]
    assert statuses(deliveries) == {"log": "sent", "webhook": "failed", "email": "failed"}
    details = [e["detail"] for e in deliveries if e["status"] == "failed"]
    assert all("refused" in d.lower() for d in details)
    assert "Alert channel webhook failed (report kept)" in caplog.text
    assert "Alert channel email failed (report kept)" in caplog.text


def test_a_webhook_answering_an_error_counts_as_failed(tmp_path: Path, params: dict) -> None:
    with webhook_receiver(status=500) as (url, posted):
        _, deliveries = deliver(tmp_path, params, {"webhook": {"url": url}})
    assert len(posted) == 1
    assert statuses(deliveries)["webhook"] == "failed" and "500" in detail(deliveries, "webhook")


@pytest.mark.parametrize(
    "credentials",
    [None, {}, {"webhook": {"url": None}, "smtp": {"host": None, "port": None}}],
    ids=["no-credentials", "empty-entry", "unset-env-vars"],
)
def test_without_credentials_alerts_are_only_logged(
    tmp_path: Path, params: dict, credentials: dict | None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="readmit_kedro")
    _, deliveries = deliver(tmp_path, params, credentials)
    assert statuses(deliveries) == {
        "log": "sent", "webhook": "not_configured", "email": "not_configured",
    }  # fmt: skip
    levels = {
        r.getMessage().split("]")[0]: r.levelname
        for r in caplog.records
        if r.getMessage().startswith("[")
    }
    assert levels == {"[CRITICAL": "ERROR", "[WARNING": "WARNING", "[INFO": "INFO"}
    assert "Alert channel webhook is not configured: skipped" in caplog.text


def test_mail_without_recipients_is_not_configured(
    tmp_path: Path, params: dict, certificate: ServerCertificate
) -> None:
    with smtp_relay(certificate) as relay:
        dataset = AlertDeliveryDataset(
            filepath=str(tmp_path / "log.json"),
            credentials={"smtp": smtp(relay.port, ca_file=str(certificate.ca_file))},
        )
        dataset.save(route_alerts(ALERTS, alerting(params, recipients=[])))
    assert statuses(dataset.load()["deliveries"])["email"] == "not_configured"
    assert relay.envelopes == []


def test_a_quiet_week_sends_only_the_info_report(
    tmp_path: Path, params: dict, webhook, certificate: ServerCertificate
) -> None:
    url, posted = webhook
    info_only = {"run_date": RUN_DATE, "alerts": ALERTS["alerts"][-1:]}
    with smtp_relay(certificate) as relay:
        credentials = {
            "webhook": {"url": url},
            "smtp": smtp(relay.port, ca_file=str(certificate.ca_file)),
        }
        _, deliveries = deliver(tmp_path, params, credentials, info_only)
    assert statuses(deliveries) == {"log": "sent", "webhook": "nothing_routed", "email": "sent"}
    assert posted == [] and len(relay.envelopes) == 1


PROD_VARIABLES = {
    "READMIT_ALERTS_WEBHOOK_URL": f"https://hooks.example.org{SECRET_PATH}",
    "READMIT_ALERTS_SMTP_HOST": "smtp.example.org",
    "READMIT_ALERTS_SMTP_PORT": "587",
    "READMIT_ALERTS_SMTP_LOGIN": "monitoring",
    "READMIT_ALERTS_SMTP_PASSWORD": "dummy",
}


def prod_delivery_dataset() -> AlertDeliveryDataset:
    """``monitoring_alert_delivery_log`` as `kedro run --env prod` builds it (the project's config
    loader settings, the catalog with its credentials resolved); no S3 call is made."""
    from kedro.config import OmegaConfigLoader

    from readmit_kedro.settings import CONFIG_LOADER_ARGS

    conf = Path(__file__).resolve().parents[3] / "conf"
    loader = OmegaConfigLoader(str(conf), env="prod", **CONFIG_LOADER_ARGS)
    catalog = DataCatalog.from_config(loader["catalog"], credentials=loader["credentials"])
    dataset = catalog.get("monitoring_alert_delivery_log")
    assert isinstance(dataset, AlertDeliveryDataset)
    return dataset


def test_prod_reads_the_alert_credentials_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in PROD_VARIABLES.items():
        monkeypatch.setenv(name, value)
    dataset = prod_delivery_dataset()
    assert dataset._webhook.url == PROD_VARIABLES["READMIT_ALERTS_WEBHOOK_URL"]
    assert (dataset._smtp.host, dataset._smtp.port) == ("smtp.example.org", 587)
    assert (dataset._smtp.login, dataset._smtp.password) == ("monitoring", "dummy")
    assert dataset._smtp.ca_file is None  # the system's CAs
    assert "filepath='s3://" in str(dataset) and "webhook='configured'" in str(dataset)
    assert "secret" not in str(dataset) and "dummy" not in str(dataset)


def test_prod_without_the_variables_only_logs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tasks of the training family get no alert secrets: their catalog still resolves."""
    for name in PROD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    dataset = prod_delivery_dataset()
    assert not dataset._webhook.configured and not dataset._smtp.configured


def test_prod_refuses_a_plain_http_webhook_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("READMIT_ALERTS_WEBHOOK_URL", f"http://hooks.example.org{SECRET_PATH}")
    with pytest.raises(DatasetError, match=r"webhook\.url must be an https URL") as error:
        prod_delivery_dataset()
    assert "secret" not in str(error.value)
