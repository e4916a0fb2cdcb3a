"""structlog, configured once for every ``custodia`` process.

Human-readable on a terminal, JSON lines otherwise. The :func:`redact` processor runs last
before rendering: it drops the value of any key that names a secret and masks anything that
looks like a token, an unseal key, a password assignment or an ``otpauth://`` URI, wherever it
appears in the event. Redaction is a safety net; code must not log secrets in the first place.

structlog itself is imported only by a process that logs: importing it costs tens of
milliseconds (it loads rich's tracebacks and pygments), more than a data command's whole round
trip. :func:`configure_on_import` configures it the moment anything first imports it.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import logging
import re
import sys
from collections.abc import Mapping, MutableMapping, Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any, TextIO

REDACTED = "[redactado]"

# Keys whose values are never logged, whatever they hold (matched case-insensitively).
SECRET_KEY = re.compile(
    r"(pass(word)?|contrase(n|ñ)a|secret|secreto|token|unseal|seed|semilla|otpauth|"
    r"private|privad[ao]|wrap|credential|credencial|authorization|cookie|api[_-]?key|codigo|"
    r"code|totp|key_base64|keys_base64|root_token|client_token)",
    re.IGNORECASE,
)
# Keys that look secret-ish but carry only facts (versions, ids, fingerprints, accessors).
SAFE_KEY = re.compile(
    r"(version|fingerprint|huella|_id$|^id$|accessor|_at$|ttl|expir)", re.IGNORECASE
)

# Values that look like secrets wherever they appear.
SECRET_VALUE = re.compile(
    r"(?:\b(?:hv[sbr]|[sbr])\.[A-Za-z0-9_\-]{20,}\b)"  # Vault / OpenBao tokens
    r"|(?:otpauth://\S+)"  # TOTP provisioning URIs (they hold the seed)
    r"|(?:\beyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+)"  # JWTs
    r"|(?:(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{40,}={0,2}(?![A-Za-z0-9+/=]))"  # long base64 (keys)
    r"|(?:-----BEGIN [A-Z ]*PRIVATE KEY-----)",
)
ASSIGNMENT = re.compile(r"(?i)\b(password|contrase(?:n|ñ)a|secret|token|passwd|pwd)\s*[=:]\s*\S+")


def _mask_text(text: str) -> str:
    text = SECRET_VALUE.sub(REDACTED, text)
    return ASSIGNMENT.sub(lambda m: f"{m.group(1)}={REDACTED}", text)


def _clean(value: Any, depth: int = 0) -> Any:
    if depth > 6:
        return REDACTED
    if isinstance(value, str):
        return _mask_text(value)
    if isinstance(value, bytes):
        return REDACTED
    if isinstance(value, Mapping):
        return {k: _clean_item(str(k), v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_clean(v, depth + 1) for v in value]
    if isinstance(value, BaseException):
        return _mask_text(f"{type(value).__name__}: {value}")
    return value


def _clean_item(key: str, value: Any, depth: int) -> Any:
    if SECRET_KEY.search(key) and not SAFE_KEY.search(key) and value not in (None, "", True, False):
        return REDACTED
    return _clean(value, depth)


def redact(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: remove secrets from every key and value of the event."""
    for key in list(event_dict):
        event_dict[key] = _clean_item(key, event_dict[key], 0)
    return event_dict


def processors(json_output: bool) -> list[Any]:
    """The processor chain, shared by :func:`configure` and the tests."""
    import structlog

    chain: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redact,
    ]
    if json_output:
        chain.append(structlog.processors.JSONRenderer(ensure_ascii=False))
    else:
        chain.append(structlog.dev.ConsoleRenderer(colors=False))
    return chain


class _Stderr:
    """``sys.stderr`` looked up at every write (it may be replaced after configuration)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()


def configure(stream: TextIO | None = None, level: str | None = None) -> None:
    """Configure structlog once: pretty on a terminal, JSON lines otherwise."""
    import structlog

    out: Any = stream if stream is not None else _Stderr()
    from custody.config import log_level

    name = level.upper() if level else log_level()
    numeric = logging.getLevelName(name)
    if not isinstance(numeric, int):
        numeric = logging.WARNING
    structlog.configure(
        processors=processors(json_output=not out.isatty()),
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )


def configure_on_import() -> None:
    """:func:`configure` now if structlog is already imported; otherwise right after the first
    import of structlog, wherever it happens (a command that never logs never imports it)."""
    if "structlog" in sys.modules:
        configure()
    elif not any(isinstance(finder, _ConfigureOnImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _ConfigureOnImport())


class _ConfigureOnImport(importlib.abc.MetaPathFinder):
    """Finds structlog as the other finders do, with a loader that configures it once loaded;
    then leaves ``sys.meta_path``."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname != "structlog":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _ThenConfigure(spec.loader)
        return spec


class _ThenConfigure(importlib.abc.Loader):
    """structlog's own loader, followed by :func:`configure`."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        configure()

    def __getattr__(self, name: str) -> Any:  # get_resource_reader, is_package, …
        return getattr(self._loader, name)
