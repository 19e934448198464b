"""Which language model the agents and the questions may ask, as configured.

Apart from console/runtime.py so that a window that runs no agents (a client of its
engine: console/client_runtime.py) can answer questions without importing the team.
"""

from __future__ import annotations

import logging

from agents.llm import LLMSettings

log = logging.getLogger(__name__)


def configured_llm() -> LLMSettings | None:
    """The model the agents may ask: $WATCHFLOOR_LLM_* first, else what Settings ->
    Language model saved (console/settings_store.py); None: the built-in path. A settings
    file that no longer validates is reported and ignored (the agents work without)."""
    from console.settings_store import SettingsError, SettingsStore

    settings = LLMSettings.from_env()
    if settings is not None:
        return settings
    try:
        saved = SettingsStore().load().llm
    except SettingsError as exc:
        log.warning("the saved language model settings are ignored: %s", exc)
        return None
    if not saved.enabled:
        return None
    return LLMSettings(base_url=saved.url, model=saved.model, timeout=saved.timeout)
