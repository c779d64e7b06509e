"""A module-style plugin: hook functions instead of a class."""

from __future__ import annotations

from mofa_kernel import KernelEvent, PluginContext, PluginMetadata, PluginType, hookimpl

seen_events = 0
suffix = "!"


@hookimpl
def plugin_metadata() -> PluginMetadata:
    return PluginMetadata("shout", "Shout", PluginType.TOOL).with_dependency("word-count")


@hookimpl
def load(ctx: PluginContext) -> None:
    global suffix
    suffix = ctx.config.get_string("suffix", default="!")


@hookimpl
async def execute(input: str) -> str:
    return input.upper() + suffix


@hookimpl
def on_plugin_event(event: KernelEvent) -> None:
    global seen_events
    seen_events += 1


@hookimpl
def stats() -> dict[str, int]:
    return {"events_seen": seen_events}
