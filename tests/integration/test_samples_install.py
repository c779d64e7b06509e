"""Every sample distribution installs into a fresh virtualenv and passes its own tests there.

One throwaway venv, one ``pip install`` of the project and every sample (as
wheels, not editable), then each sample's tests run with that venv's pytest,
so they exercise the installed packages and their entry points, not the
source tree.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = sorted(path.parent for path in (ROOT / "sample_plugins").glob("*/pyproject.toml"))


def _distribution(sample: Path) -> str:
    with (sample / "pyproject.toml").open("rb") as file:
        name: str = tomllib.load(file)["project"]["name"]
    return name


def _bin(venv: Path, tool: str) -> Path:
    return venv / ("Scripts" if os.name == "nt" else "bin") / tool


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    # Keep the source tree clean: no __pycache__ next to the samples' tests.
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _run(args: list[str], *, cwd: Path | None = None, timeout: float) -> str:
    done = subprocess.run(
        args,
        cwd=cwd,
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, (
        f"{' '.join(args)} failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    )
    return done.stdout


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("samples") / "venv"
    _run([sys.executable, "-m", "venv", str(path)], timeout=300)
    requirements = [str(ROOT), *(f"{sample}[test]" for sample in SAMPLES)]
    _run(
        [
            str(_bin(path, "python")),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-input",
            "--disable-pip-version-check",
            *requirements,
            "pytest>=8",
            "pytest-asyncio>=0.24",
        ],
        timeout=900,
    )
    return path


def test_there_are_samples() -> None:
    names = {sample.name for sample in SAMPLES}
    assert {"calculator", "memory", "monitor", "llm", "skill"} <= names


def test_samples_are_installed_as_wheels_with_their_entry_points(venv: Path) -> None:
    script = """
import json, sys
from importlib.metadata import distribution, entry_points
report = {}
for name in sys.argv[1:]:
    dist = distribution(name)
    direct = json.loads(dist.read_text("direct_url.json") or "{}")
    report[name] = {
        "editable": direct.get("dir_info", {}).get("editable", False),
        "plugins": sorted(ep.name for ep in dist.entry_points if ep.group == "mofa.plugins"),
    }
report["all_plugins"] = sorted(ep.name for ep in entry_points(group="mofa.plugins"))
print(json.dumps(report))
"""
    names = [_distribution(sample) for sample in SAMPLES]
    report = json.loads(_run([str(_bin(venv, "python")), "-c", script, *names], timeout=120))
    for name in names:
        assert report[name]["editable"] is False, name
        assert len(report[name]["plugins"]) == 1, (name, report[name])
    expected = {"calculator", "memory", "monitor", "llm", "math-skill"}
    assert expected <= set(report["all_plugins"])


@pytest.mark.parametrize("sample", SAMPLES, ids=[sample.name for sample in SAMPLES])
def test_sample_tests_pass_in_the_venv(venv: Path, sample: Path) -> None:
    output = _run(
        [str(_bin(venv, "python")), "-m", "pytest", "-p", "no:cacheprovider", "-q", "tests"],
        cwd=sample,
        timeout=600,
    )
    assert " passed" in output
    assert " failed" not in output


def test_the_readme_host_program_runs_against_the_samples(venv: Path, tmp_path: Path) -> None:
    """The README's "host in ten lines", run as written, with every sample installed."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    program = readme.split("```python\n", 1)[1].split("```", 1)[0]
    host = tmp_path / "host.py"
    host.write_text(program, encoding="utf-8")
    out = _run([str(_bin(venv, "python")), str(host)], cwd=tmp_path, timeout=120)
    assert out.splitlines()[-1] == "14"
