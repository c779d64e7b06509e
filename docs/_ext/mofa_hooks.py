"""Sphinx extension: ``mofa-hooks`` renders the hook reference from the hook specifications.

The directive reads :class:`mofa_kernel.LifecycleHooks` at build time:
a summary table (hook and arguments, what it stands for, whom it is called for),
then every hook with its signature and docstring. So the page cannot drift
from the specifications, and a hook without a docstring fails the build.
:func:`render_hooks` needs no Sphinx, so tests can check the text it produces.
"""

from __future__ import annotations

import inspect
from typing import Any, NamedTuple

from mofa_kernel._hookspecs import PROJECT_NAME, LifecycleHooks


class HookSpec(NamedTuple):
    """One hook specification, as the reference shows it."""

    name: str
    arguments: tuple[str, ...]
    doc: str
    firstresult: bool
    #: The class-style equivalent, as reST.
    mirrors: str


#: What each hook stands for in a class-style plugin, as reST (``AgentPlugin.<hook>`` if absent).
_MIRRORS = {
    "plugin_metadata": "the ``metadata`` of :py:class:`~mofa_kernel.AgentPlugin`",
    "save_state": ":py:meth:`HotReloadable.save_state <mofa_kernel.HotReloadable.save_state>`",
    "restore_state": (
        ":py:meth:`HotReloadable.restore_state <mofa_kernel.HotReloadable.restore_state>`"
    ),
    "refresh": ":py:meth:`HotReloadable.refresh <mofa_kernel.HotReloadable.refresh>`",
    "on_plugin_event": "none: a listener on the event stream",
}


def hook_specs() -> list[HookSpec]:
    """Every hook of :class:`LifecycleHooks`, in the order the class declares them."""
    specs = []
    for name, member in vars(LifecycleHooks).items():
        options = getattr(member, f"{PROJECT_NAME}_spec", None)
        if options is None:
            continue
        doc = inspect.getdoc(member)
        if not doc:
            raise ValueError(f"hook specification {name!r} has no docstring")
        arguments = tuple(inspect.signature(member).parameters)[1:]
        mirrors = _MIRRORS.get(
            name, f":py:meth:`AgentPlugin.{name} <mofa_kernel.AgentPlugin.{name}>`"
        )
        specs.append(HookSpec(name, arguments, doc, bool(options["firstresult"]), mirrors))
    return specs


def _indent(text: str, prefix: str) -> list[str]:
    return [prefix + line if line else "" for line in text.splitlines()]


def render_hooks() -> list[str]:
    """The reST of the whole reference: the table, then one entry per hook."""
    target = "mofa_kernel.LifecycleHooks"
    lines = [
        ".. list-table::",
        "   :header-rows: 1",
        "   :widths: 30 40 30",
        "",
        "   * - Hook",
        "     - Class-style equivalent",
        "     - Called for",
    ]
    for spec in hook_specs():
        called_for = "its own plugin" if spec.firstresult else "every plugin that implements it"
        lines += [
            f"   * - :py:meth:`{spec.name}({', '.join(spec.arguments)}) <{target}.{spec.name}>`",
            f"     - {spec.mirrors}",
            f"     - {called_for}",
        ]
    lines += ["", f".. py:class:: {target}", "   :no-index-entry:", ""]
    lines += _indent(inspect.getdoc(LifecycleHooks) or "", "   ")
    for spec in hook_specs():
        lines += ["", f"   .. py:method:: {spec.name}({', '.join(spec.arguments)})", ""]
        lines += _indent(spec.doc, "      ")
    lines.append("")
    return lines


def setup(app: Any) -> dict[str, Any]:
    from docutils import nodes
    from docutils.statemachine import StringList
    from sphinx.util.docutils import SphinxDirective
    from sphinx.util.nodes import nested_parse_with_titles

    class HooksDirective(SphinxDirective):
        """``.. mofa-hooks::``, with no arguments; in MyST, inside an ``{eval-rst}`` fence."""

        has_content = False

        def run(self) -> list[nodes.Node]:
            container = nodes.container()
            source = StringList(render_hooks(), source="mofa_kernel._hookspecs")
            nested_parse_with_titles(self.state, source, container)
            return list(container.children)

    app.add_directive("mofa-hooks", HooksDirective)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
