"""Checks every request to the tune server passes before it is answered (issue 25).

The server is for the person who started it, not for any page their browser opens:

- ``Host`` must name the server as bound (``localhost``, ``127.0.0.1`` or ``[::1]`` on
  loopback), with its port: a DNS-rebinding page reaches the server under its own name and is
  refused (421). Bound to a wildcard address (``0.0.0.0``, ``::``) any name is taken, since
  every request then needs the token, which such a page never has.
- A state-changing request (anything but GET/HEAD) must be ``Content-Type: application/json``
  (a cross-site form or ``text/plain`` fetch cannot send that without CORS, which the server
  never grants), and an ``Origin``, when the browser sends one, must be the server's own.
- A body is read only up to ``MAX_BODY`` bytes, whatever ``Content-Length`` claims: missing is
  411, negative or not a number 400, over the cap 413, and the connection is then closed.
- A JSON body must be an object, nested at most ``MAX_DEPTH`` deep.

Every refusal is a ``Refused``: an HTTP status and a one-line reason.
"""

from __future__ import annotations

import json
import math
from http import HTTPStatus
from typing import Any

MAX_BODY = 1 << 20  # bytes of a request body
MAX_DEPTH = 8  # levels of JSON nesting ({"thresholds": {"jitter": {...}}} is 3)
MAX_NAME = 100  # characters of a preset's name
LOOPBACK = ("127.0.0.1", "localhost", "::1")
WILDCARD = ("0.0.0.0", "::", "")


class Refused(Exception):
    """A request the server will not answer: ``status`` and a one-line ``reason``."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = int(status), reason


def _with_port(name: str, port: int) -> list[str]:
    shown = f"[{name}]" if ":" in name else name
    return [f"{shown}:{port}"] + ([shown] if port == 80 else [])


def allowed_hosts(host: str, port: int) -> set[str] | None:
    """The ``Host`` values the server answers (lower case), None for any (a wildcard bind)."""
    if host in WILDCARD:
        return None
    names = LOOPBACK if host in LOOPBACK else (host,)
    return {value.lower() for name in names for value in _with_port(name, port)}


def check_host(header: str | None, allowed: set[str] | None) -> None:
    if allowed is None:
        return
    if not header:
        raise Refused(HTTPStatus.BAD_REQUEST, "no Host header: send the address the server "
                                               "is bound to")
    if header.strip().lower() not in allowed:
        raise Refused(HTTPStatus.MISDIRECTED_REQUEST,
                      f"Host {header[:100]!r} is not this server's address "
                      f"({', '.join(sorted(allowed))})")


def check_state_change(content_type: str | None, origin: str | None, host: str | None) -> None:
    """A POST (or any method but GET/HEAD) is JSON, from no origin or this server's own."""
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind != "application/json":
        raise Refused(HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                      f"Content-Type must be application/json, not {kind or 'none'!r}")
    if origin is not None and origin.strip().lower() != f"http://{(host or '').strip().lower()}":
        raise Refused(HTTPStatus.FORBIDDEN, f"Origin {origin[:100]!r} is not this server's own "
                                            f"(http://{(host or '')[:100]})")


def body_length(header: str | None, chunked: bool = False) -> int:
    """The body's length from ``Content-Length``, refused unless it is 0..``MAX_BODY``."""
    if chunked:
        raise Refused(HTTPStatus.LENGTH_REQUIRED, "chunked bodies are not accepted: send "
                                                  "Content-Length")
    if header is None:
        raise Refused(HTTPStatus.LENGTH_REQUIRED, "a request body needs Content-Length")
    text = header.strip()
    if not text.isdigit() or not text.isascii():
        raise Refused(HTTPStatus.BAD_REQUEST,
                      f"Content-Length must be a whole number of bytes, not {header[:40]!r}")
    if len(text) > 12 or int(text) > MAX_BODY:
        raise Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                      f"request body over {MAX_BODY} bytes (Content-Length {text[:40]})")
    return int(text)


def _depth(value: Any) -> int:
    """How deep ``value`` nests (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level + 1)
            if deepest > MAX_DEPTH:
                break
            stack.extend((child, level + 1) for child in
                         (item.values() if isinstance(item, dict) else item))
    return deepest


def parse_body(raw: bytes) -> dict:
    """A JSON object from ``raw``; anything else is a 400 that says what is wrong."""
    try:
        body = json.loads(raw.decode("utf-8")) if raw.strip() else {}
    except UnicodeDecodeError:
        raise Refused(HTTPStatus.BAD_REQUEST, "the request body is not UTF-8") from None
    except RecursionError:
        raise Refused(HTTPStatus.BAD_REQUEST,
                      f"the request body nests deeper than {MAX_DEPTH} levels") from None
    except ValueError as err:
        raise Refused(HTTPStatus.BAD_REQUEST, f"the request body is not JSON: {err}") from None
    if not isinstance(body, dict):
        raise Refused(HTTPStatus.BAD_REQUEST,
                      f"the request body must be a JSON object, not {type(body).__name__}")
    if _depth(body) > MAX_DEPTH:
        raise Refused(HTTPStatus.BAD_REQUEST,
                      f"the request body nests deeper than {MAX_DEPTH} levels")
    return body


def field(body: dict, name: str, kinds: type | tuple[type, ...], default: Any = ...) -> Any:
    """``body[name]``, of one of ``kinds``; a 400 naming ``name`` when missing or mistyped."""
    if name not in body:
        if default is ...:
            raise Refused(HTTPStatus.BAD_REQUEST, f"the request body has no {name!r}")
        return default
    value = body[name]
    kinds = kinds if isinstance(kinds, tuple) else (kinds,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        raise Refused(HTTPStatus.BAD_REQUEST,
                      f"{name} must be {' or '.join(_kind(k) for k in kinds)}, "
                      f"not {short(value)}")
    return value


def _kind(kind: type) -> str:
    return {dict: "an object", str: "a string", bool: "true or false",
            type(None): "null"}.get(kind, kind.__name__)


def preset_name(value: Any) -> str | None:
    """A preset's name as sent: a string of at most ``MAX_NAME`` characters, or null."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise Refused(HTTPStatus.BAD_REQUEST, f"name must be a string, not {short(value)}")
    if len(value) > MAX_NAME:
        raise Refused(HTTPStatus.BAD_REQUEST,
                      f"name is {len(value)} characters long: at most {MAX_NAME}")
    return value


def query_int(query: dict[str, list[str]], name: str, count: int) -> int:
    """A query parameter that indexes ``count`` things: 0..count-1."""
    text = query_value(query, name)
    if not (text.isdigit() and text.isascii() and len(text) < 10 and int(text) < count):
        raise Refused(HTTPStatus.BAD_REQUEST,
                      f"{name} must be a whole number from 0 to {count - 1}, not {text[:40]!r}")
    return int(text)


def query_float(query: dict[str, list[str]], name: str) -> float:
    """A finite number from the query (a threshold: any value a preset may hold)."""
    text = query_value(query, name)
    try:
        value = float(text[:40])
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise Refused(HTTPStatus.BAD_REQUEST,
                      f"{name} must be a finite number, not {text[:40]!r}")
    return value


def query_value(query: dict[str, list[str]], name: str) -> str:
    values = query.get(name)
    if not values:
        raise Refused(HTTPStatus.BAD_REQUEST, f"the query has no {name!r}")
    return values[0]


def short(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters (bodies can be a mebibyte)."""
    if isinstance(value, dict | list) and _depth(value) > MAX_DEPTH:
        return f"a {type(value).__name__} nested too deep"
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def one_line(message: str, limit: int = 400) -> str:
    """An error message on one line of at most ``limit`` characters."""
    text = " ".join(str(message).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."
