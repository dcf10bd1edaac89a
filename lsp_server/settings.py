"""The `specedit` settings section: defaults, and parsing what editors send.

Editors send settings in `initializationOptions` (the section itself, or `{specedit: {...}}`),
in `workspace/didChangeConfiguration` and as the answer to `workspace/configuration`. A bad
value never stops the server: it is reported and the previous (or default) value is kept.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.contract import (
    DEFAULT_CONTEXT_LINES,
    DEFAULT_DEVICE,
    DEFAULT_DTYPE,
    DEFAULT_ENDPOINT,
    DEFAULT_ENDPOINT_KEY_ENV,
    DEFAULT_ENDPOINT_MODEL,
    DEFAULT_MAX_NEW_TOKENS,
    DEFAULT_METHOD,
    DEFAULT_PRESETS,
    DEVICES,
    DTYPES,
    default_model,
)
from engine.contract import SERVER_METHODS as METHODS

SECTION = "specedit"


@dataclass(frozen=True)
class ModelSpec:
    """What identifies a loaded model: changing any of these reloads it.

    With `endpoint` set the model runs there (an OpenAI-compatible server), not in process:
    `model` is the name the endpoint serves, and the key is read from the environment
    variable `key_env` names when a request is sent.
    """

    model: str
    device: str
    dtype: str
    endpoint: str | None = None
    key_env: str = DEFAULT_ENDPOINT_KEY_ENV


@dataclass(frozen=True)
class Settings:
    # Read when settings are made, so SPECEDIT_MODEL in the server's environment counts.
    model: str = field(default_factory=default_model)
    device: str = DEFAULT_DEVICE
    dtype: str = DEFAULT_DTYPE
    method: str = DEFAULT_METHOD
    max_new_tokens: int | None = DEFAULT_MAX_NEW_TOKENS  # None: about twice the selection
    context_lines: int = DEFAULT_CONTEXT_LINES
    presets: tuple[str, ...] = DEFAULT_PRESETS
    endpoint: str = DEFAULT_ENDPOINT  # "": the in-process engine; else a base URL (.../v1)
    endpoint_model: str = DEFAULT_ENDPOINT_MODEL  # "": `model`
    endpoint_key_env: str = DEFAULT_ENDPOINT_KEY_ENV  # the variable holding the key

    @property
    def model_spec(self) -> ModelSpec:
        if self.endpoint:
            return ModelSpec(self.endpoint_model or self.model, self.device, self.dtype,
                             endpoint=self.endpoint, key_env=self.endpoint_key_env)
        return ModelSpec(self.model, self.device, self.dtype)


# camelCase wire name -> field name
_WIRE_NAMES = {
    "model": "model",
    "device": "device",
    "dtype": "dtype",
    "method": "method",
    "maxNewTokens": "max_new_tokens",
    "contextLines": "context_lines",
    "presets": "presets",
    "endpoint": "endpoint",
    "endpointModel": "endpoint_model",
    "endpointKeyEnv": "endpoint_key_env",
}


def section_of(raw: Any) -> Mapping[str, Any] | None:
    """The `specedit` section in `{specedit: {...}}`, or `raw` if it is the section itself.

    None when `raw` is neither (e.g. another tool's settings): that changes nothing.
    """
    if not isinstance(raw, Mapping):
        return None
    inner = raw.get(SECTION)
    if isinstance(inner, Mapping):
        return inner
    if not raw or any(key in raw for key in _WIRE_NAMES):
        return raw
    return None


def _choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{SECTION}.{name} {value!r} is not one of {', '.join(choices)}")
    return value


def _parse_value(wire: str, value: Any) -> Any:
    if wire == "model":
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{SECTION}.model must be a catalog name, a folder or a hub id")
        return value.strip()
    if wire == "device":
        return _choice(wire, value, DEVICES)
    if wire == "dtype":
        return _choice(wire, value, DTYPES)
    if wire == "method":
        return _choice(wire, value, METHODS)
    if wire == "maxNewTokens":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{SECTION}.maxNewTokens {value!r} must be a whole number >= 0 "
                             "(0: as long as the selection needs)")
        return value or None
    if wire == "contextLines":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{SECTION}.contextLines {value!r} must be a whole number >= 0")
        return value
    if wire == "presets":
        if not isinstance(value, list | tuple) or not all(isinstance(p, str) for p in value):
            raise ValueError(f"{SECTION}.presets must be a list of instructions (strings)")
        return tuple(p.strip() for p in value if p.strip())
    if wire == "endpoint":
        if not isinstance(value, str):
            raise ValueError(f"{SECTION}.endpoint must be a URL (or empty for the built-in "
                             "engine)")
        if not value.strip():
            return ""
        from engine.rewriting.endpoint import normalise_base_url

        try:
            return normalise_base_url(value)
        except ValueError as exc:
            raise ValueError(f"{SECTION}.endpoint {exc}") from None
    if wire == "endpointModel":
        if not isinstance(value, str):
            raise ValueError(f"{SECTION}.endpointModel must be the model name the endpoint "
                             "serves (or empty for specedit.model)")
        return value.strip()
    if wire == "endpointKeyEnv":
        if value == "":
            return ""  # no key: a loopback `specedit api` needs none
        if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
            raise ValueError(f"{SECTION}.endpointKeyEnv {value!r} must name an environment "
                             "variable (letters, digits, _), not hold the key itself")
        return value
    raise AssertionError(wire)


def parse_settings(section: Mapping[str, Any],
                   previous: Settings | None = None) -> tuple[Settings, list[str]]:
    """Settings from a client's `specedit` section, and one line per value it got wrong.

    The section is the whole truth: a key that is absent or null takes its default (editors
    leave out what the user has not set). A bad value keeps `previous`'s value, so a typo in
    the model name does not unload a working model. Unknown keys are ignored: editors keep
    their own client-side keys in the same section.
    """
    previous = previous or Settings()
    values: dict[str, Any] = {}
    problems: list[str] = []
    for wire, name in _WIRE_NAMES.items():
        if section.get(wire) is None:
            continue
        try:
            values[name] = _parse_value(wire, section[wire])
        except ValueError as exc:
            values[name] = getattr(previous, name)
            problems.append(f"{exc}; keeping {values[name]!r}")
    return Settings(**values), problems
