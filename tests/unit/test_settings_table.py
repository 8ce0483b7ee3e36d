"""One declaration per setting (issue 10, item 6): `server.config.SETTINGS` is what
`Settings`, `load_settings`, the hub's limits and the README's settings table all follow.
A variable read anywhere but not in the table, or in the table but not in the README
table (word for word), fails here."""

from __future__ import annotations

import ast
import dataclasses
import re
from collections.abc import Iterator, Mapping

import pytest

from server.config import PROJECT_ROOT, SETTINGS, Setting, Settings, SettingsError, hub_limits, load_settings
from server.hub import HubLimits

# Set by tests and benchmarks; `worker` by the WORKERS parent (`python -m server --worker N`).
NOT_FROM_THE_ENVIRONMENT = {"public_dir", "templates_dir", "shutdown_timeout", "worker"}


class RecordingEnv(Mapping[str, str]):
    """An empty environment that notes every variable asked for."""

    def __init__(self) -> None:
        self.asked: set[str] = set()

    def __getitem__(self, key: str) -> str:
        self.asked.add(key)
        raise KeyError(key)

    def get(self, key: str, default: object = None) -> object:  # type: ignore[override]
        self.asked.add(key)
        return default

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self.asked.add(key)
        return False

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def readme_settings_rows() -> dict[str, str]:
    """Variable -> its whole row, from the table under "## Settings" in README.md."""
    text = (PROJECT_ROOT / "README.md").read_text()
    section = text.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        match = re.match(r"\| `([A-Z_]+)` \|", line)
        if match:
            rows[match.group(1)] = line
    return rows


def expected_row(env: str) -> str:
    setting = next(s for s in SETTINGS if s.env == env)
    return f"| `{setting.env}` | {setting.help} | {setting.shown} |"


def test_every_variable_read_is_declared() -> None:
    env = RecordingEnv()
    load_settings(env)
    assert env.asked == {s.env for s in SETTINGS}


def test_no_server_module_reads_the_environment_by_itself() -> None:
    """Only `load_settings` reads variables (`__main__` hands it os.environ); a read
    anywhere else would be a setting nobody declared or documented."""
    reads = []
    for path in sorted((PROJECT_ROOT / "server").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                target = ast.unparse(node.func)
                if target in ("os.getenv", "os.environ.get", "os.environ.setdefault", "os.environ.pop"):
                    reads.append(f"{path.name}:{node.lineno} {target}")
            loads = isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load)
            if loads and ast.unparse(node.value) == "os.environ":  # type: ignore[attr-defined]
                reads.append(f"{path.name}:{node.lineno} os.environ[...]")
    assert reads == []


def test_readme_table_documents_every_setting_word_for_word() -> None:
    rows = readme_settings_rows()
    missing = [expected_row(s.env) for s in SETTINGS if s.env not in rows]
    assert not missing, "add these rows to the README settings table:\n" + "\n".join(missing)
    for setting in SETTINGS:
        assert rows[setting.env] == expected_row(setting.env)
    assert list(rows) == [s.env for s in SETTINGS], "README rows not in the order of SETTINGS"


def test_settings_fields_are_the_declared_ones() -> None:
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    declared = {s.field for s in SETTINGS}
    assert set(fields) - NOT_FROM_THE_ENVIRONMENT == declared
    assert len(declared) == len(SETTINGS) == len({s.env for s in SETTINGS})
    defaults = Settings()
    for setting in SETTINGS:
        assert getattr(defaults, setting.field) == setting.default, setting.env


def test_hub_limits_come_from_the_declared_settings() -> None:
    hub_fields = {f.name: f.default for f in dataclasses.fields(HubLimits)}
    carried = hub_limits(Settings())
    assert carried and set(carried) <= set(hub_fields)
    for name, value in carried.items():
        assert hub_fields[name] == value, f"HubLimits.{name} default differs from its setting"
    custom = hub_limits(load_settings({"RATE_LIMIT": "7", "RESUME_GRACE": "3"}))
    limits = HubLimits(**custom)
    assert (limits.rate_limit, limits.resume_grace) == (7.0, 3.0)


@pytest.mark.parametrize("setting", [s for s in SETTINGS if s.low is not None], ids=lambda s: s.env)
def test_declared_ranges_are_enforced(setting: Setting) -> None:
    assert setting.low is not None and setting.high is not None
    for edge in (setting.low, setting.high):
        value = getattr(load_settings({setting.env: str(edge)}), setting.field)
        assert value == edge
    for outside in (setting.low - 1, setting.high * 2 + 1):
        with pytest.raises(SettingsError, match=f"{setting.env}=.*out of range"):
            load_settings({setting.env: str(outside)})
