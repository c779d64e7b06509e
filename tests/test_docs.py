"""The hooks reference: every hook specification is documented and appears in the rendered page."""

from __future__ import annotations

import importlib.util
import inspect
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from mofa_kernel._hookspecs import PROJECT_NAME, LifecycleHooks

DOCS = Path(__file__).parent.parent / "docs"


def load_extension() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mofa_hooks", DOCS / "_ext" / "mofa_hooks.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def hook_names() -> list[str]:
    return [name for name, member in vars(LifecycleHooks).items() if hasattr(member, "mofa_spec")]


HOOKS = hook_names()


def test_there_are_hooks() -> None:
    assert PROJECT_NAME == "mofa"
    assert {"plugin_metadata", "load", "execute", "on_plugin_event"} <= set(HOOKS)


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_spec_has_a_docstring(hook: str) -> None:
    doc = inspect.getdoc(getattr(LifecycleHooks, hook))
    assert doc
    assert len(doc.split()) >= 3


def test_spec_class_has_a_docstring() -> None:
    assert inspect.getdoc(LifecycleHooks)


def test_hooks_page_uses_the_generator() -> None:
    assert ".. mofa-hooks::" in (DOCS / "hooks.md").read_text(encoding="utf-8")


def test_hooks_page_is_in_the_toctree() -> None:
    index = (DOCS / "index.md").read_text(encoding="utf-8")
    assert "\nhooks\n" in index


def test_generator_lists_every_hook_in_order() -> None:
    extension = load_extension()
    specs = extension.hook_specs()
    assert [spec.name for spec in specs] == HOOKS
    for spec in specs:
        expected = tuple(inspect.signature(getattr(LifecycleHooks, spec.name)).parameters)[1:]
        assert spec.arguments == expected


@pytest.mark.parametrize("hook", HOOKS)
def test_generated_rst_has_the_hook_and_its_docstring(hook: str) -> None:
    text = "\n".join(load_extension().render_hooks())
    arguments = ", ".join(list(inspect.signature(getattr(LifecycleHooks, hook)).parameters)[1:])
    assert f".. py:method:: {hook}({arguments})" in text
    doc = inspect.getdoc(getattr(LifecycleHooks, hook))
    assert doc is not None
    for line in doc.splitlines():
        assert line in text


def test_generator_refuses_an_undocumented_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    extension = load_extension()
    monkeypatch.setattr(LifecycleHooks.stop, "__doc__", None)
    with pytest.raises(ValueError, match="'stop' has no docstring"):
        extension.hook_specs()


def test_rendered_page_shows_every_hook(tmp_path: Path) -> None:
    pytest.importorskip("sphinx")
    pytest.importorskip("myst_parser")
    source = tmp_path / "src"
    source.mkdir()
    (source / "hooks.md").write_text(
        (DOCS / "hooks.md").read_text(encoding="utf-8"), encoding="utf-8"
    )
    out = tmp_path / "out"
    # Only this page, with the project's configuration; links to other pages stay unresolved.
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-q",
            "-b",
            "text",
            "-c",
            str(DOCS),
            "-D",
            "root_doc=hooks",
            "-D",
            "nitpicky=0",
            str(source),
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    rendered = " ".join((out / "hooks.txt").read_text(encoding="utf-8").split())
    for hook in HOOKS:
        member = getattr(LifecycleHooks, hook)
        arguments = ", ".join(list(inspect.signature(member).parameters)[1:])
        assert f"{hook}({arguments})" in rendered
        doc = inspect.getdoc(member)
        assert doc is not None
        first_words = " ".join(doc.split()[:3]).replace("``", '"')
        assert first_words in rendered


def test_pages_name_public_objects_only() -> None:
    """The API is what ``mofa_kernel`` exports: no page documents or links a private path."""
    import re

    private = re.compile(r"mofa_kernel\._(?!_)\w+")
    for page in sorted(DOCS.glob("*.md")):
        if page.name == "reliability.md":  # describes the test harness, not the API
            continue
        found = private.findall(page.read_text(encoding="utf-8"))
        assert not found, f"{page.name} names {sorted(set(found))}"
