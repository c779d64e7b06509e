"""What happens when plugins fail: rejected input, a crash, and a failed dependency."""

from __future__ import annotations

import asyncio

from mofa_kernel import (
    AgentPlugin,
    InvalidStateError,
    PluginError,
    PluginExecutionError,
    PluginManager,
    PluginMetadata,
    PluginType,
)


class Parser(AgentPlugin):
    """Rejects what it cannot parse, and stays running."""

    metadata = PluginMetadata("parser", "Parser", PluginType.TOOL)

    async def execute(self, input: str) -> str:
        if not input.isdigit():
            raise PluginExecutionError(f"not a number: {input!r}")
        return str(int(input) * 2)


class Divider(AgentPlugin):
    """Has a bug: a crash puts it in the error state."""

    metadata = PluginMetadata("divider", "Divider", PluginType.TOOL)

    async def execute(self, input: str) -> str:
        return str(100 // int(input))


class Database(AgentPlugin):
    """Cannot start; what depends on it is skipped, the rest runs."""

    metadata = PluginMetadata("database", "Database", PluginType.STORAGE)

    async def start(self) -> None:
        raise ConnectionError("no database at localhost:5432")

    async def execute(self, input: str) -> str:
        return input


class Reports(AgentPlugin):
    metadata = PluginMetadata("reports", "Reports", PluginType.SKILL).with_dependency("database")

    async def execute(self, input: str) -> str:
        return input


async def main() -> None:
    async with PluginManager() as manager:
        for plugin in (Parser(), Divider(), Database(), Reports()):
            manager.register(plugin)
        report = await manager.start_all()  # never raises for one plugin's failure
        for plugin_id, outcome in sorted(report.outcomes.items()):
            print(f"{plugin_id}: {outcome.status} ({outcome.state.variant})")
            if outcome.error:
                print(f"    {outcome.error}")

        try:
            await manager.execute("parser", "twelve")
        except PluginExecutionError as error:
            print("rejected:", error)
        print("parser is still", manager.state("parser"))

        try:
            await manager.execute("divider", "0")
        except PluginError as error:
            print(type(error).__name__, "from divider")
        print("divider is now", manager.state("divider").variant)

        try:
            await manager.start("divider")
        except InvalidStateError as error:
            print("from Error only unload is allowed:", error.actual.variant)
        await manager.unload("divider")
        print("divider after unload:", manager.state("divider"))


if __name__ == "__main__":
    asyncio.run(main())
