"""Which MCP servers the console reads from: `mcp.yaml`.

The file lives in the user config directory (`~/.config/watchfloor/mcp.yaml`;
WATCHFLOOR_CONFIG_DIR moves it) or wherever `WATCHFLOOR_MCP` points. It is a file of its
own, like tickets.yaml, so the settings dialog (which rewrites settings.yaml whole) never
drops it. Each server names its tools one by one: a tool not listed is never called,
whatever the server says of it (default deny, console/mcp/client.py).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from console.yamlpos import ScenarioError, load_yaml, validate

CONFIG_ENV = "WATCHFLOOR_MCP"
CONFIG_FILE = "mcp.yaml"
# What a tool's arguments may be filled from, per question.
PLACEHOLDERS = ("question", "service", "incident")
_PLACEHOLDER = re.compile(r"\{([a-z_]*)\}")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class McpConfigError(ValueError):
    """The MCP config cannot be used; the message names file, line and field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AllowedTool(_Strict):
    """One tool the console may call, and the arguments it is called with: plain values,
    or text with {question}, {service} or {incident} filled in per question. A tool
    whose placeholder has no value for a question is not called for it."""

    tool: str = Field(min_length=1, max_length=128)
    arguments: dict[str, Any] = Field(default_factory=dict)
    despite_name: bool = Field(False, description="the tool only reads though its name "
                               "says it acts (run_query): call it all the same")

    @field_validator("arguments")
    @classmethod
    def _placeholders(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key, arg in value.items():
            for name in _PLACEHOLDER.findall(arg) if isinstance(arg, str) else ():
                if name not in PLACEHOLDERS:
                    raise ValueError(f"argument {key!r}: unknown placeholder {{{name}}} "
                                     f"(known: {', '.join(PLACEHOLDERS)})")
        return value

    def placeholders(self) -> set[str]:
        return {name for arg in self.arguments.values() if isinstance(arg, str)
                for name in _PLACEHOLDER.findall(arg)}

    def fill(self, values: dict[str, str]) -> dict[str, Any] | None:
        """The arguments for one question; None when a placeholder has no value."""
        if any(not values.get(name) for name in self.placeholders()):
            return None
        return {key: _PLACEHOLDER.sub(lambda m: values[m.group(1)], arg)
                if isinstance(arg, str) else arg for key, arg in self.arguments.items()}


class ServerConfig(_Strict):
    """A server started over stdio (`command` and `args`) or reached over streamable
    HTTP (`url`), never both."""

    name: str
    command: str | None = None
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    url: str | None = None
    allow: list[AllowedTool] = Field(default_factory=list)
    timeout: float = Field(10.0, gt=0, le=120, description="seconds for one server's "
                           "whole lookup (start, list, calls)")
    max_chars: int = Field(2000, ge=100, le=20000, description="what is quoted of one "
                           "tool result at most")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("letters, digits, '_', '.', '-' only (at most 64), e.g. cmdb")
        return value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from urllib.parse import urlsplit

        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"expected an http(s)://host[:port]/path URL, got {value!r}")
        if parts.username or parts.password:
            raise ValueError("must not hold a user or password")
        return value

    @model_validator(mode="after")
    def _one_transport(self) -> ServerConfig:
        if (self.command is None) == (self.url is None):
            raise ValueError("give either command (stdio) or url (streamable HTTP)")
        if self.url is not None and (self.args or self.env):
            raise ValueError("args and env go with command, not url")
        names = [t.tool for t in self.allow]
        if len(names) != len(set(names)):
            raise ValueError("a tool is listed twice under allow")
        return self


class McpConfig(_Strict):
    servers: list[ServerConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> McpConfig:
        names = [s.name for s in self.servers]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"server names must differ: {', '.join(twice)} twice")
        return self


def default_path() -> Path:
    from console.storage.db import config_dir

    override = os.environ.get(CONFIG_ENV)
    return Path(override) if override else config_dir() / CONFIG_FILE


def load_mcp_config(path: Path | None = None) -> McpConfig:
    """The config at `path` (which must exist), else the default file, else no servers."""
    chosen = path or default_path()
    if path is None and not chosen.exists():
        return McpConfig()
    try:
        text = chosen.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise McpConfigError(f"{chosen}: cannot read: {exc}") from None
    return parse_mcp_config(text, str(chosen))


def parse_mcp_config(text: str, source: str) -> McpConfig:
    try:
        data, lines = load_yaml(text, source)
        config: McpConfig = validate(McpConfig, data or {}, lines, source)
    except ScenarioError as exc:
        raise McpConfigError(str(exc)) from None
    return config
