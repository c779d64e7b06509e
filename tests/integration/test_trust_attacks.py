"""Attacks on the trust lock, with real wheels installed by pip into a throwaway virtualenv.

The approved distributions are the sample calculator and hello plugins, built
and installed as users get them. Each attack installs or plants something
hostile, checks that nothing of it is imported (its modules write a marker
file when imported) and that the user is told why in one line, then takes it
away again. Every outcome here is also a row of the "Attacks" table in
docs/reliability.md (tests/reliability/_attacks.py).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import textwrap
import venv
from collections.abc import Iterator
from pathlib import Path

import pytest
from _kernel_venv import ROOT, KernelVenv, _build_wheels
from _wheels import build_wheel, remove_installed

pytestmark = pytest.mark.integration

CALCULATOR = ROOT / "sample_plugins" / "calculator"


def marker_plugin(pid: str, name: str, body: str = "") -> str:
    """A module-style plugin that writes ``{name}.imported`` into the marker folder on import."""
    return textwrap.dedent(
        f"""\
        import os
        import pathlib

        pathlib.Path(os.environ["MKT_MARKER_DIR"], "{name}.imported").write_text("imported")

        from mofa_kernel import PluginMetadata, PluginType, hookimpl


        @hookimpl
        def plugin_metadata():
            return PluginMetadata("{pid}", "{pid}", PluginType.TOOL)


        @hookimpl
        def execute(input):
        {textwrap.indent(body or "pass", "    ")}
            return "{pid}:" + input
        """
    )


class TrustVenv(KernelVenv):
    """A virtualenv with the kernel, the calculator and hello installed and approved."""

    @property
    def site(self) -> Path:
        out = subprocess.run(
            [str(self.python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        )
        return Path(out.stdout.strip())

    def install_wheel(self, wheel: Path) -> None:
        self.pip("install", "--no-deps", "--no-index", wheel)

    def statuses(self, env: dict[str, str] | None = None) -> dict[str, tuple[str, str | None]]:
        result = self.cli("plugins", "list", "--json", env=env)
        assert result.returncode == 0, result.stderr
        return {row["id"]: (row["status"], row["reason"]) for row in json.loads(result.stdout)}

    def assert_approved_still_work(self) -> None:
        statuses = self.statuses()
        assert statuses["calculator"] == ("discovered", None)
        assert statuses["hello"] == ("discovered", None)
        run = self.cli("run", "calculator", "1+1")
        assert (run.returncode, run.stdout) == (0, "2\n"), run.stderr


@pytest.fixture(scope="module")
def trust_venv(kernel_venv: KernelVenv, tmp_path_factory: pytest.TempPathFactory) -> TrustVenv:
    base = tmp_path_factory.mktemp("trust-venv")
    wheelhouse = base / "wheelhouse"
    wheelhouse.mkdir()
    for name in ("mofa-kernel", "mofa-sample-hello"):
        shutil.copy(kernel_venv.wheel(name), wheelhouse)
    _build_wheels([CALCULATOR], wheelhouse)
    venv.EnvBuilder(with_pip=True, clear=True).create(base / "venv")
    made = TrustVenv(base / "venv", wheelhouse, base / "work")
    made.pip("install", made.wheel("mofa-kernel"))
    made.install("mofa-sample-hello", "mofa-sample-calculator")
    (made.work / "mofa.toml").write_text('[kernel]\ntrust = "refuse"\n', encoding="utf-8")
    approved = made.cli("plugins", "approve", "mofa-sample-calculator", "mofa-sample-hello")
    assert approved.returncode == 0, approved.stderr
    made.assert_approved_still_work()
    return made


@pytest.fixture
def clean(trust_venv: TrustVenv) -> Iterator[TrustVenv]:
    """The trust virtualenv; after the test, the approved plugins must work as before."""
    trust_venv.clear_markers()
    yield trust_venv
    trust_venv.assert_approved_still_work()


def test_a_dist_info_folder_claiming_an_approved_name_is_checked_itself(
    clean: TrustVenv, tmp_path: Path
) -> None:
    wheel = build_wheel(
        tmp_path,
        name="zz-evil",
        metadata_name="mofa-sample-calculator",
        files={"zz_evil_code/__init__.py": marker_plugin("evil", "zz_evil")},
        plugins={"evil": "zz_evil_code"},
    )
    try:
        clean.install_wheel(wheel)
    except pytest.fail.Exception as refused:
        # pip 24 (Python 3.13's own) will not install a wheel whose file name and metadata
        # disagree; pip 23 and 26 do. With the former the attack cannot even be installed.
        if "No matching distribution found for zz-evil" not in str(refused):
            raise
        pytest.skip("this pip refuses the wheel itself: the attack cannot be installed")
    try:
        status, reason = clean.statuses()["evil"]
        assert status == "disabled"
        assert reason is not None
        assert reason.startswith(
            "refused by the trust lock: mofa-sample-calculator: changed since approval ("
        )
        assert "RECORD differs from the approved one" in reason
        assert clean.cli("run", "evil", "x").returncode == 2
        assert clean.cli("run", "hello", "x").returncode == 0
        assert clean.imported() == set()
    finally:
        remove_installed(clean.site, "zz_evil-1.0.dist-info")


def test_an_egg_info_without_record_is_unverifiable(clean: TrustVenv, tmp_path: Path) -> None:
    wheel = build_wheel(
        tmp_path,
        name="mkt-payload",
        files={
            "mkt_payload_code/__init__.py": marker_plugin("payload", "mkt_payload"),
            "zz_payload-1.0.egg-info/PKG-INFO": (
                "Metadata-Version: 1.1\nName: mofa-sample-calculator\nVersion: 0.1.0\n"
            ),
            "zz_payload-1.0.egg-info/entry_points.txt": (
                "[mofa.plugins]\npayload = mkt_payload_code\n"
            ),
        },
    )
    clean.install_wheel(wheel)
    try:
        run = clean.cli("run", "hello", "x")
        assert (run.returncode, run.stdout) == (0, "Hello, x!\n"), run.stderr
        check = clean.cli("plugins", "check")  # imports every enabled plugin
        assert check.returncode == 0, check.stdout + check.stderr
        assert clean.imported() == set()
        assert clean.statuses()["payload"] == (
            "disabled",
            "refused by the trust lock: mofa-sample-calculator: cannot be verified (no RECORD)",
        )
    finally:
        remove_installed(clean.site, "mkt_payload-1.0.dist-info")


def test_a_package_planted_beside_an_approved_module_is_refused(clean: TrustVenv) -> None:
    planted = clean.site / "mofa_sample_calculator" / "_evaluator"
    planted.mkdir()
    (planted / "__init__.py").write_text(marker_plugin("x", "planted"), encoding="utf-8")
    try:
        status, reason = clean.statuses()["calculator"]
        assert status == "disabled"
        assert reason == (
            "refused by the trust lock: mofa-sample-calculator: changed since approval "
            "(mofa_sample_calculator/_evaluator: a folder not in RECORD (added))"
        )
        run = clean.cli("run", "calculator", "1+1")
        assert run.returncode == 2
        assert "refused by the trust lock" in run.stderr
        assert clean.imported() == set()
    finally:
        shutil.rmtree(planted)


def test_a_shadow_copy_earlier_on_sys_path_is_refused(clean: TrustVenv, tmp_path: Path) -> None:
    shadow = tmp_path / "shadow" / "mofa_sample_calculator"
    shutil.copytree(clean.site / "mofa_sample_calculator", shadow)
    (shadow / "__init__.py").write_text(marker_plugin("calculator", "shadow"), encoding="utf-8")
    env = {"PYTHONPATH": str(shadow.parent)}
    status, reason = clean.statuses(env)["calculator"]
    assert status == "disabled"
    assert reason == (
        "refused by the trust lock: mofa-sample-calculator: changed since approval "
        f"(entry point calculator: module mofa_sample_calculator resolves to "
        f"{shadow / '__init__.py'}, which RECORD does not hash)"
    )
    assert clean.cli("run", "calculator", "1+1", env=env).returncode == 2
    assert clean.imported() == set()


#: The attacker's two moves on an approved module once the lock has verified it: the source file
#: swapped for one that writes a marker when run, or a package planted beside it (the import
#: system prefers the package), whose ``__init__`` writes the marker.
ATTACKER = """\
def attack(module, move):
    payload = 'import os, pathlib\\n'
    payload += 'pathlib.Path(os.environ["MKT_MARKER_DIR"], "attacker.imported").write_text("!")\\n'
    if move == "swap":
        module.write_text(module.read_text() + "\\n" + payload)
    else:
        module.with_suffix("").mkdir()
        (module.with_suffix("") / "__init__.py").write_text(payload)
"""


def refusal(module: Path, label: str, move: str) -> str:
    """What the import guard says about ``attack(module, move)``."""
    if move == "swap":
        expected = f"{module} of {label} changed after it was verified"
    else:
        name = module.relative_to(module.parents[1]).with_suffix("").as_posix().replace("/", ".")
        expected = (
            f"module {name} of {label} would be imported from {module.with_suffix('')}/"
            "__init__.py, which its RECORD does not hash"
        )
    return "ImportError: refused by the trust lock: " + expected


RACE = (
    ATTACKER
    + """
import pathlib
import sys

from mofa_kernel._config import KernelSettings
from mofa_kernel._discovery import load_plugin_object, survey
from mofa_kernel._isolation._setup import isolated_plugin
from mofa_kernel._trust import TrustLock, exclusion_rule

module, move, isolation = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3]
found = survey(exclusion_rule(TrustLock.read("mofa-trust.json"), "refuse"))
(entry,) = found.find("calculator")
assert entry.status == "discovered", entry.reason
attack(module, move)  # the lock has read and approved every file: now the attacker moves
try:
    if isolation == "process":  # what discovery does for an isolated plugin: a worker imports it
        isolated_plugin(entry.source, KernelSettings(), 60.0)
    else:
        load_plugin_object(entry.source)
except Exception as exc:
    print(exc)
    if isolation == "process":  # the host's own import is refused in the very same words
        try:
            load_plugin_object(entry.source)
        except Exception as inline:
            print("same as inline" if str(inline) == str(exc) else f"inline: {inline}")
    sys.exit(3)
print("imported")
"""
)


@pytest.mark.parametrize("isolation", ["inline", "process"])
@pytest.mark.parametrize("move", ["swap", "plant"])
def test_a_file_changed_after_the_check_is_not_imported(
    clean: TrustVenv, move: str, isolation: str
) -> None:
    evaluator = clean.site / "mofa_sample_calculator" / "_evaluator.py"
    original = evaluator.read_bytes()
    try:
        result = subprocess.run(
            [str(clean.python), "-c", RACE, str(evaluator), move, isolation],
            capture_output=True,
            text=True,
            cwd=clean.work,
            env=clean.environ(),
            timeout=60,
            check=False,
        )
        assert result.returncode == 3, result.stdout + result.stderr
        lines = result.stdout.splitlines()
        assert lines[0].startswith("cannot import plugin 'calculator' from mofa-sample-calculator ")
        assert refusal(evaluator, "mofa-sample-calculator", move) in lines[0]
        if isolation == "process":
            assert lines[1:] == ["same as inline"]
        assert clean.imported() == set()
    finally:
        evaluator.write_bytes(original)
        shutil.rmtree(evaluator.with_suffix(""), ignore_errors=True)


#: An approved class-style plugin that can run in a worker (the calculator cannot: it shares a
#: method through ctx.set_state, and only JSON values cross the boundary), with a submodule.
ISO_PLUGIN = """\
from mofa_kernel import AgentPlugin, PluginMetadata, PluginType

from mkt_iso._impl import shout


class Iso(AgentPlugin):
    metadata = PluginMetadata("iso", "Iso", PluginType.TOOL)

    async def execute(self, input):
        return shout(input)
"""

ISOLATED = '[kernel]\ntrust = "refuse"\nisolation = "process"\n[plugins.iso]\nmax_restarts = 1\n'


@pytest.fixture
def iso(clean: TrustVenv, tmp_path: Path) -> Iterator[TrustVenv]:
    """The trust virtualenv with ``mkt-iso`` installed and approved, and ``isolated.toml``
    running every plugin in a worker; all of it taken away after the test."""
    wheel = build_wheel(
        tmp_path,
        name="mkt-iso",
        files={
            "mkt_iso/__init__.py": ISO_PLUGIN,
            "mkt_iso/_impl.py": "def shout(text):\n    return text.upper()\n",
        },
        plugins={"iso": "mkt_iso:Iso"},
    )
    clean.install_wheel(wheel)
    lock_path = clean.work / "mofa-trust.json"
    before = lock_path.read_text(encoding="utf-8")
    (clean.work / "isolated.toml").write_text(ISOLATED, encoding="utf-8")
    try:
        approved = clean.cli("plugins", "approve", "mkt-iso")
        assert approved.returncode == 0, approved.stderr
        yield clean
    finally:
        lock_path.write_text(before, encoding="utf-8")
        (clean.work / "isolated.toml").unlink()
        shutil.rmtree(clean.site / "mkt_iso" / "_impl", ignore_errors=True)
        remove_installed(clean.site, "mkt_iso-1.0.dist-info")


def test_an_approved_plugin_runs_isolated_under_the_lock(iso: TrustVenv) -> None:
    listed = iso.cli("--config", "isolated.toml", "plugins", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {row["id"]: (row["status"], row["isolation"]) for row in json.loads(listed.stdout)}
    assert rows["iso"] == ("discovered", "process")
    assert rows["hello"] == ("discovered", "process")
    ran = iso.cli("--config", "isolated.toml", "run", "iso", "quiet")
    assert (ran.returncode, ran.stdout, ran.stderr) == (0, "QUIET\n", "")
    ran = iso.cli("--config", "isolated.toml", "run", "hello", "x")
    assert (ran.returncode, ran.stdout, ran.stderr) == (0, "Hello, x!\n", "")


def test_a_kernel_planted_in_the_working_folder_never_runs_in_a_worker(iso: TrustVenv) -> None:
    planted = iso.work / "mofa_kernel"
    planted.mkdir()
    (planted / "__init__.py").write_text(
        "import os, pathlib\n"
        'pathlib.Path(os.environ["MKT_MARKER_DIR"], "planted_kernel.imported").write_text("!")\n',
        encoding="utf-8",
    )
    try:
        ran = iso.cli("--config", "isolated.toml", "run", "iso", "planted")
        assert (ran.returncode, ran.stdout, ran.stderr) == (0, "PLANTED\n", "")
        assert iso.imported() == set()
    finally:
        shutil.rmtree(planted)


#: A host serving ``iso`` in a worker and ``hello`` inline. While it runs, the attacker moves;
#: then the worker dies (a crash, a segfault) and the kernel restarts it: a new worker imports
#: the plugin again, long after the lock verified it.
RESTART = (
    ATTACKER
    + """
import asyncio
import os
import pathlib
import signal
import sys

from mofa_kernel import PluginManager


async def main(module, move):
    manager = PluginManager.from_config("isolated.toml")
    refused = asyncio.get_running_loop().create_future()

    def heard(event):
        state = getattr(event, "new_state", None)
        if state is not None and state.is_error and "trust lock" in (state.message or ""):
            if not refused.done():
                refused.set_result(state.message)

    manager.add_listener(heard)
    manager.discover()
    await manager.start_all()
    try:
        print(await manager.execute("iso", "before"))
        worker = manager.get("iso").worker_pid
        assert worker is not None and worker != os.getpid()
        attack(module, move)
        os.killpg(worker, signal.SIGKILL)
        print(await asyncio.wait_for(refused, 60))
        print(manager.state("iso").message)
        print(await manager.execute("hello", "still here"))
    finally:
        await manager.shutdown()


asyncio.run(main(pathlib.Path(sys.argv[1]), sys.argv[2]))
"""
)


@pytest.mark.parametrize("move", ["swap", "plant"])
def test_a_restarted_worker_runs_only_what_the_host_verified(iso: TrustVenv, move: str) -> None:
    module = iso.site / "mkt_iso" / "_impl.py"
    config = '[kernel]\ntrust = "refuse"\n[plugins.iso]\nisolation = "process"\nmax_restarts = 1\n'
    (iso.work / "isolated.toml").write_text(config, encoding="utf-8")
    result = subprocess.run(
        [str(iso.python), "-c", RESTART, str(module), move],
        capture_output=True,
        text=True,
        cwd=iso.work,
        env=iso.environ(),
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    answer, refused, state, hello = result.stdout.splitlines()
    assert answer == "BEFORE"
    assert refused.startswith(
        "load failed: PluginLoadError: cannot import plugin 'iso' from mkt-iso 1.0 (mkt_iso:Iso): "
    )
    assert refusal(module, "mkt-iso", move) in refused
    assert state == refused  # and there it stays: a restart that is refused is not retried
    assert hello == "Hello, still here!"
    assert iso.imported() == set()


def test_a_pth_file_pointing_outside_record_is_never_approved(
    clean: TrustVenv, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    wheel = build_wheel(
        tmp_path / "wheels",
        name="mkt-pthy",
        files={
            "mkt_pthy/__init__.py": marker_plugin("pthy", "mkt_pthy"),
            "mkt_pthy.pth": f"{outside}\n",
        },
        plugins={"pthy": "mkt_pthy"},
    )
    clean.install_wheel(wheel)
    lock_path = clean.work / "mofa-trust.json"
    before = lock_path.read_text(encoding="utf-8")
    try:
        approve = clean.cli("plugins", "approve", "mkt-pthy")
        assert approve.returncode == 1
        assert approve.stderr == (
            f"mofa-kernel: mkt-pthy: mkt_pthy.pth: adds {outside} to sys.path, outside RECORD; "
            "it cannot be approved\n"
        )
        # Even a lock that names its exact RECORD (written by hand) does not let it in.
        record = (clean.site / "mkt_pthy-1.0.dist-info" / "RECORD").read_text(encoding="utf-8")
        lock = json.loads(before)
        lock["approved"]["mkt-pthy"] = {
            "distribution": "mkt-pthy",
            "version": "1.0",
            "record_sha256": hashlib.sha256(record.encode()).hexdigest(),
            "files": 3,
        }
        lock_path.write_text(json.dumps(lock), encoding="utf-8")
        assert clean.statuses()["pthy"] == (
            "disabled",
            "refused by the trust lock: mkt-pthy: cannot be verified "
            f"(mkt_pthy.pth: adds {outside} to sys.path, outside RECORD)",
        )
        assert clean.imported() == set()
    finally:
        lock_path.write_text(before, encoding="utf-8")
        remove_installed(clean.site, "mkt_pthy-1.0.dist-info")


def test_an_approved_plugin_cannot_import_a_refused_sibling(
    clean: TrustVenv, tmp_path: Path
) -> None:
    sibling = build_wheel(
        tmp_path,
        name="mkt-sib",
        files={"mkt_sib/__init__.py": marker_plugin("sib", "mkt_sib")},
        plugins={"sib": "mkt_sib"},
    )
    host = build_wheel(
        tmp_path,
        name="mkt-host",
        files={"mkt_host/__init__.py": marker_plugin("host", "mkt_host", "import mkt_sib")},
        plugins={"host": "mkt_host"},
    )
    clean.install_wheel(sibling)
    clean.install_wheel(host)
    lock_path = clean.work / "mofa-trust.json"
    before = lock_path.read_text(encoding="utf-8")
    try:
        assert clean.cli("plugins", "approve", "mkt-host").returncode == 0
        run = clean.cli("run", "host", "x")
        assert run.returncode == 1
        assert (
            "ImportError: refused by the trust lock: module mkt_sib belongs to mkt-sib: "
            "not approved" in run.stderr
        )
        assert clean.imported() == {"mkt_host"}
    finally:
        lock_path.write_text(before, encoding="utf-8")
        remove_installed(clean.site, "mkt_host-1.0.dist-info")
        remove_installed(clean.site, "mkt_sib-1.0.dist-info")
