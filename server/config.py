"""Settings: every knob comes from an environment variable with a documented default.

`SETTINGS` declares each one once: variable, `Settings` field, parser, default, range and
the README's description. `Settings` takes its defaults from it, `load_settings` reads
through it, the hub's limits are built from it (`hub_limits`), and a unit test checks the
README's settings table row by row against it.

`load_settings(os.environ)` either returns a complete, validated `Settings` or raises
`SettingsError` whose message names the variable, the bad value and the fix; the
entry point turns that into one line on stderr and exit code 2.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import re
from collections.abc import Callable, Mapping
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


Env = Mapping[str, str]
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True, slots=True)
class Setting:
    """One environment variable: how it is read and how the README documents it."""

    env: str  # the variable
    field: str  # the `Settings` attribute it sets
    default: Any
    parse: Callable[[Env, Setting], Any]  # the value from the environment; raises SettingsError
    help: str  # the README's "meaning" cell (Markdown)
    shown: str  # the README's "default" cell (Markdown)
    low: float | None = None  # accepted range of a number, both ends included
    high: float | None = None
    hub: bool = False  # also a `HubLimits` field of the same name

    def read(self, env: Env) -> Any:
        return self.parse(env, self)


# --- parsers ---------------------------------------------------------------------------------


def _whole(env: Env, s: Setting) -> int:
    raw = env.get(s.env, "").strip()
    if not raw:
        return int(s.default)
    lo, hi = int(s.low or 0), int(s.high or 0)
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(
            f"{s.env}={raw!r} is not a whole number; set {s.env} to an integer from {lo} to {hi}"
        ) from None
    if not lo <= value <= hi:
        raise SettingsError(f"{s.env}={raw!r} is out of range; set {s.env} between {lo} and {hi}")
    return value


def _number(env: Env, s: Setting) -> float:
    raw = env.get(s.env, "").strip()
    if not raw:
        return float(s.default)
    lo, hi = float(s.low or 0), float(s.high or 0)
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(
            f"{s.env}={raw!r} is not a number; set {s.env} to a number from {lo:g} to {hi:g}"
        ) from None
    if not lo <= value <= hi:
        raise SettingsError(f"{s.env}={raw!r} is out of range; set {s.env} between {lo:g} and {hi:g}")
    return value


def _switch(env: Env, s: Setting) -> bool:
    raw = env.get(s.env, "").strip().lower()
    if not raw:
        return bool(s.default)
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise SettingsError(f"{s.env}={env[s.env]!r} is not a switch; set {s.env} to 1 or 0")


def _text(env: Env, s: Setting) -> Any:
    return env.get(s.env, "").strip() or s.default


def _pem_file(env: Env, s: Setting) -> Path | None:
    raw = env.get(s.env, "").strip()
    if not raw:
        return None
    path = Path(raw).expanduser()
    if not path.is_file():
        raise SettingsError(
            f"{s.env}={raw!r}: no such file ({path.resolve()}); point {s.env} at an existing "
            "PEM file, or unset KEY and CERT to use the generated certificate"
        )
    return path


def _directory(env: Env, s: Setting) -> Path:
    raw = env.get(s.env, "").strip()
    return Path(raw).expanduser().resolve() if raw else Path(s.default)


def _optional_path(env: Env, s: Setting) -> Path | None:
    if s.env in env and not env[s.env].strip():
        return None  # explicitly empty: do not persist
    return _directory(env, s)


def _ice_servers(env: Env, s: Setting) -> list[dict[str, Any]]:
    raw = env.get(s.env, "").strip()
    if not raw:
        return []
    fix = 'set ICE_SERVERS to a JSON list such as [{"urls":"stun:192.168.1.2:3478"}]'
    try:
        value = json.loads(raw)
    except ValueError:
        raise SettingsError(f"ICE_SERVERS={raw!r} is not valid JSON; {fix}") from None
    if not isinstance(value, list) or not all(
        isinstance(server, dict) and isinstance(server.get("urls"), str | list) for server in value
    ):
        raise SettingsError(f"ICE_SERVERS={raw!r} is not a list of objects with 'urls'; {fix}")
    return value


def _origins(env: Env, s: Setting) -> frozenset[str]:
    return frozenset(o.strip().rstrip("/").lower() for o in env.get(s.env, "").split(",") if o.strip())


def _reload(env: Env, s: Setting) -> ReloadMode:
    raw = env.get(s.env, "").strip().lower()
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


def _redis_url(env: Env, s: Setting) -> str | None:
    raw = env.get(s.env, "").strip()
    if not raw:
        return None
    if "://" not in raw or raw.split("://", 1)[0].lower() not in ("redis", "rediss", "unix"):
        raise SettingsError(
            f"REDIS_URL={raw!r} is not a Redis URL; set REDIS_URL to e.g. redis://127.0.0.1:6379/0 "
            "(or unset it to run a single instance)"
        )
    return raw


CLUSTER_SECRET_MIN = 16


def _cluster_secret(env: Env, s: Setting) -> str | None:
    raw = env.get(s.env, "").strip()
    if raw and len(raw) < CLUSTER_SECRET_MIN:
        raise SettingsError(
            f"CLUSTER_SECRET is {len(raw)} characters; set at least {CLUSTER_SECRET_MIN} (the same on every "
            "instance), or unset it to use the one kept in the certs directory"
        )
    return raw or None


def _log_level(env: Env, s: Setting) -> str:
    level = env.get(s.env, "").strip().upper() or str(s.default)
    if not isinstance(logging.getLevelName(level), int):
        raise SettingsError(
            f"LOG_LEVEL={env['LOG_LEVEL']!r} is not a log level; set LOG_LEVEL to DEBUG, INFO, "
            "WARNING or ERROR"
        )
    return level


def _whole_setting(
    env: str, name: str, default: int, low: int, high: int, help: str, *, hub: bool = False
) -> Setting:
    return Setting(env, name, default, _whole, help, f"`{default}`", low, high, hub)


def _number_setting(
    env: str, name: str, default: float, low: float, high: float, help: str, *, hub: bool = False
) -> Setting:
    return Setting(env, name, default, _number, help, f"`{default:g}`", low, high, hub)


def _switch_setting(env: str, name: str, default: bool, help: str) -> Setting:
    return Setting(env, name, default, _switch, help, f"`{int(default)}`")


# --- the settings ------------------------------------------------------------------------------
# In README order. `help` and `shown` are the README table's cells, word for word.

SETTINGS: tuple[Setting, ...] = (
    Setting("HOST", "host", None, _text, "bind address", "all interfaces"),
    _whole_setting("PORT", "port", 3000, 1, 65535, "TCP port"),
    Setting(
        "KEY", "key_file", None, _pem_file, "PEM private key file (with CERT)", "generated under `certs/`"
    ),
    Setting(
        "CERT",
        "cert_file",
        None,
        _pem_file,
        "PEM certificate chain file (with KEY)",
        "generated under `certs/`",
    ),
    Setting(
        "CERTS_DIR",
        "certs_dir",
        PROJECT_ROOT / "certs",
        _directory,
        "where the generated CA and certificate live",
        "`certs/`",
    ),
    Setting(
        "STATE_FILE",
        "state_file",
        PROJECT_ROOT / ".state" / "peers.json",
        _optional_path,
        "where listed peers are kept across a restart (empty: nowhere)",
        "`.state/peers.json`",
    ),
    Setting(
        "ICE_SERVERS",
        "ice_servers",
        [],
        _ice_servers,
        'JSON list of RTCIceServer objects, e.g. `[{"urls":"stun:192.168.1.2:3478"}]`',
        "`[]` (LAN only, works offline)",
    ),
    _whole_setting(
        "MAX_CLIENTS",
        "max_clients",
        1000,
        1,
        1_000_000,
        "WebSocket connections accepted at once (503 past it)",
    ),
    _whole_setting(
        "MAX_MESSAGE_BYTES",
        "max_message_bytes",
        64 * 1024,
        1024,
        16 * 1024 * 1024,
        "largest signalling frame (close 1009 past it)",
    ),
    _whole_setting(
        "MAX_NAME_LENGTH", "max_name_length", 64, 1, 1024, "longest display name, in characters", hub=True
    ),
    _number_setting(
        "RATE_LIMIT",
        "rate_limit",
        50.0,
        0.1,
        1_000_000,
        "signalling messages per second per socket",
        hub=True,
    ),
    _whole_setting(
        "RATE_BURST", "rate_burst", 200, 1, 1_000_000, "burst allowance of the rate limit", hub=True
    ),
    _number_setting(
        "ADDRESS_RATE_LIMIT",
        "address_rate_limit",
        200.0,
        0,
        1_000_000,
        "signalling messages per second from one client address, all its sockets together (`0`: no limit)",
        hub=True,
    ),
    _number_setting(
        "RENAME_RATE",
        "rename_rate",
        1.0,
        0,
        1000,
        "renames per second from one client address, burst 5 (a rename reaches everyone; `0`: no limit)",
        hub=True,
    ),
    _number_setting(
        "JOIN_RATE",
        "join_rate",
        5.0,
        0,
        1000,
        "joins per second from one client address, burst 20 (a join and its leave reach everyone); more "
        "wait their turn, unseen (`0`: no limit)",
        hub=True,
    ),
    _number_setting(
        "NEW_SPACE_RATE",
        "new_space_rate",
        6.0,
        0,
        6000,
        "empty spaces one client address may enter per minute, burst the same (guessing codes finds "
        "empty ones; `0`: no limit)",
        hub=True,
    ),
    _number_setting(
        "NEW_SPACE_TOTAL",
        "new_space_total",
        120.0,
        0,
        60000,
        "empty spaces all addresses together may enter per minute, burst the same (guessing from many "
        "addresses; `0`: no limit)",
        hub=True,
    ),
    _number_setting(
        "IDENTIFY_TIMEOUT",
        "identify_timeout",
        10.0,
        0.1,
        3600,
        "seconds a socket may stay connected without identifying (then closed with 1008)",
        hub=True,
    ),
    _whole_setting(
        "SEND_QUEUE_BYTES",
        "send_queue_bytes",
        1024 * 1024,
        64 * 1024,
        1024**3,
        "bytes queued for one socket that is not reading; past it the socket is closed",
    ),
    _number_setting(
        "HEARTBEAT",
        "heartbeat",
        15.0,
        0.1,
        3600,
        "seconds between WebSocket pings (a silent socket is dropped after 1.5×)",
    ),
    _number_setting(
        "RESUME_GRACE",
        "resume_grace",
        20.0,
        0,
        3600,
        "seconds a dropped peer stays listed and can resume its id",
        hub=True,
    ),
    Setting(
        "ALLOWED_ORIGINS",
        "allowed_origins",
        frozenset(),
        _origins,
        "extra allowed `Origin` values, comma-separated",
        "same host only",
    ),
    _number_setting(
        "RING_TIMEOUT",
        "ring_timeout",
        30.0,
        1,
        3600,
        'seconds an unanswered call or invitation rings before "No answer"; an answer more than 10 s '
        "later is refused",
        hub=True,
    ),
    Setting(
        "RELOAD",
        "reload",
        ReloadMode.ASSETS,
        _reload,
        "`off`, `assets` (tabs reload when `public/` or `templates/` change) or `server` (also restart the "
        "process when `server/` changes)",
        "`assets`",
    ),
    _switch_setting("ECHO", "echo", True, 'run the "Echo test" peer (`1`/`0`)'),
    _whole_setting(
        "ECHO_MAX_CALLS", "echo_max_calls", 4, 0, 1000, 'simultaneous echo calls (more get "busy")'
    ),
    _whole_setting(
        "MAX_CALL_SIZE",
        "max_call_size",
        6,
        2,
        16,
        'people in one group call (2 to 16); past it, "This call is full"',
        hub=True,
    ),
    _number_setting("ECHO_MAX_SECONDS", "echo_max_seconds", 600.0, 1, 86400, "longest echo call"),
    Setting("LOG_LEVEL", "log_level", "INFO", _log_level, "`DEBUG`, `INFO`, `WARNING` or `ERROR`", "`INFO`"),
    _switch_setting(
        "MINIFY",
        "minify",
        True,
        "serve JS and CSS without comments and layout whitespace (`1`/`0`; the files in `public/` are "
        "never changed)",
    ),
    _switch_setting(
        "BUNDLE",
        "bundle",
        True,
        "serve the client as a few files built with esbuild, when scripts/setup installed it (`1`/`0`; "
        "`0`, or no esbuild, serves `public/` module by module)",
    ),
    _whole_setting(
        "MAX_CONNECTIONS_PER_ADDRESS",
        "max_connections_per_address",
        64,
        0,
        1_000_000,
        "open TCP connections from one client address; more are closed at once (`0`: no cap)",
    ),
    _number_setting(
        "HANDSHAKE_TIMEOUT",
        "handshake_timeout",
        10.0,
        0.1,
        3600,
        "seconds a new connection has to send its first byte and finish the TLS handshake",
    ),
    _number_setting(
        "IDLE_TIMEOUT",
        "idle_timeout",
        15.0,
        0.1,
        86400,
        "seconds a connection may go without a complete HTTP request (after the handshake, and between "
        "requests)",
    ),
    Setting(
        "METRICS_TOKEN",
        "metrics_token",
        None,
        lambda env, s: env.get(s.env, "").strip() or None,
        "lets `/metrics` be read from other machines with `Authorization: Bearer <token>` (without it, "
        "only from this machine)",
        "none: this machine only",
    ),
    Setting(
        "REDIS_URL",
        "redis_url",
        None,
        _redis_url,
        "Redis shared by several instances (one presence, relays between them; needs `pip install "
        "'.[redis]'`), e.g. `redis://127.0.0.1:6379/0`; `STATE_FILE` is not used then",
        "none: one instance",
    ),
    Setting(
        "CLUSTER_SECRET",
        "cluster_secret",
        None,
        _cluster_secret,
        "with `REDIS_URL`: the key instances sign what they send each other with and hash space codes "
        "kept in Redis with (at least 16 characters, the same on every instance)",
        "a random one kept in `certs/cluster-secret` (shared by the instances of one machine)",
    ),
    _whole_setting(
        "WORKERS",
        "workers",
        1,
        1,
        64,
        "server processes on this machine sharing `PORT` (Linux `SO_REUSEPORT`; more than 1 needs "
        "`REDIS_URL`); `MAX_CLIENTS` is per process",
    ),
    Setting(
        "OPEN_SPACE",
        "open_space",
        True,
        _switch,
        "`1`: people with no space code are listed together (the open network); `0`: everyone must join a "
        "space with its code first (docs/protocol.md §11)",
        "`1`",
        hub=True,
    ),
)

_DEFAULTS: dict[str, Any] = {s.field: s.default for s in SETTINGS}


@dataclass(frozen=True, slots=True)
class Settings:
    """Every setting, typed. The defaults come from `SETTINGS`; the last fields are not read
    from the environment (tests and benchmarks set them)."""

    host: str | None = _DEFAULTS["host"]  # None: every interface
    port: int = _DEFAULTS["port"]
    key_file: Path | None = _DEFAULTS["key_file"]
    cert_file: Path | None = _DEFAULTS["cert_file"]
    certs_dir: Path = _DEFAULTS["certs_dir"]
    state_file: Path | None = _DEFAULTS["state_file"]
    ice_servers: list[dict[str, Any]] = field(default_factory=list)
    max_clients: int = _DEFAULTS["max_clients"]
    max_message_bytes: int = _DEFAULTS["max_message_bytes"]
    max_name_length: int = _DEFAULTS["max_name_length"]
    rate_limit: float = _DEFAULTS["rate_limit"]  # messages per second per socket
    rate_burst: int = _DEFAULTS["rate_burst"]
    address_rate_limit: float = _DEFAULTS["address_rate_limit"]  # per client address; 0: off
    rename_rate: float = _DEFAULTS["rename_rate"]  # per client address; 0: off
    join_rate: float = _DEFAULTS["join_rate"]  # per client address; 0: off
    new_space_rate: float = _DEFAULTS["new_space_rate"]  # per client address, per minute; 0: off
    new_space_total: float = _DEFAULTS["new_space_total"]  # all addresses, per minute; 0: off
    identify_timeout: float = _DEFAULTS["identify_timeout"]
    send_queue_bytes: int = _DEFAULTS["send_queue_bytes"]
    heartbeat: float = _DEFAULTS["heartbeat"]
    resume_grace: float = _DEFAULTS["resume_grace"]
    allowed_origins: frozenset[str] = _DEFAULTS["allowed_origins"]
    ring_timeout: float = _DEFAULTS["ring_timeout"]
    reload: ReloadMode = _DEFAULTS["reload"]
    echo: bool = _DEFAULTS["echo"]
    echo_max_calls: int = _DEFAULTS["echo_max_calls"]
    max_call_size: int = _DEFAULTS["max_call_size"]
    echo_max_seconds: float = _DEFAULTS["echo_max_seconds"]
    log_level: str = _DEFAULTS["log_level"]
    minify: bool = _DEFAULTS["minify"]
    bundle: bool = _DEFAULTS["bundle"]
    max_connections_per_address: int = _DEFAULTS["max_connections_per_address"]
    handshake_timeout: float = _DEFAULTS["handshake_timeout"]
    idle_timeout: float = _DEFAULTS["idle_timeout"]
    metrics_token: str | None = _DEFAULTS["metrics_token"]
    redis_url: str | None = _DEFAULTS["redis_url"]
    cluster_secret: str | None = _DEFAULTS["cluster_secret"]
    workers: int = _DEFAULTS["workers"]
    open_space: bool = _DEFAULTS["open_space"]
    public_dir: Path = PROJECT_ROOT / "public"
    templates_dir: Path = PROJECT_ROOT / "templates"
    shutdown_timeout: float = 1.5
    worker: int | None = None  # which of WORKERS this process is (server/workers.py); None: not one


def hub_limits(settings: Settings) -> dict[str, Any]:
    """The `HubLimits` fields a `Settings` carries (`HubLimits(**hub_limits(settings))`)."""
    return {s.field: getattr(settings, s.field) for s in SETTINGS if s.hub}


def port_unusable(host: str | None, port: int, reason: str) -> SettingsError:
    """The error for a port the server cannot bind (in use, no permission, bad HOST)."""
    return SettingsError(
        f"PORT={port} on HOST={host or '(all interfaces)'} cannot be used ({reason}); "
        "set PORT to a free port or stop the other server"
    )


def settings_help() -> str:
    """What `python -m server --help` prints: how to run it, and every setting (the same
    table as the README's, as plain text)."""
    plain = re.compile(r"`([^`]*)`")
    lines = [
        "LAN Call: calls, messages and files between the devices on one network.",
        "",
        "usage: [SETTING=value ...] python -m server      (or: scripts/serve)",
        "",
        "Every setting is an environment variable; all are optional:",
        "",
    ]
    width = max(len(s.env) for s in SETTINGS)
    for setting in SETTINGS:
        meaning = plain.sub(r"\1", setting.help)
        default = plain.sub(r"\1", setting.shown)
        lines.append(f"  {setting.env:<{width}}  {meaning} (default: {default})")
    lines += ["", "More: README.md (Settings, Run it) and docs/protocol.md."]
    return "\n".join(lines)


def _optional_packages(values: dict[str, Any]) -> None:
    """A setting that needs an optional package says what to install, in one line."""
    if values["redis_url"] is not None and importlib.util.find_spec("redis") is None:
        raise SettingsError(
            "REDIS_URL needs the Redis client, which is not installed: run scripts/serve (it "
            "installs it), or .venv/bin/pip install 'redis>=5'"
        )


def load_settings(env: Env) -> Settings:
    """Read and validate every setting; raise SettingsError on the first bad one."""
    values = {s.field: s.read(env) for s in SETTINGS}
    _optional_packages(values)
    key, cert = values["key_file"], values["cert_file"]
    if (key is None) != (cert is None):
        given, missing = ("KEY", "CERT") if key else ("CERT", "KEY")
        raise SettingsError(
            f"{given} is set but {missing} is not; set both to PEM files, or neither to use "
            "the generated certificate"
        )
    return Settings(**values)
