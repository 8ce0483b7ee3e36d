"""Settings parsing: defaults, every variable, and every error path."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from server.config import SETTINGS, ReloadMode, Settings, SettingsError, load_settings, settings_help


def test_defaults() -> None:
    s = load_settings({})
    assert s == Settings()
    assert (s.host, s.port, s.key_file, s.cert_file) == (None, 3000, None, None)
    assert s.ice_servers == [] and s.reload is ReloadMode.ASSETS and s.echo is True


def test_every_variable(tmp_path: Path) -> None:
    key, cert = tmp_path / "k.pem", tmp_path / "c.pem"
    key.write_text("k")
    cert.write_text("c")
    s = load_settings(
        {
            "HOST": "127.0.0.1",
            "PORT": "8443",
            "KEY": str(key),
            "CERT": str(cert),
            "CERTS_DIR": str(tmp_path / "certs"),
            "STATE_FILE": "",
            "ICE_SERVERS": '[{"urls": "stun:10.0.0.1:3478"}]',
            "MAX_CLIENTS": "10",
            "MAX_MESSAGE_BYTES": "2048",
            "MAX_NAME_LENGTH": "20",
            "RATE_LIMIT": "5.5",
            "RATE_BURST": "9",
            "HEARTBEAT": "2",
            "RESUME_GRACE": "0",
            "ALLOWED_ORIGINS": "https://a.example/, https://B.example",
            "RING_TIMEOUT": "5",
            "RELOAD": "server",
            "ECHO": "off",
            "ECHO_MAX_CALLS": "2",
            "ECHO_MAX_SECONDS": "30",
            "LOG_LEVEL": "debug",
            "MINIFY": "0",
        }
    )
    assert (s.host, s.port, s.key_file, s.cert_file) == ("127.0.0.1", 8443, key, cert)
    assert s.certs_dir == (tmp_path / "certs").resolve() and s.state_file is None
    assert s.ice_servers == [{"urls": "stun:10.0.0.1:3478"}]
    assert (s.max_clients, s.max_message_bytes, s.max_name_length) == (10, 2048, 20)
    assert (s.rate_limit, s.rate_burst, s.heartbeat, s.resume_grace) == (5.5, 9, 2.0, 0.0)
    assert s.allowed_origins == {"https://a.example", "https://b.example"}
    assert (s.ring_timeout, s.reload, s.echo) == (5.0, ReloadMode.SERVER, False)
    assert (s.echo_max_calls, s.echo_max_seconds, s.log_level) == (2, 30.0, "DEBUG")
    assert s.minify is False


@pytest.mark.parametrize(
    ("env", "fragments"),
    [
        ({"PORT": "abc"}, ["PORT='abc'", "not a whole number", "integer from 1 to 65535"]),
        ({"PORT": "70000"}, ["PORT='70000'", "out of range"]),
        ({"PORT": "0"}, ["PORT='0'", "between 1 and 65535"]),
        ({"KEY": "/nope/key.pem", "CERT": "/nope/cert.pem"}, ["KEY='/nope/key.pem'", "no such file"]),
        ({"MAX_CLIENTS": "-1"}, ["MAX_CLIENTS='-1'"]),
        ({"RATE_LIMIT": "fast"}, ["RATE_LIMIT='fast'", "not a number"]),
        ({"HEARTBEAT": "0"}, ["HEARTBEAT='0'", "out of range"]),
        ({"ICE_SERVERS": "[{"}, ["ICE_SERVERS", "not valid JSON"]),
        ({"ICE_SERVERS": '{"urls": "stun:x"}'}, ["ICE_SERVERS", "list of objects"]),
        ({"RELOAD": "sometimes"}, ["RELOAD='sometimes'", "off, assets or server"]),
        ({"ECHO": "maybe"}, ["ECHO='maybe'", "1 or 0"]),
        ({"LOG_LEVEL": "LOUD"}, ["LOG_LEVEL='LOUD'", "DEBUG, INFO"]),
    ],
)
def test_errors_name_variable_value_and_fix(env: dict[str, str], fragments: list[str]) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(env)
    for fragment in fragments:
        assert fragment in str(caught.value)


def test_key_without_cert(tmp_path: Path) -> None:
    key = tmp_path / "k.pem"
    key.write_text("k")
    with pytest.raises(SettingsError, match="KEY is set but CERT is not"):
        load_settings({"KEY": str(key)})
    with pytest.raises(SettingsError, match="CERT is set but KEY is not"):
        load_settings({"CERT": str(key)})


def test_reload_switch_spellings() -> None:
    assert load_settings({"RELOAD": "0"}).reload is ReloadMode.OFF
    assert load_settings({"RELOAD": "off"}).reload is ReloadMode.OFF
    assert load_settings({"RELOAD": "1"}).reload is ReloadMode.ASSETS
    assert load_settings({"RELOAD": "Assets"}).reload is ReloadMode.ASSETS


# The README settings table against the declarations: tests/unit/test_settings_table.py


def test_connection_limits() -> None:
    s = load_settings({"MAX_CONNECTIONS_PER_ADDRESS": "0", "HANDSHAKE_TIMEOUT": "2.5", "IDLE_TIMEOUT": "30"})
    assert (s.max_connections_per_address, s.handshake_timeout, s.idle_timeout) == (0, 2.5, 30.0)
    assert (Settings().max_connections_per_address, Settings().handshake_timeout) == (64, 10.0)
    with pytest.raises(SettingsError, match="MAX_CONNECTIONS_PER_ADDRESS='-1'"):
        load_settings({"MAX_CONNECTIONS_PER_ADDRESS": "-1"})
    with pytest.raises(SettingsError, match="HANDSHAKE_TIMEOUT='0'"):
        load_settings({"HANDSHAKE_TIMEOUT": "0"})


def test_redis_url_without_the_redis_client_is_one_line_saying_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 19 (operators, 17): it used to die with a ModuleNotFoundError traceback."""
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "redis" else real(name, *a)
    )
    with pytest.raises(SettingsError) as caught:
        load_settings({"REDIS_URL": "redis://127.0.0.1:6379/0"})
    message = str(caught.value)
    assert "REDIS_URL" in message and "pip install 'redis>=5'" in message and "\n" not in message
    assert load_settings({}).redis_url is None  # without REDIS_URL nothing is needed


def test_help_lists_every_setting_with_its_default() -> None:
    text = settings_help()
    for setting in SETTINGS:
        assert f"  {setting.env} " in text
    assert "`" not in text and "(default: 3000)" in text
