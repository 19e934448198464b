"""Console preferences that live in a file: where the signal sources and the LLM are.

Until now these came only from the command line and the environment (`--prometheus`,
`--alertmanager`, `WATCHFLOOR_PROMETHEUS`, `WATCHFLOOR_LLM_*`). The settings dialog needs
somewhere to keep them, validated the same way and changed the same way as everything
else: one typed schema with defaults and descriptions (STYLE.md 7), a YAML file in the
user config directory, and every save run as an audited operation (admin only), so a
changed LLM endpoint is on the record like a changed policy.

The command line and the environment still win over the file; reading the file at
start-up is the composition root's job (console/runtime.py, console/cli.py).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from console.events import OpChanges
from console.operations import Operation
from console.storage.db import config_dir
from console.yamlpos import load_model_text, read_config_text

if TYPE_CHECKING:
    from console.service import WatchfloorService

SETTINGS_FILE = "settings.yaml"
ACTION = "settings.set"


class SettingsError(ValueError):
    """Settings that cannot be used; the message names the field (and line, from a file)."""


def _http_url(value: str | None, *, credentials: bool = True) -> str | None:
    if value is None or not value.strip():
        return None
    text = value.strip()
    parts = urlsplit(text)
    try:
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError:
        raise ValueError(f"bad port in {text!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected an http(s)://host[:port] URL, got {text!r}")
    if not credentials and (parts.username or parts.password):
        raise ValueError("must not hold a user or password")
    return text.rstrip("/")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceSettings(_Strict):
    prometheus_url: str | None = Field(None, description="the Prometheus that runbooks' "
                                       "PromQL validations query")
    alertmanager_url: str | None = Field(None, description="an Alertmanager whose API v2 "
                                         "the console polls for alerts")

    @field_validator("prometheus_url", "alertmanager_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return _http_url(value)


class LlmSettings(_Strict):
    """Mirrors agents.llm.LLMSettings (the core does not import the agents)."""

    enabled: bool = Field(False, description="ask the model at all (every agent works "
                          "without one)")
    url: str = Field("http://127.0.0.1:11434", description="OpenAI-compatible server")
    model: str = Field("llama3.1:8b", min_length=1, max_length=200)
    timeout: float = Field(20.0, gt=0, le=600, description="seconds for a whole call")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        url = _http_url(value, credentials=False)
        if url is None:
            raise ValueError("must not be empty")
        return url

    @field_validator("model")
    @classmethod
    def _model(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value.strip()


class RuleSettings(_Strict):
    packs: tuple[str, ...] = Field((), description="shipped rule packs switched on as a "
                                   "whole (resources/rule_packs), e.g. proactive-checks")

    @field_validator("packs")
    @classmethod
    def _known(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        from console.rules_format import rule_packs

        known = rule_packs()
        for name in value:
            if name not in known:
                raise ValueError(f"no rule pack {name!r}; shipped: {', '.join(sorted(known))}")
        return value


class ConsoleSettings(_Strict):
    sources: SourceSettings = SourceSettings()
    llm: LlmSettings = LlmSettings()
    rules: RuleSettings = RuleSettings()


def configured_packs() -> tuple[str, ...]:
    """The rule packs settings.yaml switches on. A file that does not validate switches
    none on; the error is logged and the console starts anyway (its Settings dialog
    says what is wrong with the file)."""
    import logging

    try:
        return SettingsStore().load().rules.packs
    except SettingsError as exc:
        logging.getLogger(__name__).error("no rule packs: %s", exc)
        return ()


def parse_settings(data: Mapping[str, Any]) -> ConsoleSettings:
    """Validate settings given as plain data (the dialog's fields); SettingsError lists
    every bad field as "section.field: reason"."""
    try:
        return ConsoleSettings.model_validate(dict(data))
    except ValidationError as exc:
        lines = []
        for err in exc.errors(include_url=False):
            where = ".".join(str(p) for p in err["loc"]) or "settings"
            lines.append(f"{where}: {err['msg'].removeprefix('Value error, ')}")
        raise SettingsError("\n".join(lines)) from None


class SettingsStore:
    """The settings file, read and replaced whole."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or config_dir() / SETTINGS_FILE

    def load(self) -> ConsoleSettings:
        """The stored settings, or the defaults when there is no file yet."""
        if not self.path.exists():
            return ConsoleSettings()
        text = read_config_text(self.path, SettingsError)
        return load_model_text(ConsoleSettings, text, str(self.path), SettingsError)

    def save(self, settings: ConsoleSettings, *, service: WatchfloorService, as_user: str,
             reason: str = "") -> ConsoleSettings:
        """Replace the file as an operation: admin only, audited with before and after,
        announced as a settings change. The new file is written beside the old one
        first and swapped in inside the operation, so a denied or failed save leaves
        the old file as it was."""
        after = settings.model_dump(mode="json")
        before = self.load().model_dump(mode="json")
        tmp = self.path.with_name(self.path.name + ".tmp")

        def apply(_session: Any) -> tuple[OpChanges, Mapping[str, Any]]:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(yaml.safe_dump(after, sort_keys=False), encoding="utf-8")
            os.replace(tmp, self.path)
            changed = sorted(f"{section}.{key}" for section, values in after.items()
                             for key, value in values.items()
                             if before.get(section, {}).get(key) != value)
            return (OpChanges(settings=True, ids=("console-settings",)),
                    {"changed": changed, "before": before, "after": after,
                     "file": self.path.name})

        try:
            service.runner.run(Operation(ACTION, "console-settings", "admin", apply,
                                         reason=reason, inputs={"settings": after}), as_user)
        finally:
            tmp.unlink(missing_ok=True)
        return settings
