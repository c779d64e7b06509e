"""mofa-kernel plugins as nodes of a dora-rs dataflow.

``mofa-kernel dora-node --plugin ID`` is built on these; a host that makes
its own ``dora.Node`` calls them directly::

    import asyncio

    from dora import Node
    from mofa_kernel import PluginManager
    from mofa_kernel.dora import new_event_loop, serve, start_plugins

    async def main() -> None:
        async with PluginManager.from_config() as manager:
            manager.discover()
            await start_plugins(manager, ["calculator"])
            await serve(Node(), manager, plugins=["calculator"])

    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(main())

On a loop made by :func:`new_event_loop` the loop's own thread reads the node
(no thread hand-over per input); on any other loop a reader thread does.

Needs the ``dora`` extra (``pip install "mofa-kernel[dora]"``, Python 3.11 and
newer) for pyarrow; ``import mofa_kernel`` never imports this module.
"""

try:
    import pyarrow as _pyarrow  # noqa: F401 - checked here to say what to install
except ImportError as _missing:
    raise ImportError(
        "mofa_kernel.dora needs pyarrow: pip install 'mofa-kernel[dora]' (Python 3.11 and newer)"
    ) from _missing

from ._loop import new_event_loop
from ._serve import ERROR_OUTPUT, OUT_OUTPUT, Node, NodeServer, ServeReport, serve
from ._start import start_plugins, startup_order
from ._wire import Format

# Shown as mofa_kernel.dora.X in reprs, tracebacks and docs, not by their private module.
for _public in (Node, NodeServer, ServeReport, new_event_loop, serve, start_plugins, startup_order):
    _public.__module__ = __name__
del _public

__all__ = [
    "ERROR_OUTPUT",
    "OUT_OUTPUT",
    "Format",
    "Node",
    "NodeServer",
    "ServeReport",
    "new_event_loop",
    "serve",
    "start_plugins",
    "startup_order",
]
