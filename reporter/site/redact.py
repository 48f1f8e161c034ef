"""Keep credentials out of anything the reporter publishes (the site, run.json, logs).

A run's config can carry what a user typed or what an environment held: S3 keys, tokens,
URLs with a user and password in them. Values under secret-looking keys are replaced, and in
every other string the things that look like credentials are cut out.
"""

from __future__ import annotations

import os
import re

HIDDEN = "(hidden)"

# Key names whose values are never shown. "auth" but not "author".
_SECRET_NAME = re.compile(
    r"secret|passw|pwd|token|credential|private|api[_-]?key|access[_-]?key|session|auth(?!or)"
    r"|signature|cookie",
    re.IGNORECASE,
)
_AWS_KEY_ID = re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b")
_URL_USERINFO = re.compile(r"\b([a-z][a-z0-9+.-]*://)[^/@\s]+@", re.IGNORECASE)
# Presigned URLs carry their credential in the query string.
_URL_QUERY = re.compile(r"\b([a-z][a-z0-9+.-]*://[^?#\s]*)\?[^#\s]*", re.IGNORECASE)
# Environment values shorter than this are too likely to occur by chance in ordinary text.
_MIN_ENV_SECRET = 8
# Shell variables that match the pattern above ("pwd") but hold the working directory.
_NOT_SECRET = {"PWD", "OLDPWD"}


def is_secret_name(name: str) -> bool:
    """True if a key or variable of this name holds a credential (``aws_secret_access_key``...)."""
    return bool(_SECRET_NAME.search(str(name)))


def environment_secrets(environ=None) -> list[str]:
    """Values of environment variables whose names look secret, longest first."""
    environ = os.environ if environ is None else environ
    values = {
        v
        for k, v in environ.items()
        if is_secret_name(k) and k not in _NOT_SECRET and len(v) >= _MIN_ENV_SECRET
        # A value naming an existing file or folder is a location, not a credential.
        and not (v.startswith("/") and os.path.exists(v))
    }
    return sorted(values, key=len, reverse=True)


def redact(obj, *, environ=None):
    """A copy of a JSON-like value with every credential replaced by ``HIDDEN``.

    Parameters
    ----------
    obj : dict, list, str or scalar
        Typically a run's metadata or config.
    environ : mapping, optional
        Environment whose secret-looking values are cut out of strings (default: os.environ).
    """
    return _redact(obj, environment_secrets(environ))


def redact_text(text: str, *, environ=None) -> str:
    """``text`` with URL passwords, presigned queries, AWS key ids and env secrets cut out."""
    return _redact_text(text, environment_secrets(environ))


def _redact(obj, secrets):
    if isinstance(obj, dict):
        return {
            str(k): HIDDEN if is_secret_name(k) and v not in (None, "") else _redact(v, secrets)
            for k, v in obj.items()
        }
    if isinstance(obj, (list, tuple)):
        return [_redact(v, secrets) for v in obj]
    if isinstance(obj, str):
        return _redact_text(obj, secrets)
    return obj


def _redact_text(text: str, secrets) -> str:
    for value in secrets:
        text = text.replace(value, HIDDEN)
    text = _URL_USERINFO.sub(lambda m: m.group(1) + HIDDEN + "@", text)
    text = _URL_QUERY.sub(lambda m: m.group(1) + "?" + HIDDEN, text)
    return _AWS_KEY_ID.sub(HIDDEN, text)
