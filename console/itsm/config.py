"""Which ticketing system Watchfloor uses, and how to reach it: `tickets.yaml`.

The file lives in the user config directory (`~/.config/watchfloor/tickets.yaml` on
Linux; WATCHFLOOR_CONFIG_DIR moves it) or wherever `WATCHFLOOR_TICKETS` points. Without
a file the built-in store is used. It never holds a secret: a key that looks like one
(password, token, secret, api key, routing key...) is refused with the command that
puts the secret in the OS keyring instead; so is a URL with a user:password in it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from console.itsm.base import RetryPolicy, TicketSystem
from console.itsm.credentials import CredentialStore, set_command
from console.yamlpos import Duration, Loc, ScenarioError, load_yaml, validate

if TYPE_CHECKING:
    from console.service import WatchfloorService

CONFIG_ENV = "WATCHFLOOR_TICKETS"
SystemName = Literal["builtin", "servicenow", "jira", "pagerduty"]
SECRET_KEY = re.compile(r"pass(word|wd|phrase)?|secret|token|api[-_ ]?key|routing[-_ ]?key|"
                        r"integration[-_ ]?key|credential|private[-_ ]?key|auth", re.I)


class TicketConfigError(ValueError):
    """The ticket config cannot be used; the message names file, line and field."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServiceNowSection(_Section):
    incident_table: str = Field("incident", description="table incidents are opened in")
    change_table: str = Field("change_request", description="table changes are opened in")
    change_type: str = Field("normal", description="type of the change requests opened")
    incident_close_code: str = "Solution provided"
    incident_fail_code: str = "No resolution provided"
    change_close_code: str = "successful"
    change_fail_code: str = "unsuccessful"


class JiraSection(_Section):
    project: str = Field(..., min_length=1, description="project key issues are opened in")
    incident_type: str = Field("Task", description="issue type of incidents")
    change_type: str = Field("Task", description="issue type of change records")
    close_transition: str = Field("Done", description="the workflow transition that closes")
    route_by: Literal["component", "label"] = Field(
        "component", description="route() sets this component, or adds a wf-group label")


class PagerDutySection(_Section):
    source: str = Field("watchfloor", description="payload.source when no service is named")


class TicketConfig(_Section):
    system: SystemName = Field("builtin", description="the ticketing system in use")
    url: str | None = Field(None, description="the system's base URL")
    username: str | None = Field(None, description="ServiceNow user, or Jira account email")
    account: str | None = Field(None, description="keyring entry <system>:<account> holding "
                                                  "the secret (default: the URL's host)")
    assignment_group: str = Field("", description="group new tickets are routed to")
    timeout: Duration = Field(10.0, gt=0, description="per request")
    retries: int = Field(3, ge=0, le=10, description="retries after the first attempt")
    backoff: Duration = Field(0.5, ge=0, description="first wait between attempts; doubles")
    servicenow: ServiceNowSection = ServiceNowSection()
    jira: JiraSection | None = None
    pagerduty: PagerDutySection = PagerDutySection()

    @field_validator("url")
    @classmethod
    def _plain_http_url(cls, url: str | None) -> str | None:
        if url is None:
            return None
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"expected an http(s) URL, got {url!r}")
        if parts.username or parts.password:
            raise ValueError("a URL may not carry a user or password; secrets go in the OS "
                             "keyring (watchfloor credentials set SYSTEM --account NAME)")
        return url.rstrip("/")

    def keyring_account(self) -> str:
        if self.account:
            return self.account
        if self.url:
            return urlsplit(self.url).hostname or "default"
        return "default"

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(attempts=self.retries + 1, backoff=self.backoff,
                           timeout=self.timeout)


def default_path() -> Path:
    from console.storage.db import config_dir

    override = os.environ.get(CONFIG_ENV)
    return Path(override) if override else config_dir() / "tickets.yaml"


def load_ticket_config(path: Path | None = None) -> TicketConfig:
    """The config at `path` (which must exist), else the default file, else builtin."""
    chosen = path or default_path()
    if path is None and not chosen.exists():
        return TicketConfig()
    try:
        text = chosen.read_text(encoding="utf-8")
    except OSError as exc:
        raise TicketConfigError(f"{chosen}: cannot read: {exc}") from None
    return parse_ticket_config(text, str(chosen))


def parse_ticket_config(text: str, source: str) -> TicketConfig:
    try:
        data, lines = load_yaml(text, source)
        _refuse_secrets(data, (), lines, source)
        config: TicketConfig = validate(TicketConfig, data or {}, lines, source)
    except ScenarioError as exc:
        raise TicketConfigError(str(exc)) from None
    _check_complete(config, lines, source)
    return config


def _refuse_secrets(data: Any, path: Loc, lines: dict[Loc, int], source: str,
                    system: str = "SYSTEM") -> None:
    if isinstance(data, dict):
        if not path and isinstance(data.get("system"), str):
            system = data["system"]
        for key, value in data.items():
            where = (*path, str(key))
            if SECRET_KEY.search(str(key)):
                raise TicketConfigError(
                    f"{source}:{lines.get(where, 1)}: {'.'.join(map(str, where))}: secrets "
                    "never go in the config file; store it in the OS keyring with: "
                    f"{set_command(system, 'NAME')}")
            _refuse_secrets(value, where, lines, source, system)
    elif isinstance(data, list):
        for index, item in enumerate(data):
            _refuse_secrets(item, (*path, index), lines, source, system)


def _missing(config: TicketConfig) -> list[str]:
    needed: list[str] = []
    if config.system in ("servicenow", "jira"):
        needed += [f for f in ("url", "username") if not getattr(config, f)]
    if config.system == "jira" and config.jira is None:
        needed.append("jira.project")
    return needed


def _check_complete(config: TicketConfig, lines: dict[Loc, int], source: str) -> None:
    needed = _missing(config)
    if needed:
        line = lines.get(("system",), 1)
        raise TicketConfigError(f"{source}:{line}: system: {config.system} needs "
                                f"{', '.join(needed)}")


def build_ticket_system(config: TicketConfig, service: WatchfloorService, *,
                        credentials: CredentialStore | None = None,
                        retry: RetryPolicy | None = None) -> TicketSystem:
    """The configured system; an external one is wrapped so every call is audited."""
    from console.itsm.audited import AuditedTickets
    from console.itsm.store import BuiltinTicketStore

    if config.system == "builtin":
        return BuiltinTicketStore(service)
    if needed := _missing(config):
        raise TicketConfigError(f"ticket system {config.system} needs {', '.join(needed)}")
    creds = credentials or CredentialStore()
    account = config.keyring_account()
    secret = creds.getter(config.system, account)
    hint = f"Check the credential; store a new one with: {set_command(config.system, account)}"
    policy = retry or config.retry_policy()
    url, username = config.url or "", config.username or ""
    adapter: TicketSystem
    if config.system == "servicenow":
        from console.itsm.servicenow import ServiceNowAdapter, ServiceNowOptions

        options = ServiceNowOptions(**config.servicenow.model_dump(),
                                    assignment_group=config.assignment_group)
        adapter = ServiceNowAdapter(url, username, secret, options=options,
                                    retry=policy, auth_hint=hint)
    elif config.system == "jira":
        from console.itsm.jira import JiraAdapter, JiraOptions

        assert config.jira is not None  # _missing said so
        adapter = JiraAdapter(url, username, secret,
                              options=JiraOptions(**config.jira.model_dump(),
                                                  assignment_group=config.assignment_group),
                              retry=policy, auth_hint=hint)
    else:
        from console.itsm.pagerduty import DEFAULT_URL, PagerDutyAdapter

        adapter = PagerDutyAdapter(secret, url=config.url or DEFAULT_URL,
                                   source=config.pagerduty.source, retry=policy,
                                   auth_hint=hint)
    return AuditedTickets(adapter, service)


class ConfiguredTickets:
    """The configured ticket system, built on first use: a command that never opens a
    ticket never reads the config file or the keyring. A config that cannot be used is
    an error at that first use (the run that needed a change record fails, saying why),
    never a silent fall back to another system."""

    def __init__(self, service: WatchfloorService, path: Path | None = None) -> None:
        self._service = service
        self._path = path
        self._system: TicketSystem | None = None

    @property
    def name(self) -> str:
        """The configured system's own name, the one its tickets carry: a caller holding
        a ticket compares the two before acting on it, so this must never be a name of
        the wrapper's own (every ticket would then look foreign). Asking is a first use."""
        return self.system().name

    def system(self) -> TicketSystem:
        if self._system is None:
            self._system = build_ticket_system(load_ticket_config(self._path), self._service)
        return self._system

    def open(self, *, kind: Any, title: str, body: str, service: str, severity: str,
             idempotency_key: str) -> Any:
        return self.system().open(kind=kind, title=title, body=body, service=service,
                                  severity=severity, idempotency_key=idempotency_key)

    def update(self, ref: Any, note: str) -> None:
        self.system().update(ref, note)

    def route(self, ref: Any, group: str) -> None:
        self.system().route(ref, group)

    def close(self, ref: Any, resolution: str, *, success: bool = True) -> None:
        self.system().close(ref, resolution, success=success)

    def close_client(self) -> None:
        closer = getattr(self._system, "close_client", None)
        if callable(closer):
            closer()
