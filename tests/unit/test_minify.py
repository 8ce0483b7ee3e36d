"""Serve-time minification never changes what the code means."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from server.config import PROJECT_ROOT
from server.minify import NESTED_TEMPLATE, minify

SCRIPTS = sorted((PROJECT_ROOT / "public").glob("*.js"))


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_public_scripts_have_no_nested_template_literals(path) -> None:  # type: ignore[no-untyped-def]
    match = NESTED_TEMPLATE.search(path.read_text())
    assert match is None, (
        f"{path.name}: a template literal nested in another's ${{…}} would be served "
        f"unminified (rjsmin mangles it); hoist it into a variable: {match.group(0)[:80]!r}"
    )


def test_nested_template_literal_is_left_alone() -> None:
    source = "const a = `${w}${f ? ` · ${n} fps` : ''}`;"
    assert minify(source, ".js") is None
    assert minify("const a = `${w} · ${n}  fps`; // note", ".js") == "const a=`${w} · ${n}  fps`;"


def test_css_keeps_rules() -> None:
    assert minify("a  {  color : red ; } /* why */\n", ".css") == "a{color:red}"


@pytest.mark.skipif(shutil.which("node") is None, reason="node checks module syntax")
@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_minified_scripts_still_parse_as_modules(path) -> None:  # type: ignore[no-untyped-def]
    text = minify(path.read_text(), ".js")
    assert text is not None
    result = subprocess.run(
        ["node", "--check", "--input-type=module"], input=text, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
