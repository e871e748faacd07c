"""PostgreSQL store locations as users write them, checked and shown without secrets.

A location is a libpq connection URI (`postgresql://user@host:5432/db?sslmode=require`,
also `postgres://`) or a libpq key=value string (`service=procctl`, `host=/run/postgresql
dbname=procctl`). They are read here the way libpq reads them (fe-connect.c): the
password of a URI is what lies between the first `:` of its user part and the first `@`
before any `/`; a key=value value may be 'quoted', with backslash escapes.

Secrets are `password`, and the two other libpq settings that hold one (`sslpassword`,
the client key's passphrase, and `oauth_client_secret`). `redacted` shows each as `***`,
also in text that is otherwise invalid, so a message never prints one.

Standard library only; nothing is imported here until a location is a URL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from procctl.store.errors import StoreError

URI_PREFIXES = ("postgresql://", "postgres://")
SECRET_KEYS = frozenset({"password", "sslpassword", "oauth_client_secret"})
MASK = "***"

#: libpq's connection keywords (PostgreSQL 18); a URI's query also takes `ssl`
KEYWORDS = frozenset({
    "host", "hostaddr", "port", "dbname", "user", "password", "passfile", "require_auth",
    "channel_binding", "connect_timeout", "client_encoding", "options", "application_name",
    "fallback_application_name", "keepalives", "keepalives_idle", "keepalives_interval",
    "keepalives_count", "tcp_user_timeout", "replication", "gssencmode", "sslmode",
    "sslnegotiation", "requiressl", "sslcompression", "sslcert", "sslkey", "sslkeylogfile",
    "sslpassword", "sslcertmode", "sslrootcert", "sslcrl", "sslcrldir", "sslsni",
    "requirepeer", "ssl_min_protocol_version", "ssl_max_protocol_version",
    "min_protocol_version", "max_protocol_version", "krbsrvname", "gsslib", "gssdelegation",
    "service", "target_session_attrs", "load_balance_hosts", "scram_client_key",
    "scram_server_key", "oauth_issuer", "oauth_client_id", "oauth_client_secret",
    "oauth_scope",
})
_URI_ONLY = frozenset({"ssl"})
#: a secret in text too broken to read: `password = value` or `password='va lue'`
_LOOSE_SECRET = re.compile(
    r"(?i)(?<![\w])(" + "|".join(sorted(SECRET_KEYS)) + r")(\s*=\s*)('(?:[^'\\]|\\.)*'?|\S*)")
_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


@dataclass
class _Reading:
    """What reading a location found: the spans of secret values (start, end) in the
    text, whether any secret is non-empty, and the first problem (None: valid)."""

    secrets: list[tuple[int, int]] = field(default_factory=list)
    has_secret: bool = False
    problem: str | None = None

    def secret(self, start: int, end: int, value: str) -> None:
        self.secrets.append((start, end))
        self.has_secret = self.has_secret or value != ""

    def fail(self, problem: str) -> _Reading:
        if self.problem is None:
            self.problem = problem
        return self


def is_uri(text: str) -> bool:
    """Whether `text` is written as a URI (`postgresql://` or `postgres://`)."""
    return text.startswith(URI_PREFIXES)


def _read(text: str) -> _Reading:
    if is_uri(text):
        return _read_uri(text)
    if "=" not in text:
        return _Reading().fail(
            "it is neither a PostgreSQL URL (postgresql://[user@]host[:port]/dbname) nor "
            "key=value connection settings (such as service=NAME, or "
            "host=/run/postgresql dbname=NAME)")
    return _read_conninfo(text)


def _read_conninfo(text: str) -> _Reading:
    """libpq's key=value string: `key = value` pairs apart by spaces; a value is a word
    or a 'quoted' string, `\\` escaping the next character in either."""
    reading = _Reading()
    i, size = 0, len(text)
    while True:
        while i < size and text[i].isspace():
            i += 1
        if i >= size:
            break
        start = i
        while i < size and text[i] != "=" and not text[i].isspace():
            i += 1
        key = text[start:i]
        while i < size and text[i].isspace():
            i += 1
        if i >= size or text[i] != "=" or not key:
            reading.fail(f"missing '=' after {key!r} in the key=value connection settings"
                         if key else "a '=' with no setting name before it")
            break
        i += 1
        while i < size and text[i].isspace():
            i += 1
        value_start = i
        value, i, closed = _conninfo_value(text, i)
        if key.lower() in SECRET_KEYS:
            reading.secret(value_start, i, value)
        if not closed:
            reading.fail(f"the quoted value of {key!r} has no closing quote")
            break
        if key not in KEYWORDS:
            reading.fail(f"{key!r} is not a PostgreSQL connection setting")
    return reading


def _conninfo_value(text: str, i: int) -> tuple[str, int, bool]:
    """The value starting at `i`: (value, where it ends, whether a quote was closed)."""
    chars: list[str] = []
    size = len(text)
    if i < size and text[i] == "'":
        i += 1
        while i < size:
            if text[i] == "\\" and i + 1 < size:
                chars.append(text[i + 1])
                i += 2
            elif text[i] == "'":
                return "".join(chars), i + 1, True
            else:
                chars.append(text[i])
                i += 1
        return "".join(chars), i, False
    while i < size and not text[i].isspace():
        if text[i] == "\\" and i + 1 < size:
            chars.append(text[i + 1])
            i += 2
        else:
            chars.append(text[i])
            i += 1
    return "".join(chars), i, True


def _read_uri(text: str) -> _Reading:
    """libpq's URI: scheme://[user[:password]@][host[:port][,...]][/dbname][?k=v&...]."""
    from urllib.parse import unquote

    reading = _Reading()
    start = text.index("://") + 3
    i = start
    while i < len(text) and text[i] not in "@/":
        i += 1
    if i < len(text) and text[i] == "@":
        colon = text.find(":", start, i)
        if colon != -1:
            reading.secret(colon + 1, i, text[colon + 1:i])
        i += 1
    else:
        i = start
    number = 0
    while True:
        number += 1
        if i < len(text) and text[i] == "[":
            close = text.find("]", i)
            if close == -1:
                return reading.fail(f"host {number}: an IPv6 address with no closing ']'")
            i = close + 1
        else:
            while i < len(text) and text[i] not in ":/?,":
                i += 1
        if i < len(text) and text[i] == ":":
            port_start = i = i + 1
            while i < len(text) and text[i] not in "/?,":
                i += 1
            port = text[port_start:i]
            if port and not (port.isdigit() and port.isascii() and 0 < int(port) < 65536):
                reading.fail(f"host {number}: the port is not a number from 1 to 65535")
        elif i < len(text) and text[i] not in "/?,":
            return reading.fail(f"host {number}: unexpected {text[i]!r} after the host")
        if i < len(text) and text[i] == ",":
            i += 1
            continue
        break
    if i < len(text) and text[i] == "/":
        query = text.find("?", i)
        i = len(text) if query == -1 else query
    if i < len(text) and text[i] == "?":
        i += 1
        for part in _spans(text, i, "&"):
            piece = text[part[0]:part[1]]
            key, sep, value = piece.partition("=")
            name = unquote(key)
            if name.lower() in SECRET_KEYS:
                reading.secret(part[0] + len(key) + 1, part[1], value)
            if not sep:
                reading.fail(f"the query parameter {name!r} has no '=value'")
            elif "=" in value:
                reading.fail(f"the query parameter {name!r} has a second '='")
            elif name not in KEYWORDS | _URI_ONLY:
                reading.fail(f"{name!r} is not a PostgreSQL connection setting")
    if _PERCENT.search(text) and reading.problem is None:
        reading.fail("a '%' that does not start a %XX escape")
    return reading


def _spans(text: str, start: int, separator: str) -> list[tuple[int, int]]:
    spans = []
    while start <= len(text):
        end = text.find(separator, start)
        end = len(text) if end == -1 else end
        if end > start:
            spans.append((start, end))
        start = end + 1
    return spans


def problem(text: str) -> str | None:
    """What is wrong with `text` as a store location, or None when libpq can read it.
    The answer never quotes a value (it could be a secret)."""
    return _read(text).problem


def is_store_url(text: str) -> bool:
    """Whether `text` is a PostgreSQL location: a URI or key=value settings."""
    return bool(text.strip()) and problem(text) is None


def has_password(url: str) -> bool:
    """Whether `url` holds a password (or another secret), even when it is invalid."""
    return _read(url).has_secret or any(
        match.group(3).strip("'") for match in _LOOSE_SECRET.finditer(_without_uri(url)))


def redacted(url: str) -> str:
    """`url` for messages: every password (and other secret) shown as `***`."""
    reading = _read(url)
    shown = url
    for start, end in sorted(reading.secrets, reverse=True):
        if end > start:
            shown = shown[:start] + MASK + shown[end:]
    if is_uri(url):
        return shown
    # past where the text stops making sense, any `password=...` still goes
    return _LOOSE_SECRET.sub(lambda m: m.group(1) + m.group(2) + (MASK if m.group(3) else ""),
                             shown)


def _without_uri(url: str) -> str:
    """The text the loose search looks in: a URI's secrets are read exactly."""
    return "" if is_uri(url) else url


def require_driver(url: str) -> None:
    """StoreError when psycopg, the PostgreSQL driver, cannot be imported."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise StoreError(
            f"the store is PostgreSQL ({redacted(url)}) and its driver is not installed",
            hint="pip install 'procctl[postgres]'") from None
