"""``mofa-kernel new-plugin``: name checks, where files go, what they contain, and a fuzz of names.

The generated distribution is installed by pip and its own tests run in
tests/integration/test_new_plugin_installed.py; here everything runs in
process, on real files in temporary folders.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import os
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mofa_kernel import PluginType
from mofa_kernel._cli import main
from mofa_kernel._cli._new_plugin import FILES, Scaffold, WriteError, check_name, plan, write
from mofa_kernel.testing import assert_conforms

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
#: The tutorial shows this distribution, as ``new-plugin greeter`` writes it.
TUTORIAL = ROOT / "docs" / "kit" / "greeter"
TUTORIAL_FILES = ("pyproject.toml", "src/greeter/__init__.py", "tests/test_greeter.py")


def run(*argv: str) -> tuple[int, str, str]:
    """``mofa-kernel ARGV`` in process: exit status, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def tree(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` with the bytes of each file (``None`` for folders)."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes() if path.is_file() else None
        for path in sorted(root.rglob("*"))
    }


def expected_files(name: str) -> set[str]:
    package = name.replace("-", "_")
    return {path.format(package=package) for path in FILES}


@pytest.fixture
def cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


@contextlib.contextmanager
def importable(project: Path) -> Iterator[None]:
    """The generated package importable from its src/ folder, and forgotten afterwards."""
    source = str(project / "src")
    sys.path.insert(0, source)
    try:
        yield
    finally:
        sys.path.remove(source)
        for name, module in list(sys.modules.items()):
            if (getattr(module, "__file__", None) or "").startswith(source):
                del sys.modules[name]
        importlib.invalidate_caches()


# -- names -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "class_name"),
    [
        ("a", "APlugin"),
        ("greeter", "GreeterPlugin"),
        ("my-tool", "MyToolPlugin"),
        ("x2-y3", "X2Y3Plugin"),
        ("weather-plugin", "WeatherPlugin"),
        ("a" * 64, "A" + "a" * 63 + "Plugin"),
    ],
)
def test_a_good_name_scaffolds_a_distribution(cwd: Path, name: str, class_name: str) -> None:
    code, out, err = run("new-plugin", name)
    assert (code, err) == (0, "")
    project = cwd / name
    assert set(tree(cwd)) >= {name}
    assert {p for p, data in tree(project).items() if data is not None} == expected_files(name)
    assert f"Wrote the plugin distribution {name} (Tool) in {name}:" in out
    assert f"  cd {name}" in out
    package = name.replace("-", "_")
    with importable(project):
        module = importlib.import_module(package)
        plugin = getattr(module, class_name)()
    assert plugin.metadata.id == name
    assert plugin.metadata.plugin_type == PluginType.TOOL


@pytest.mark.parametrize(
    "name",
    [
        "",
        "A",
        "Caps",
        "-x",
        "../x",
        "..",
        ".",
        "a/b",
        "a\\b",
        "/abs",
        "~",
        "$HOME",
        "x_y",
        "x.y",
        "a b",
        " a",
        "a\n",
        "a\nb",
        "name\x00",
        "9lives",
        "é",
        "naïve",
        "\uff41",  # a fullwidth letter a
        "a-",
        "a--b",
        "a" * 65,
        "class",
        "async",
        "con",
        "lpt1",
        "json",
        "test",
        "tests",
        "testing",
        "mofa-kernel",
        "pytest",
        "pytest-asyncio",
    ],
)
def test_a_bad_name_is_refused_with_one_line_and_nothing_written(cwd: Path, name: str) -> None:
    before = tree(cwd.parent)
    code, out, err = run("new-plugin", "--", name)
    assert code == 2
    assert out == ""
    assert len(err.splitlines()) == 1, err
    assert err.startswith("mofa-kernel: ")
    assert repr(name) in err or "is empty" in err
    assert tree(cwd.parent) == before
    assert check_name(name) is not None


def test_an_option_like_name_is_a_usage_error(cwd: Path) -> None:
    code, out, err = run("new-plugin", "-x")
    assert (code, out) == (2, "")
    assert "usage: mofa-kernel new-plugin" in err
    assert tree(cwd) == {}


def test_the_refusals_say_why() -> None:
    assert check_name("json") == (
        "invalid plugin name 'json': the package 'json' would hide the standard library's "
        "module of that name"
    )
    assert check_name("class") == "invalid plugin name 'class': 'class' is a Python keyword"
    assert check_name("Caps") == (
        "invalid plugin name 'Caps': use lowercase letters, digits and '-', starting with a "
        "letter (for example 'my-plugin')"
    )
    assert check_name("my-plugin") is None


# -- types -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected", "label"),
    [
        ("LLM", PluginType.LLM, "LLM"),
        ("llm", PluginType.LLM, "LLM"),
        ("Tool", PluginType.TOOL, "Tool"),
        ("vector-db", PluginType.VECTOR_DB, "VectorDB"),
        ("VECTOR_DB", PluginType.VECTOR_DB, "VectorDB"),
        ("monitor", PluginType.MONITOR, "Monitor"),
        ("skill", PluginType.SKILL, "Skill"),
        ("my kind", PluginType.custom("my kind"), "custom type my kind"),
        ("résumé.v2", PluginType.custom("résumé.v2"), "custom type résumé.v2"),
    ],
)
def test_the_type_is_a_builtin_in_any_case_or_custom(
    cwd: Path, given: str, expected: PluginType, label: str
) -> None:
    code, out, _ = run("new-plugin", "typed", "--type", given)
    assert code == 0
    assert f"typed ({label})" in out
    with importable(cwd / "typed"):
        from typed import TypedPlugin  # type: ignore[import-not-found]

        assert TypedPlugin.metadata.plugin_type == expected


@pytest.mark.parametrize("given", ["", " tool", 'a"""b', "x\\y", "a\tb", "x" * 65, "-"])
def test_a_bad_type_is_refused(cwd: Path, given: str) -> None:
    code, out, err = run("new-plugin", "typed", "--type", given)
    assert (code, out) == (2, "")
    assert len(err.splitlines()) == 1
    assert "invalid plugin type" in err
    assert tree(cwd) == {}


# -- where files go ----------------------------------------------------------------------------


def test_dir_outside_the_working_directory(cwd: Path, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere" / "plugin"
    target.parent.mkdir()
    code, _, _ = run("new-plugin", "far-away", "--dir", str(target))
    assert code == 0
    assert tree(cwd) == {}
    assert set(tree(tmp_path)) - {"work"} == {"elsewhere", "elsewhere/plugin"} | {
        f"elsewhere/plugin/{path}" for path in tree(target)
    }
    assert {p for p, data in tree(target).items() if data is not None} == expected_files("far-away")


def test_an_empty_existing_dir_is_used(cwd: Path) -> None:
    (cwd / "here").mkdir()
    assert run("new-plugin", "inside", "--dir", "here")[0] == 0
    assert (cwd / "here" / "pyproject.toml").is_file()


def test_the_working_directory_itself_when_empty(cwd: Path) -> None:
    assert run("new-plugin", "in-place", "--dir", ".")[0] == 0
    assert (cwd / "src" / "in_place" / "__init__.py").is_file()


def test_a_non_empty_dir_is_refused_and_left_alone(cwd: Path) -> None:
    (cwd / "busy").mkdir()
    (cwd / "busy" / "pyproject.toml").write_text("mine", encoding="utf-8")
    before = tree(cwd)
    code, out, err = run("new-plugin", "busy")
    assert (code, out) == (2, "")
    assert err == (
        "mofa-kernel: the folder busy is not empty; nothing was written (choose a new or empty "
        "folder with --dir)\n"
    )
    assert tree(cwd) == before


def test_a_second_run_never_overwrites(cwd: Path) -> None:
    assert run("new-plugin", "twice")[0] == 0
    before = tree(cwd)
    assert run("new-plugin", "twice")[0] == 2
    assert tree(cwd) == before


@pytest.mark.parametrize("kind", ["file", "broken-link"])
def test_a_dir_that_is_not_a_folder_is_refused(cwd: Path, kind: str) -> None:
    target = cwd / "taken"
    if kind == "file":
        target.write_text("x", encoding="utf-8")
    else:
        target.symlink_to(cwd / "nowhere")
    before = tree(cwd)
    code, _, err = run("new-plugin", "ok", "--dir", "taken")
    assert code == 2
    assert len(err.splitlines()) == 1
    assert tree(cwd) == before


def test_a_missing_parent_is_not_created(cwd: Path) -> None:
    code, _, err = run("new-plugin", "ok", "--dir", "missing/ok")
    assert code == 2
    assert "its parent folder missing does not exist" in err
    assert tree(cwd) == {}


def test_a_file_that_appears_meanwhile_is_not_overwritten(cwd: Path) -> None:
    scaffold = plan("racer")
    (cwd / "racer").mkdir()
    (cwd / "racer" / "README.md").write_text("someone else's", encoding="utf-8")
    with pytest.raises(WriteError, match=r"cannot write .*README\.md: File exists"):
        write(scaffold)
    assert tree(cwd) == {"racer": None, "racer/README.md": b"someone else's"}


def test_a_failed_write_removes_what_it_created(cwd: Path) -> None:
    scaffold = Scaffold("x", "x", "XPlugin", cwd / "x", "Tool", {"a": "1", "a/b": "2"})
    with pytest.raises(WriteError, match="cannot write"):
        write(scaffold)
    assert tree(cwd) == {}


def test_write_errors_exit_1_with_one_line(
    cwd: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from mofa_kernel._cli import _new_plugin

    def broken_plan(name: str, plugin_type: str, directory: Path | None) -> Scaffold:
        return Scaffold(name, name, "XPlugin", cwd / name, "Tool", {"a": "1", "a/b": "2"})

    monkeypatch.setattr(_new_plugin, "plan", broken_plan)
    assert main(["new-plugin", "broken"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.splitlines()) == 1
    assert captured.err.startswith("mofa-kernel: cannot write ")
    assert tree(cwd) == {}


# -- what the files say ------------------------------------------------------------------------


def test_pyproject_declares_the_entry_point_and_the_test_extra(cwd: Path) -> None:
    assert run("new-plugin", "my-tool", "--type", "memory")[0] == 0
    data = tomllib.loads((cwd / "my-tool" / "pyproject.toml").read_text(encoding="utf-8"))
    assert data["build-system"]["build-backend"] == "hatchling.build"
    project = data["project"]
    assert project["name"] == "my-tool"
    assert project["dependencies"] == ["mofa-kernel>=0.1", "attrs>=23.1"]
    assert project["entry-points"]["mofa.plugins"] == {"my-tool": "my_tool:MyToolPlugin"}
    assert {"pytest>=8", "pytest-asyncio>=0.24"} <= set(project["optional-dependencies"]["test"])
    assert data["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"] == ["src/my_tool"]
    assert data["tool"]["pytest"]["ini_options"]["asyncio_mode"] == "auto"
    assert {"ruff>=0.6", "mypy>=1.11"} <= set(project["optional-dependencies"]["lint"])
    assert data["tool"]["ruff"]["lint"]["isort"]["known-first-party"] == ["my_tool"]
    assert data["tool"]["mypy"]["strict"] is True


def test_the_ci_workflow_lints_types_and_tests_on_every_python(cwd: Path) -> None:
    yaml = pytest.importorskip("yaml")
    assert run("new-plugin", "my-tool")[0] == 0
    workflow = yaml.safe_load((cwd / "my-tool" / ".github" / "workflows" / "ci.yml").read_text())
    (job,) = workflow["jobs"].values()
    assert job["strategy"]["matrix"]["python-version"] == ["3.10", "3.11", "3.12", "3.13"]
    steps = "\n".join(step.get("run", "") for step in job["steps"])
    for command in ("ruff check .", "ruff format --check .", "mypy", "pytest"):
        assert f"python -m {command}" in steps
    assert '-e ".[test,lint]"' in steps
    assert "${{ matrix.python-version }}" in str(job["steps"])


@pytest.mark.skipif(
    importlib.util.find_spec("ruff") is None or importlib.util.find_spec("mypy") is None,
    reason="ruff and mypy are not installed here",
)
def test_the_generated_code_passes_its_own_lint_configuration(cwd: Path) -> None:
    assert run("new-plugin", "linted", "--type", "skill")[0] == 0
    project = cwd / "linted"
    for command in (["ruff", "check", "."], ["ruff", "format", "--check", "."], ["mypy"]):
        result = subprocess.run(
            [sys.executable, "-m", *command],
            cwd=project,
            env={**os.environ, "MYPYPATH": str(project / "src")},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, f"{command}: {result.stdout}{result.stderr}"


def test_every_python_file_compiles_without_warnings(cwd: Path) -> None:
    assert run("new-plugin", "clean", "--type", "custom kind")[0] == 0
    sources = sorted((cwd / "clean").rglob("*.py"))
    assert len(sources) == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for source in sources:
            compile(source.read_text(encoding="utf-8"), str(source), "exec")


def test_readme_and_license_placeholder(cwd: Path) -> None:
    assert run("new-plugin", "doc-me")[0] == 0
    readme = (cwd / "doc-me" / "README.md").read_text(encoding="utf-8")
    assert readme.startswith("# doc-me\n")
    assert "mofa-kernel run doc-me world" in readme
    assert "[plugins.doc-me.settings]" in readme
    license_text = (cwd / "doc-me" / "LICENSE").read_text(encoding="utf-8")
    assert "no license yet" in license_text


async def test_the_generated_plugin_conforms(cwd: Path) -> None:
    assert run("new-plugin", "conforming", "--type", "skill")[0] == 0
    with importable(cwd / "conforming"):
        from conforming import ConformingPlugin  # type: ignore[import-not-found]

        report = await assert_conforms(ConformingPlugin, inputs=["world", ""])
    assert "state round trip" in report.checks
    assert report.outputs == ("Hello, world!", None)


def test_the_tutorial_shows_what_new_plugin_writes() -> None:
    scaffold = plan("greeter", "tool", Path(tempfile.gettempdir()) / "unused-greeter")
    if os.environ.get("MOFA_UPDATE_DOC_EXAMPLES") == "1":
        for path in TUTORIAL_FILES:
            target = TUTORIAL / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(scaffold.files[path], encoding="utf-8")
    for path in TUTORIAL_FILES:
        shown = (TUTORIAL / path).read_text(encoding="utf-8")
        assert shown == scaffold.files[path], f"update {path} with MOFA_UPDATE_DOC_EXAMPLES=1"


def test_the_templates_ship_in_the_package() -> None:
    from importlib.resources import files

    templates = files("mofa_kernel").joinpath("_templates/plugin")
    for template in FILES.values():
        if template is not None:
            assert templates.joinpath(template).is_file(), template


# -- fuzz ------------------------------------------------------------------------------------

names = st.one_of(
    st.from_regex(r"[a-z][a-z0-9-]{0,70}", fullmatch=True),
    st.text(max_size=40),
    st.sampled_from(["../x", "a/b", "..", "/", "a\x00", "con", "nul", "x" * 300]),
)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=names)
def test_any_name_scaffolds_inside_d_or_is_refused(tmp_path: Path, name: str) -> None:
    sandbox = Path(tempfile.mkdtemp(dir=tmp_path))
    target = sandbox / "d"
    code, out, err = run("new-plugin", "--dir", str(target), "--", name)
    assert "Traceback" not in err
    if code == 0:
        assert check_name(name) is None
        assert err == ""
        assert all(path == "d" or path.startswith("d/") for path in tree(sandbox))
        assert {p for p, data in tree(target).items() if data is not None} == expected_files(name)
        data = tomllib.loads((target / "pyproject.toml").read_text(encoding="utf-8"))
        assert data["project"]["name"] == name
        for source in target.rglob("*.py"):
            compile(source.read_text(encoding="utf-8"), str(source), "exec")
    else:
        assert code == 2, (code, err)
        assert check_name(name) is not None
        assert out == ""
        assert len(err.splitlines()) == 1, err
        assert err.startswith("mofa-kernel: ")
        assert tree(sandbox) == {}
