"""What the commands share: the configuration, the survey of installed plugins, a manager."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from ._output import Output, UsageError

if TYPE_CHECKING:
    from mofa_kernel._config import KernelSettings
    from mofa_kernel._discovery import Survey, SurveyEntry
    from mofa_kernel._manager import PluginManager
    from mofa_kernel._records import PluginRecord

__all__ = [
    "find_entry",
    "load_settings",
    "make_manager",
    "record_error",
    "survey_plugins",
    "survey_warnings",
]


def load_settings(args: argparse.Namespace) -> KernelSettings:
    """The configuration from ``--config``, else ``$MOFA_CONFIG``, else ``./mofa.toml``."""
    from mofa_kernel._config import load_settings as load

    return load(args.config)


def survey_plugins(settings: KernelSettings, out: Output, *, warn: bool = True) -> Survey:
    """Every installed plugin judged without importing it.

    Unreadable distributions and ``[plugins.ID]`` tables naming no installed
    plugin go to stderr unless ``warn`` is false (for a command whose manager
    will report them when it discovers).
    """
    from mofa_kernel._config import plugin_rule
    from mofa_kernel._discovery import survey

    result = survey(plugin_rule(settings))
    if warn:
        for problem in survey_warnings(settings, result):
            out.error(f"warning: {problem}")
    return result


def survey_warnings(settings: KernelSettings, result: Survey) -> list[str]:
    """Unreadable distributions, and ``[plugins.ID]`` tables that name no installed plugin."""
    from mofa_kernel._settings import unknown_plugin_tables

    known = {entry.plugin_id for entry in result.entries}
    return [*result.problems, *unknown_plugin_tables(settings.plugins, known)]


def find_entry(result: Survey, plugin_id: str) -> SurveyEntry:
    """The entry for ``plugin_id`` (the first claimant of a duplicate id); unknown -> UsageError."""
    entries = result.find(plugin_id)
    if not entries:
        from mofa_kernel._settings import did_you_mean

        ids = {e.plugin_id for e in result.entries}
        known = ", ".join(sorted(ids)) or "none installed"
        raise UsageError(
            f"unknown plugin id {plugin_id!r}{did_you_mean(plugin_id, ids)} (known: {known})"
        )
    return entries[0]


def make_manager(settings: KernelSettings) -> PluginManager:
    """A manager configured by ``settings`` (no file is read again)."""
    from mofa_kernel._manager import PluginManager

    return PluginManager.from_settings(settings)


def record_error(record: PluginRecord) -> str | None:
    """Why a plugin the manager recorded is not usable, or ``None``."""
    if record.status == "registered" and not record.state.is_error:
        return None
    return record.error or record.reason
