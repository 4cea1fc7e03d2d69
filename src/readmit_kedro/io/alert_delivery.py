"""Monitoring's alert delivery: a dataset whose save sends the routed alerts and logs the outcome.

Nodes stay pure and never see a secret, so the sending is here: the monitoring node
``route_alerts`` renders one message per channel (``pipelines.monitoring.alerts.route``); saving
that outbox logs every alert at its severity, posts to the webhook, mails through the SMTP relay,
and writes the delivery log (JSON at ``filepath``), which is what ``load`` returns.

The channels' secrets are Kedro credentials, the same values as the Airflow connections
``readmit_alerts_webhook`` and ``readmit_alerts_smtp`` (README "Alerting")::

    readmit_alerts:
      webhook:
        url: https://hooks.slack.com/services/...   # the bearer secret; https only
      smtp:
        host: smtp.example.org
        port: 587            # 465: SMTPS (implicit TLS); any other port: STARTTLS
        login: <user>        # optional: SMTP AUTH, always after TLS
        password: <secret>
        ca_file: null        # optional: a private CA bundle instead of the system's

A channel without its credentials (no URL, no host; or no e-mail recipients) is not configured:
logged and skipped. A webhook URL that is not https (plain http only to 127.0.0.1 or localhost,
for tests) and unknown credential keys are refused when the dataset is created, naming the key
and never the URL's path. Mail always uses TLS with ``ssl.create_default_context()`` (certificate
and host name verified); a channel that fails (refused, timed out, untrusted certificate, HTTP
error) is logged and recorded as ``failed``, never raised: the report is written by then, and a
flaky channel must not fail the monitoring DAG.
"""

from __future__ import annotations

import json
import logging
import smtplib
import ssl
import urllib.request
from dataclasses import dataclass
from email.message import EmailMessage
from http.client import HTTPException
from typing import Any
from urllib.parse import urlsplit

from kedro.io import AbstractDataset, DatasetError
from kedro_datasets.json import JSONDataset

logger = logging.getLogger(__name__)

_LOG_LEVELS = {"critical": logging.ERROR, "warning": logging.WARNING, "info": logging.INFO}
_LOOPBACK = ("127.0.0.1", "localhost")
_SMTPS_PORT = 465
_KEYS = {"webhook": ("url",), "smtp": ("host", "port", "login", "password", "ca_file")}


def _text(value: Any) -> str | None:
    """A credential value, or None when unset (null or empty: ECS sets a variable even when the
    secret's key is empty)."""
    if value is None or value == "":
        return None
    return str(value)


@dataclass(frozen=True)
class WebhookChannel:
    """A Slack-compatible incoming webhook: POST ``{"text": ...}`` to ``url``."""

    url: str | None

    @classmethod
    def parse(cls, settings: dict[str, Any]) -> WebhookChannel:
        url = _text(settings.get("url"))
        if url is not None:
            parts = urlsplit(url)
            loopback = parts.scheme == "http" and parts.hostname in _LOOPBACK
            if not parts.hostname or (parts.scheme != "https" and not loopback):
                raise DatasetError(
                    "credentials webhook.url must be an https URL (plain http only to 127.0.0.1 "
                    f"or localhost), got {parts.scheme or '?'}://{parts.hostname or ''}/..."
                )
        return cls(url)

    @property
    def configured(self) -> bool:
        return self.url is not None

    def send(self, message: dict[str, Any], timeout: float) -> None:
        assert self.url is not None
        request = urllib.request.Request(
            self.url,
            data=json.dumps({"text": message["text"]}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        context = ssl.create_default_context()
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            response.read()


@dataclass(frozen=True)
class SmtpChannel:
    """An SMTP relay, always over TLS with a verified context: SMTPS on 465, else STARTTLS."""

    host: str | None
    port: int
    login: str | None
    password: str | None
    ca_file: str | None

    @classmethod
    def parse(cls, settings: dict[str, Any]) -> SmtpChannel:
        port = _text(settings.get("port")) or "587"
        if not port.isdigit() or not 1 <= int(port) <= 65535:
            raise DatasetError(f"credentials smtp.port must be an int in [1, 65535], got {port!r}")
        auth = (_text(settings.get("login")), _text(settings.get("password")))
        if (auth[0] is None) != (auth[1] is None):
            raise DatasetError("credentials smtp.login and smtp.password must be set together")
        host, ca_file = _text(settings.get("host")), _text(settings.get("ca_file"))
        return cls(host, int(port), *auth, ca_file)

    @property
    def configured(self) -> bool:
        return self.host is not None

    def context(self) -> ssl.SSLContext:
        """Certificate and host name verified: the system's CAs, or only ``ca_file``'s."""
        return ssl.create_default_context(cafile=self.ca_file)

    def send(self, message: dict[str, Any], timeout: float) -> None:
        mail = EmailMessage()
        mail["Subject"] = message["subject"]
        mail["From"] = message["sender"]
        mail["To"] = ", ".join(message["recipients"])
        mail.set_content(message["text"])
        assert self.host is not None
        if self.port == _SMTPS_PORT:
            smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=timeout, context=self.context())
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=timeout)
        with smtp:
            if self.port != _SMTPS_PORT:
                smtp.starttls(context=self.context())  # refused by a server without STARTTLS
            if self.login is not None:
                smtp.login(self.login, self.password or "")
            smtp.send_message(mail)


class AlertDeliveryDataset(AbstractDataset[dict[str, Any], dict[str, Any]]):
    """Save: deliver an outbox of ``route_alerts`` and write the delivery log; load: that log.

    Args:
        filepath: Where the delivery log (JSON) is written; any fsspec path.
        credentials: ``{"webhook": {"url"}, "smtp": {"host", "port", "login", "password",
            "ca_file"}}``, each part optional (a missing part leaves its channel unconfigured).
        fs_args: Passed to the delivery log's filesystem.
    """

    def __init__(
        self,
        *,
        filepath: str,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
    ) -> None:
        credentials = dict(credentials or {})
        for part, value in credentials.items():
            if part not in _KEYS:
                raise DatasetError(f"credentials {part} is not an alert channel (webhook, smtp)")
            for key in value or {}:
                if key not in _KEYS[part]:
                    raise DatasetError(
                        f"credentials {part}.{key} is not a setting ({', '.join(_KEYS[part])})"
                    )
        self._webhook = WebhookChannel.parse(credentials.get("webhook") or {})
        self._smtp = SmtpChannel.parse(credentials.get("smtp") or {})
        self._filepath = filepath
        self._log = JSONDataset(filepath=filepath, fs_args=fs_args)

    def _describe(self) -> dict[str, Any]:  # never the credentials
        return {
            "filepath": self._filepath,
            "webhook": "configured" if self._webhook.configured else "not configured",
            "smtp": "configured" if self._smtp.configured else "not configured",
        }

    def _load(self) -> dict[str, Any]:
        return self._log.load()

    def _exists(self) -> bool:
        return self._log.exists()

    def _save(self, data: dict[str, Any]) -> None:
        self._log.save({"run_date": data["run_date"], "deliveries": self.deliver(data)})

    def deliver(self, outbox: dict[str, Any]) -> list[dict[str, Any]]:
        """Log every alert, send each channel's message; what happened on each channel."""
        for alert in outbox["alerts"]:
            logger.log(
                _LOG_LEVELS[alert["severity"]],
                "[%s] %s: %s",
                alert["severity"].upper(),
                alert["title"],
                alert["message"],
            )
        log = [
            {"channel": "log", "alerts": len(outbox["alerts"]), "status": "sent", "detail": None}
        ]
        for channel, sender in (("webhook", self._webhook), ("email", self._smtp)):
            message = outbox["messages"][channel]
            entry: dict[str, Any] = {
                "channel": channel,
                "alerts": message["alerts"],
                "detail": None,
            }
            if not message["alerts"]:
                entry["status"] = "nothing_routed"
            elif not sender.configured or (channel == "email" and not message["recipients"]):
                entry["status"] = "not_configured"
                logger.info("Alert channel %s is not configured: skipped", channel)
            else:
                try:
                    sender.send(message, outbox["timeout_seconds"])
                    entry["status"] = "sent"
                except (OSError, HTTPException, ValueError) as exc:
                    entry.update(status="failed", detail=f"{type(exc).__name__}: {exc}")
                    logger.warning(
                        "Alert channel %s failed (report kept): %s", channel, entry["detail"]
                    )
            log.append(entry)
        return log
