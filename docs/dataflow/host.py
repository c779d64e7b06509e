"""A dora node that hosts the calculator itself, through mofa_kernel.dora.

It does what ``mofa-kernel dora-node --plugin calculator`` does, in a program
of its own: a host can add its own start-up, configuration or reporting.
"""

import asyncio

from dora import Node

from mofa_kernel import PluginManager
from mofa_kernel.dora import new_event_loop, serve, start_plugins


async def main() -> None:
    async with PluginManager.from_config() as manager:
        manager.discover()
        await start_plugins(manager, ["calculator"])
        report = await serve(Node(), manager, plugins=["calculator"])
        print(f"answered {report.answered}, failed {report.failed}, ignored {report.ignored}")


# On this loop its own thread reads the node, as the dora-node command's does.
with asyncio.Runner(loop_factory=new_event_loop) as runner:
    runner.run(main())
