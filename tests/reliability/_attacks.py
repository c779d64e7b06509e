"""The attacks a hostile or careless plugin author can try, and what the kernel does about each.

Each :class:`Attack` names the tests that carry it out: real distributions
installed by pip for the trust lock and discovery, real files and
subprocesses for configuration. :func:`render_attacks` turns the list into
the "Attacks" table of docs/reliability.md (region ``attacks``);
test_attacks.py checks that the document shows exactly this table and that
every test named here exists, so the table cannot claim a defence nobody
tests. An attack still without a defence has ``tests=()`` and ``pending``
saying who takes it on; it shows in the table as such.
"""

from __future__ import annotations

from typing import Final

import attrs

__all__ = ["ATTACKS", "Attack", "render_attacks"]


@attrs.frozen
class Attack:
    """One attack: what is tried, what the kernel does, what the user reads, which tests."""

    group: str
    attack: str
    kernel: str
    told: str
    #: ``"path::test_name"`` of each test that carries the attack out.
    tests: tuple[str, ...] = ()
    #: Who takes on an attack not yet defended (then ``tests`` is empty).
    pending: str | None = None


_TRUST = "tests/integration/test_trust_attacks.py"
_TRUST_UNIT = "tests/test_trust.py"
_TOML = "tests/test_toml_limits.py"
_IDS = "tests/test_ids.py"
_CONTAIN = "tests/test_containment.py"
_RUNTIME = "the runtime redesign (issue 11, in the plugin caller and the lifecycle)"

ATTACKS: Final = (
    Attack(
        "trust lock",
        "a wheel whose dist-info folder has another name but whose METADATA claims an approved "
        "distribution's name",
        "checks the metadata folder that declared the entry point, not the approved "
        "distribution of that name; its RECORD is not the approved one, so it is refused",
        "`refused by the trust lock: mofa-sample-calculator: changed since approval "
        "(RECORD differs from the approved one; …)`",
        (f"{_TRUST}::test_a_dist_info_folder_claiming_an_approved_name_is_checked_itself",),
    ),
    Attack(
        "trust lock",
        "an extra `.egg-info` folder, shipped by another wheel, claiming an approved name",
        "a metadata folder without RECORD cannot be verified: refused, never imported "
        "(`run hello` too)",
        "`refused by the trust lock: mofa-sample-calculator: cannot be verified (no RECORD)`",
        (f"{_TRUST}::test_an_egg_info_without_record_is_unverifiable",),
    ),
    Attack(
        "trust lock",
        "a package `_evaluator/` planted beside the approved `_evaluator.py` (the import "
        "system prefers the package)",
        "any file or folder in a package folder that RECORD does not list is reported; the "
        "plugin is refused at discovery and at a hot reload, which keeps the old code serving",
        "`… changed since approval (mofa_sample_calculator/_evaluator: a folder not in RECORD "
        "(added))`",
        (
            f"{_TRUST}::test_a_package_planted_beside_an_approved_module_is_refused",
            f"{_TRUST_UNIT}::test_a_reload_refuses_a_package_planted_beside_an_approved_module",
        ),
    ),
    Attack(
        "trust lock",
        "a file swapped, or a package planted, after the lock read it and before the import",
        "the import guard compiles approved modules from the bytes it hashed and refuses "
        "modules from files RECORD does not hash; an isolated plugin's worker (`isolation = "
        '"process"`) installs the same guard, with the digests the host verified, before it '
        "imports the plugin, and its refusal reads word for word as the host's",
        "`ImportError: refused by the trust lock: …/_evaluator.py of mofa-sample-calculator "
        "changed after it was verified`",
        (f"{_TRUST}::test_a_file_changed_after_the_check_is_not_imported",),
    ),
    Attack(
        "trust lock",
        "a file swapped, or a package planted, while an isolated plugin runs, so that the "
        "restart after its worker dies (a crash, a segfault) imports the new code",
        "every worker, a restarted one too, imports only the bytes the host verified at "
        "discovery: the restart is refused, the plugin stays in its error state, the host "
        "and the other plugins serve on; an approved isolated plugin runs as before",
        "the plugin's error state: `load failed: PluginLoadError: cannot import plugin 'iso' "
        "from mkt-iso 1.0 (mkt_iso:Iso): ImportError: refused by the trust lock: …/_impl.py "
        "of mkt-iso changed after it was verified …`",
        (
            f"{_TRUST}::test_a_restarted_worker_runs_only_what_the_host_verified",
            f"{_TRUST}::test_an_approved_plugin_runs_isolated_under_the_lock",
        ),
    ),
    Attack(
        "isolation",
        "a `mofa_kernel` package planted in the host's working folder, where `python -m` "
        "would look first when it starts a worker",
        "workers start without the working folder on `sys.path` (the `mofa-kernel` script "
        "does not import from it either) and take the host's `sys.path` before they import "
        "the plugin",
        "nothing: the planted package does not run",
        (f"{_TRUST}::test_a_kernel_planted_in_the_working_folder_never_runs_in_a_worker",),
    ),
    Attack(
        "trust lock",
        "a `.pyc` planted in `__pycache__` with the source's time stamp and size",
        "approved modules are never run from cached bytecode under the lock",
        "nothing: the planted bytecode does not run",
        (f"{_TRUST_UNIT}::test_a_planted_bytecode_file_runs_only_without_the_lock",),
    ),
    Attack(
        "trust lock",
        "a copy of an approved plugin earlier on `sys.path` (`PYTHONPATH`, the working folder)",
        "the entry point's module must resolve, without importing, to a file RECORD hashes",
        "`… changed since approval (entry point calculator: module mofa_sample_calculator "
        "resolves to …/__init__.py, which RECORD does not hash)`",
        (f"{_TRUST}::test_a_shadow_copy_earlier_on_sys_path_is_refused",),
    ),
    Attack(
        "trust lock",
        "a `.pth` file in the wheel that adds a folder outside RECORD to `sys.path`",
        "such a distribution can be neither approved nor verified",
        "`mkt-pthy: mkt_pthy.pth: adds … to sys.path, outside RECORD; it cannot be approved`",
        (f"{_TRUST}::test_a_pth_file_pointing_outside_record_is_never_approved",),
    ),
    Attack(
        "trust lock",
        "an approved plugin importing the code of a refused plugin distribution",
        "the import guard refuses every module of a refused distribution",
        "`ImportError: refused by the trust lock: module mkt_sib belongs to mkt-sib: not approved`",
        (f"{_TRUST}::test_an_approved_plugin_cannot_import_a_refused_sibling",),
    ),
    Attack(
        "configuration",
        "arrays or inline tables nested 500 deep",
        "measures nesting in one pass before parsing; over 100 levels is a configuration error",
        "`mofa.toml:2: nested more than 100 levels deep (…); the limit is 100`, exit 2",
        (f"{_TOML}::test_hostile_files_are_one_line_exit_2_in_bounded_memory",),
    ),
    Attack(
        "configuration",
        "a dotted key 30,000 or 100,000 levels deep",
        "stops counting at level 101: memory stays at the file's own size",
        "`mofa.toml:1: nested more than 100 levels deep (…)`, exit 2",
        (f"{_TOML}::test_hostile_files_are_one_line_exit_2_in_bounded_memory",),
    ),
    Attack(
        "configuration",
        "a configuration file larger than 10 MiB",
        "reads at most 10 MiB of it",
        "`mofa.toml: the configuration file is larger than 10 MiB (the limit)`, exit 2",
        (f"{_TOML}::test_hostile_files_are_one_line_exit_2_in_bounded_memory",),
    ),
    Attack(
        "display",
        "an entry-point name that is empty or holds whitespace, a control character or a bidi "
        "override (U+202E)",
        "discovery refuses the plugin, never importing it",
        "`invalid plugin id 'calc\\u202eexe' declared by evil-ids 1.0 (evil_ids): it "
        "contains U+202E (right-to-left override); refused`",
        (f"{_IDS}::test_discovery_refuses_bad_ids_naming_the_distribution",),
    ),
    Attack(
        "display",
        "terminal escape sequences in ids, outputs and error messages",
        "the command line escapes every character that is not printable (JSON keeps its meaning)",
        "`\\x1b[2J\\x1b[31mred` instead of a cleared, red screen",
        (
            f"{_IDS}::test_run_prints_a_plugin_output_escaped",
            f"{_IDS}::test_output_escapes_lines_errors_tables_and_json",
        ),
    ),
    Attack(
        "blame",
        "an entry point whose import takes seconds (20 s froze `discover()` unnoticed)",
        "a watchdog warns while the import is still running, after 3 s "
        "(`MOFA_SLOW_IMPORT_WARNING`), and says how long it took",
        "`warning: plugin 'slow' from mkt-slow 1.0 (mkt_slow): still importing after 3 s "
        "(discovery waits for it)`",
        (
            "tests/test_slow_import.py::test_discover_warns_while_the_import_is_still_running",
            "tests/integration/test_slow_import_installed.py::"
            "test_run_warns_while_a_plugin_import_is_blocked",
        ),
    ),
    Attack(
        "display",
        "a plugin id with a control or bidi character given to `register()` (in-process)",
        "`register()` refuses it with the rule discovery applies; nothing is registered",
        "`PluginLoadError: invalid plugin id 'evil\\u202eexe': it contains U+202E "
        "(right-to-left override)`",
        ("tests/test_containment.py::test_register_refuses_an_invalid_plugin_id",),
    ),
    Attack(
        "host",
        "a task the plugin started ends with `sys.exit(4)`, `GeneratorExit` or a custom "
        "`BaseException`",
        "the task is the plugin's: its failure puts that plugin in the error state; the host "
        "and the other plugins carry on",
        "a `PluginError` event: `task failed: SystemExit …`",
        (f"{_CONTAIN}::test_a_task_the_plugin_started_cannot_end_the_host",),
    ),
    Attack(
        "host",
        "`SystemExit`, `GeneratorExit` or a custom `BaseException` from execute or start",
        "caught and reported like any failure; `start_all` goes on for everyone else",
        "`PluginExecutionError`: `execute failed: …`; the plugin's error state",
        (
            f"{_CONTAIN}::test_any_exception_from_execute_is_a_contained_fault",
            f"{_CONTAIN}::test_any_exception_from_start_fails_that_plugin_only",
        ),
    ),
    Attack(
        "host",
        "an exception whose `__str__` raises",
        "described without calling the plugin's `str()` when that fails",
        "`execute failed: Unprintable: <str() of the exception raised>`",
        (f"{_CONTAIN}::test_an_unprintable_exception_is_described_safely",),
    ),
    Attack(
        "host",
        "a `metadata` property that raises on its second read, or metadata changed afterwards",
        "metadata is read once, when the plugin is met, and that copy is kept",
        "nothing: the plugin runs as it first described itself",
        (
            f"{_CONTAIN}::test_metadata_is_read_once",
            f"{_CONTAIN}::test_metadata_changed_afterwards_is_not_seen",
        ),
    ),
    Attack(
        "host",
        "a `state` setter that raises `RuntimeError`",
        "fails that plugin only",
        "the plugin's error state, naming the setter's error",
        (f"{_CONTAIN}::test_a_state_setter_that_raises_fails_that_plugin_only",),
    ),
    Attack(
        "host",
        "a dependency chain of 10,000 plugins, ending in a missing plugin or a cycle",
        "graph walks are iterative: the chain is skipped, everything else starts",
        "the missing dependency or the cycle, with its chain of ids",
        (
            f"{_CONTAIN}::test_a_dependency_chain_of_10000_plugins",
            f"{_CONTAIN}::test_a_chain_of_10000_running_plugins_stops_and_unloads",
        ),
    ),
    Attack(
        "blame",
        "a plugin blocks the loop with `time.sleep` while another has calls in flight",
        "the blocker is named while the loop is still blocked and fails; the delayed call is "
        "not charged for the time it lost",
        "`warning: plugin blocker: execute is blocking the event loop …`",
        (f"{_CONTAIN}::test_a_blocked_loop_blames_the_blocker_not_the_calls_it_delayed",),
    ),
    Attack(
        "blame",
        "`ctx.emit_event` forging a `PluginError` in another plugin's name",
        "refused: a plugin emits only in its own name",
        "`PluginExecutionError` for the forger: `cannot emit PluginError in the name of "
        "'bystander'`",
        (f"{_CONTAIN}::test_a_plugin_cannot_speak_in_another_plugins_name",),
    ),
    Attack(
        "blame",
        'raising `PluginExecutionError(plugin_id="bystander")`',
        "the error is the raiser's: the bystander stays running",
        "a `PluginExecutionError` whose `plugin_id` is the raiser's",
        (f"{_CONTAIN}::test_an_error_naming_another_plugin_blames_the_one_that_raised_it",),
    ),
)


def render_attacks(attacks: tuple[Attack, ...] = ATTACKS) -> str:
    """The attacks as a MyST table, defended ones first, each with the tests that try it."""
    lines = [
        "| | attack | what the kernel does | what the user is told | tests |",
        "|---|---|---|---|---|",
    ]
    for attack in sorted(attacks, key=lambda a: a.pending is not None):
        tests = "<br>".join(f"`{t.split('::')[-1]}`" for t in attack.tests)
        if attack.pending is not None:
            tests = f"*pending: {attack.pending}*"
        cells = [attack.group, attack.attack, attack.kernel, attack.told, tests]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    defended = sum(1 for a in attacks if a.pending is None)
    lines += [
        "",
        f"**{len(attacks)} attacks: {defended} contained or refused, "
        f"{len(attacks) - defended} pending.**",
    ]
    return "\n".join(lines) + "\n"
