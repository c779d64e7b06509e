"""Sphinx extension: autodoc for a package that presents private-module classes as its own.

``mofa_kernel/__init__.py`` sets ``__module__ = "mofa_kernel"`` on what it
exports, so that reprs, tracebacks and these docs say ``mofa_kernel.X``. Two
things then need help:

* autodoc reads ``#:`` attribute comments from the source of the module named
  by a class's ``__module__``: for these classes the package's
  ``__init__.py``, which has none. This extension hands the package's source
  analyser the comments of the private modules' classes that it exports.
* Type hints and docstrings written inside the private modules may name a
  class by its private path (``mofa_kernel._types.PluginState``), relative to
  the package (``PluginManager.discover``), or by a bare name imported only
  for type checking (``PluginContext``). A reference that finds nothing is
  retried as ``mofa_kernel.<name>``, or for a bare name as the one documented
  object of the package with that name. It resolves only to a documented
  object, so ``-n`` still catches real mistakes.

And one guard: napoleon reads the first line of an attribute's or property's
docstring as ``type: description``. This project never writes inline types
(annotations carry them), so a sentence such as ``The plugin id: unique in one
kernel.`` would otherwise turn into a reference to a class ``The plugin id``.
The line is split after that colon, which napoleon leaves as prose.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from typing import Any

PACKAGE = "mofa_kernel"


def _merge_attribute_comments(app: Any) -> None:
    from sphinx.errors import PycodeError
    from sphinx.pycode import ModuleAnalyzer

    package = importlib.import_module(PACKAGE)
    public = ModuleAnalyzer.for_module(PACKAGE)
    public.analyze()
    exported = {
        name
        for name in package.__all__
        if isinstance(getattr(package, name), type) and getattr(package, name).__module__ == PACKAGE
    }
    for info in pkgutil.iter_modules(package.__path__, f"{PACKAGE}."):
        try:
            private = ModuleAnalyzer.for_module(info.name)
        except PycodeError:
            # An optional integration (mofa_kernel.dora) imports only with its extra
            # installed; the package namespace exports nothing from it.
            continue
        private.analyze()
        offset = len(public.tagorder)
        for (scope, attribute), comment in private.attr_docs.items():
            if scope.split(".")[0] in exported:
                public.attr_docs.setdefault((scope, attribute), comment)
        for tag, order in private.tagorder.items():
            if tag.split(".")[0] in exported:
                public.tagorder.setdefault(tag, offset + order)


#: Roles, ``literals`` and `interpreted text`, in which a colon is not a separator.
_CODE = re.compile(r"(:[\w:.+-]+:`[^`]*`|``[^`]*``|`[^`]*`)")
_COLON = re.compile(r"(?<!:):(?!:)")


def _keep_first_line_prose(
    app: Any, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    if what not in {"attribute", "property", "data"} or not lines:
        return
    position = 0
    for i, segment in enumerate(_CODE.split(lines[0])):
        match = _COLON.search(segment) if i % 2 == 0 else None
        if match is not None:
            cut = position + match.end()
            head, tail = lines[0][:cut], lines[0][cut:].strip()
            if tail:
                lines[0:1] = [head, tail]
            return
        position += len(segment)


def _resolve_public(app: Any, env: Any, node: Any, contnode: Any) -> Any:
    if node.get("refdomain") != "py":
        return None
    target = node["reftarget"]
    if target.startswith(f"{PACKAGE}._"):
        name = target.split(".", 2)[2]
    elif not target.startswith(f"{PACKAGE}."):
        name = target
    else:
        return None
    domain = env.get_domain("py")
    public = f"{PACKAGE}.{name}"
    if not domain.find_obj(env, "", "", public, None, 0):
        # A bare name imported for type checking only, of a class documented at its
        # private path (``PluginSource``): accept one documented object of the package.
        found = [
            fullname
            for fullname, _ in domain.find_obj(env, "", "", name, None, 1)
            if fullname.startswith(f"{PACKAGE}.") and fullname.endswith(f".{name}")
        ]
        if len(found) != 1 or "." in name:
            return None
        public = found[0]
    return domain.resolve_xref(
        env, node["refdoc"], app.builder, node["reftype"], public, node, contnode
    )


def setup(app: Any) -> dict[str, Any]:
    app.setup_extension("sphinx.ext.autodoc")
    app.connect("builder-inited", _merge_attribute_comments)
    # Before napoleon (priority 500) reads the docstrings.
    app.connect("autodoc-process-docstring", _keep_first_line_prose, priority=400)
    app.connect("missing-reference", _resolve_public)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
