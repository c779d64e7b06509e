"""Showing private classes under the public package name, without breaking type hints."""

from __future__ import annotations

import sys

__all__ = ["PUBLIC_MODULE", "publish"]

PUBLIC_MODULE = "mofa_kernel"


def publish(cls: type) -> None:
    """Set ``cls.__module__`` to ``mofa_kernel`` so tracebacks, reprs and docs show the public name.

    ``typing.get_type_hints`` (and so attrs' ``resolve_types`` and cattrs) looks
    up a class's string annotations in the globals of ``cls.__module__``. The
    public package does not hold every name they use (``ClassVar``, ``Path``,
    ...), so the class's own annotations are evaluated here first, in the
    module that defined it, with the package's names for those imported only
    for type checkers.
    """
    if cls.__module__ == PUBLIC_MODULE:
        return
    own = cls.__dict__.get("__annotations__")  # noqa: RUF063 - edited in place, not copied
    if own:
        namespace: dict[str, object] = {}
        package = sys.modules.get(PUBLIC_MODULE)
        if package is not None:
            namespace.update(vars(package))
        namespace.update(vars(sys.modules[cls.__module__]))
        local = dict(vars(cls))
        for name, value in own.items():
            if not isinstance(value, str):
                continue
            try:
                # Our own annotations, evaluated as typing.get_type_hints would.
                own[name] = eval(value, namespace, local)  # noqa: S307
            except NameError:
                continue  # a name known to type checkers only: it stays a string
    cls.__module__ = PUBLIC_MODULE
