"""An optional language model: any OpenAI-compatible chat endpoint (Ollama, vLLM,
llama.cpp server) over httpx.

Every agent works without one; with one, its output is data. This client only sends
messages and returns the text of the first choice: no tools, no functions, nothing the
model could call. It has one total time limit per call, and every failure (refused
connection, timeout, non-200, a body that is not the chat completion shape) is an
`LLMError`, so a caller can always fall back to its built-in path.

Settings hold no secret: `api_key_env` is the NAME of the environment variable that
holds the key, read at the moment of each request.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

if TYPE_CHECKING:  # imported when a model is configured: httpx and its stack weigh about
    # 15 MB that a console without one does not need
    import httpx

MAX_BODY = 1024 * 1024
ENV_PREFIX = "WATCHFLOOR_LLM_"


class LLMError(Exception):
    """The model could not be asked or did not answer in the expected shape."""


class LLMSettings(BaseModel):
    """Where the model is and how long to wait for it (environment: WATCHFLOOR_LLM_URL,
    WATCHFLOOR_LLM_MODEL, WATCHFLOOR_LLM_TIMEOUT, WATCHFLOOR_LLM_MAX_TOKENS,
    WATCHFLOOR_LLM_KEY_ENV; see `from_env`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str = Field("http://127.0.0.1:11434", description="the server's base URL; "
                          "requests go to {base_url}/v1/chat/completions")
    model: str = Field("llama3.1:8b", min_length=1, max_length=200,
                       description="the model name the server knows")
    timeout: float = Field(20.0, gt=0, le=600, description="seconds for a whole call")
    max_tokens: int = Field(600, ge=16, le=32768, description="longest reply, in tokens")
    api_key_env: str | None = Field(None, pattern=r"^[A-Z_][A-Z0-9_]{0,127}$",
                                    description="NAME of the environment variable holding "
                                    "the API key (never the key itself); None: no key")

    @field_validator("base_url")
    @classmethod
    def _plain_http_url(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base_url must be an http(s) URL, got {value!r}")
        if parts.username or parts.password:
            raise ValueError("base_url cannot hold a user or password; name the key's "
                             "environment variable in api_key_env")
        if parts.query or parts.fragment:
            raise ValueError("base_url cannot have a query or a fragment")
        path = parts.path.rstrip("/")
        path = path[:-3] if path.endswith("/v1") else path
        return f"{parts.scheme}://{parts.netloc}{path}"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> LLMSettings | None:
        """Settings from WATCHFLOOR_LLM_* variables; None when WATCHFLOOR_LLM_URL is unset
        (no model configured: the built-in path is used)."""
        env = os.environ if env is None else env
        url = env.get(ENV_PREFIX + "URL", "").strip()
        if not url:
            return None
        fields: dict[str, Any] = {"base_url": url}
        for key, name in (("MODEL", "model"), ("TIMEOUT", "timeout"),
                          ("MAX_TOKENS", "max_tokens"), ("KEY_ENV", "api_key_env")):
            value = env.get(ENV_PREFIX + key, "").strip()
            if value:
                fields[name] = value
        return cls.model_validate(fields)

    @property
    def endpoint(self) -> str:
        return f"{self.base_url}/v1/chat/completions"


def _content(body: bytes) -> str:
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LLMError(f"the reply is not JSON ({exc})") from None
    try:
        content = data["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise LLMError("the reply has no choices[0].message.content") from None
    if not isinstance(content, str) or not content.strip():
        raise LLMError("the reply's content is empty or not text")
    return content


class LLM:
    """One chat client for the life of the process (an httpx client is costly to make)."""

    def __init__(self, settings: LLMSettings, *, client: httpx.Client | None = None) -> None:
        import httpx

        self.settings = settings
        self._client = client or httpx.Client(follow_redirects=False)
        self._own_client = client is None

    def chat(self, messages: Sequence[Mapping[str, str]]) -> str:
        """The model's reply to `messages`, or LLMError. The time limit covers the whole
        call (connect, wait, a slowly trickled body), not each read."""
        import httpx

        settings = self.settings
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if settings.api_key_env:
            key = os.environ.get(settings.api_key_env, "")
            if not key:
                raise LLMError(f"environment variable {settings.api_key_env} is not set")
            headers["Authorization"] = f"Bearer {key}"
        body = {"model": settings.model, "messages": [dict(m) for m in messages],
                "temperature": 0, "max_tokens": settings.max_tokens, "stream": False}
        deadline = time.monotonic() + settings.timeout
        try:
            with self._client.stream("POST", settings.endpoint, json=body, headers=headers,
                                     timeout=httpx.Timeout(settings.timeout)) as response:
                if response.status_code != 200:
                    raise LLMError(f"{settings.endpoint} answered HTTP {response.status_code}")
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > MAX_BODY:
                        raise LLMError(f"the reply is larger than {MAX_BODY} bytes")
                    if time.monotonic() > deadline:
                        raise LLMError(f"no complete reply within {settings.timeout:g}s")
                    chunks.append(chunk)
        except httpx.TimeoutException:
            raise LLMError(f"no reply within {settings.timeout:g}s") from None
        except httpx.HTTPError as exc:
            raise LLMError(f"cannot reach {settings.endpoint}: {_safe(exc)}") from None
        if time.monotonic() > deadline:
            raise LLMError(f"no complete reply within {settings.timeout:g}s")
        return _content(b"".join(chunks))

    def close(self) -> None:
        if self._own_client:
            self._client.close()

    def __enter__(self) -> LLM:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _safe(exc: Exception) -> str:
    """An error message without anything that looks like a bearer token."""
    return re.sub(r"(?i)bearer\s+\S+", "Bearer ***", str(exc))[:300]
