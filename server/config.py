"""Settings: every knob comes from an environment variable with a documented default.

`load_settings(os.environ)` either returns a complete, validated `Settings` or raises
`SettingsError` whose message names the variable, the bad value and the fix; the
entry point turns that into one line on stderr and exit code 2.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class SettingsError(Exception):
    """A user-supplied setting is unusable; the message says which and how to fix it."""


class ReloadMode(Enum):
    OFF = "off"
    ASSETS = "assets"  # push a fresh `ready` when public/ or templates/ change
    SERVER = "server"  # also restart the Python process when server/ changes


@dataclass(frozen=True, slots=True)
class Settings:
    host: str | None = None  # None: every interface
    port: int = 3000
    key_file: Path | None = None
    cert_file: Path | None = None
    certs_dir: Path = PROJECT_ROOT / "certs"
    state_file: Path | None = PROJECT_ROOT / ".state" / "peers.json"
    public_dir: Path = PROJECT_ROOT / "public"
    templates_dir: Path = PROJECT_ROOT / "templates"
    ice_servers: list[dict[str, Any]] = field(default_factory=list)
    max_clients: int = 1000
    max_message_bytes: int = 64 * 1024
    max_name_length: int = 64
    rate_limit: float = 50.0  # messages per second per socket
    rate_burst: int = 200
    address_rate_limit: float = 200.0  # messages per second per client address; 0: off
    rename_rate: float = 1.0  # renames per second per client address; 0: off
    join_rate: float = 5.0  # joins per second per client address (burst 20); 0: off
    identify_timeout: float = 10.0  # seconds a socket may stay unidentified
    send_queue_bytes: int = 1024 * 1024  # a socket further behind than this is closed
    heartbeat: float = 15.0  # seconds between pings; a silent socket dies after ~1.5x
    resume_grace: float = 20.0  # seconds a vanished peer stays listed, resumable
    allowed_origins: frozenset[str] = frozenset()
    ring_timeout: float = 30.0  # seconds an unanswered call rings (client side)
    reload: ReloadMode = ReloadMode.ASSETS
    echo: bool = True
    echo_max_calls: int = 4
    max_call_size: int = 6  # people in one group call
    echo_max_seconds: float = 600.0
    log_level: str = "INFO"
    minify: bool = True
    max_connections_per_address: int = 64  # open TCP connections per client address; 0: no cap
    handshake_timeout: float = 10.0  # seconds from accept to a finished TLS handshake
    idle_timeout: float = 15.0  # seconds a connection may go without a complete request
    shutdown_timeout: float = 1.5


# (variable, meaning, default shown to users) — the README table mirrors this list.
DOCUMENTED = [
    ("HOST", "bind address", "all interfaces"),
    ("PORT", "TCP port", "3000"),
    ("KEY", "PEM private key file (with CERT)", "generated under certs/"),
    ("CERT", "PEM certificate chain file (with KEY)", "generated under certs/"),
    ("CERTS_DIR", "where the generated CA and certificate live", "certs/"),
    ("STATE_FILE", "where listed peers are kept across a restart (empty: nowhere)", ".state/peers.json"),
    ("ICE_SERVERS", 'JSON list of RTCIceServer objects, e.g. [{"urls":"stun:host:3478"}]', "[]"),
    ("MAX_CLIENTS", "WebSocket connections accepted at once (503 past it)", "1000"),
    ("MAX_MESSAGE_BYTES", "largest signalling frame (close 1009 past it)", "65536"),
    ("MAX_NAME_LENGTH", "longest display name, in characters", "64"),
    ("RATE_LIMIT", "signalling messages per second per socket", "50"),
    ("RATE_BURST", "burst allowance of the rate limit", "200"),
    ("ADDRESS_RATE_LIMIT", "signalling messages per second per client address (0: no limit)", "200"),
    ("RENAME_RATE", "renames per second per client address, burst 5 (0: no limit)", "1"),
    ("JOIN_RATE", "joins per second per client address, burst 20; more wait their turn (0: no limit)", "5"),
    ("IDENTIFY_TIMEOUT", "seconds a socket may stay connected without identifying", "10"),
    ("SEND_QUEUE_BYTES", "bytes queued for one slow socket before it is closed", "1048576"),
    ("HEARTBEAT", "seconds between WebSocket pings", "15"),
    ("RESUME_GRACE", "seconds a dropped peer stays listed and resumable", "20"),
    ("ALLOWED_ORIGINS", "extra allowed Origin values, comma-separated", "same host only"),
    ("RING_TIMEOUT", "seconds an unanswered call rings", "30"),
    ("RELOAD", "off | assets | server (also restart on server/ edits)", "assets"),
    ("ECHO", "run the 'Echo test' peer (1/0)", "1"),
    ("ECHO_MAX_CALLS", "simultaneous echo calls", "4"),
    ("MAX_CALL_SIZE", "people in one group call (2 to 16)", "6"),
    ("ECHO_MAX_SECONDS", "longest echo call", "600"),
    ("LOG_LEVEL", "DEBUG, INFO, WARNING or ERROR", "INFO"),
    ("MINIFY", "serve JS and CSS without comments and layout whitespace (1/0)", "1"),
    ("MAX_CONNECTIONS_PER_ADDRESS", "open TCP connections per client address (0: no cap)", "64"),
    ("HANDSHAKE_TIMEOUT", "seconds a new connection has to finish its TLS handshake", "10"),
    ("IDLE_TIMEOUT", "seconds a connection may go without a complete HTTP request", "15"),
]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _int(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(
            f"{name}={raw!r} is not a whole number; set {name} to an integer from {lo} to {hi}"
        ) from None
    if not lo <= value <= hi:
        raise SettingsError(f"{name}={raw!r} is out of range; set {name} between {lo} and {hi}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, lo: float, hi: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(
            f"{name}={raw!r} is not a number; set {name} to a number from {lo:g} to {hi:g}"
        ) from None
    if not lo <= value <= hi:
        raise SettingsError(f"{name}={raw!r} is out of range; set {name} between {lo:g} and {hi:g}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise SettingsError(f"{name}={env[name]!r} is not a switch; set {name} to 1 or 0")


def _file(env: Mapping[str, str], name: str) -> Path | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    path = Path(raw).expanduser()
    if not path.is_file():
        raise SettingsError(
            f"{name}={raw!r}: no such file ({path.resolve()}); point {name} at an existing "
            "PEM file, or unset KEY and CERT to use the generated certificate"
        )
    return path


def _ice_servers(env: Mapping[str, str]) -> list[dict[str, Any]]:
    raw = env.get("ICE_SERVERS", "").strip()
    if not raw:
        return []
    fix = 'set ICE_SERVERS to a JSON list such as [{"urls":"stun:192.168.1.2:3478"}]'
    try:
        value = json.loads(raw)
    except ValueError:
        raise SettingsError(f"ICE_SERVERS={raw!r} is not valid JSON; {fix}") from None
    if not isinstance(value, list) or not all(
        isinstance(s, dict) and isinstance(s.get("urls"), str | list) for s in value
    ):
        raise SettingsError(f"ICE_SERVERS={raw!r} is not a list of objects with 'urls'; {fix}")
    return value


def _reload(env: Mapping[str, str]) -> ReloadMode:
    raw = env.get("RELOAD", "").strip().lower()
    if not raw:
        return ReloadMode.ASSETS
    if raw in _FALSE:
        return ReloadMode.OFF
    if raw in _TRUE:
        return ReloadMode.ASSETS
    for mode in ReloadMode:
        if raw == mode.value:
            return mode
    raise SettingsError(f"RELOAD={env['RELOAD']!r} is not a reload mode; set RELOAD to off, assets or server")


def _dir(env: Mapping[str, str], name: str, default: Path) -> Path:
    raw = env.get(name, "").strip()
    return Path(raw).expanduser().resolve() if raw else default


def _state_file(env: Mapping[str, str]) -> Path | None:
    if "STATE_FILE" in env and not env["STATE_FILE"].strip():
        return None  # explicitly empty: do not persist
    return _dir(env, "STATE_FILE", PROJECT_ROOT / ".state" / "peers.json")


def port_unusable(host: str | None, port: int, reason: str) -> SettingsError:
    """The error for a port the server cannot bind (in use, no permission, bad HOST)."""
    return SettingsError(
        f"PORT={port} on HOST={host or '(all interfaces)'} cannot be used ({reason}); "
        "set PORT to a free port or stop the other server"
    )


def load_settings(env: Mapping[str, str]) -> Settings:
    """Read and validate every setting; raise SettingsError on the first bad one."""
    key, cert = _file(env, "KEY"), _file(env, "CERT")
    if (key is None) != (cert is None):
        given, missing = ("KEY", "CERT") if key else ("CERT", "KEY")
        raise SettingsError(
            f"{given} is set but {missing} is not; set both to PEM files, or neither to use "
            "the generated certificate"
        )
    level = env.get("LOG_LEVEL", "").strip().upper() or "INFO"
    if not isinstance(logging.getLevelName(level), int):
        raise SettingsError(
            f"LOG_LEVEL={env['LOG_LEVEL']!r} is not a log level; set LOG_LEVEL to DEBUG, INFO, "
            "WARNING or ERROR"
        )
    origins = frozenset(
        o.strip().rstrip("/").lower() for o in env.get("ALLOWED_ORIGINS", "").split(",") if o.strip()
    )
    return Settings(
        host=env.get("HOST", "").strip() or None,
        port=_int(env, "PORT", 3000, 1, 65535),
        key_file=key,
        cert_file=cert,
        certs_dir=_dir(env, "CERTS_DIR", PROJECT_ROOT / "certs"),
        state_file=_state_file(env),
        ice_servers=_ice_servers(env),
        max_clients=_int(env, "MAX_CLIENTS", 1000, 1, 1_000_000),
        max_message_bytes=_int(env, "MAX_MESSAGE_BYTES", 64 * 1024, 1024, 16 * 1024 * 1024),
        max_name_length=_int(env, "MAX_NAME_LENGTH", 64, 1, 1024),
        rate_limit=_float(env, "RATE_LIMIT", 50.0, 0.1, 1_000_000),
        rate_burst=_int(env, "RATE_BURST", 200, 1, 1_000_000),
        address_rate_limit=_float(env, "ADDRESS_RATE_LIMIT", 200.0, 0, 1_000_000),
        rename_rate=_float(env, "RENAME_RATE", 1.0, 0, 1000),
        join_rate=_float(env, "JOIN_RATE", 5.0, 0, 1000),
        identify_timeout=_float(env, "IDENTIFY_TIMEOUT", 10.0, 0.1, 3600),
        send_queue_bytes=_int(env, "SEND_QUEUE_BYTES", 1024 * 1024, 64 * 1024, 1024**3),
        heartbeat=_float(env, "HEARTBEAT", 15.0, 0.1, 3600),
        resume_grace=_float(env, "RESUME_GRACE", 20.0, 0, 3600),
        allowed_origins=origins,
        ring_timeout=_float(env, "RING_TIMEOUT", 30.0, 1, 3600),
        reload=_reload(env),
        echo=_bool(env, "ECHO", True),
        echo_max_calls=_int(env, "ECHO_MAX_CALLS", 4, 0, 1000),
        max_call_size=_int(env, "MAX_CALL_SIZE", 6, 2, 16),
        echo_max_seconds=_float(env, "ECHO_MAX_SECONDS", 600.0, 1, 86400),
        log_level=level,
        minify=_bool(env, "MINIFY", True),
        max_connections_per_address=_int(env, "MAX_CONNECTIONS_PER_ADDRESS", 64, 0, 1_000_000),
        handshake_timeout=_float(env, "HANDSHAKE_TIMEOUT", 10.0, 0.1, 3600),
        idle_timeout=_float(env, "IDLE_TIMEOUT", 15.0, 0.1, 86400),
    )
