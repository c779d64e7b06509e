"""Sphinx configuration of the mofa-kernel documentation (MyST Markdown, built with -W -n)."""

from __future__ import annotations

import sys
from importlib.metadata import version as installed_version
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "_ext"))

project = "mofa-kernel"
author = "The mofa-kernel developers"
copyright = "the mofa-kernel developers"  # noqa: A001 - the name Sphinx reads
release = installed_version("mofa-kernel")
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "mofa_autodoc",
    "mofa_hooks",
]
# No intersphinx: the docs build where only PyPI is reachable, so nothing may be fetched.

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "examples"]

myst_enable_extensions = ["colon_fence", "deflist", "fieldlist"]
myst_heading_anchors = 3

nitpicky = True
# Without intersphinx (no network at build time) Sphinx cannot link the standard
# library's classes that appear in signatures; they are named here one module at a time,
# so that every reference to mofa-kernel's own objects must still resolve.
nitpick_ignore_regex = [
    ("py:class", r"(collections\.abc|contextlib|os|pathlib)\.\w+"),
    # Type variables of generic functions (``from_json(type[_T], ...) -> _T``) are
    # not objects that a page could document.
    ("py:class", r"mofa_kernel\.[\w.]+\._T\w*"),
    # The Literal aliases of the records' status fields, named in the generated __init__
    # signatures: the attributes' own entries list their values.
    ("py:class", r"(mofa_kernel\.)?(RecordStatus|OutcomeStatus|SurveyStatus)"),
]

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
napoleon_google_docstring = True
napoleon_numpy_docstring = False

# furo: a clean, readable theme with a light and a dark mode and a searchable sidebar;
# code blocks scroll sideways instead of being clipped.
html_theme = "furo"
html_title = f"mofa-kernel {release}"
html_static_path: list[str] = []
# The sidebar lists "LifecycleHooks.load", not "mofa_kernel.LifecycleHooks.load".
toc_object_entries_show_parents = "hide"
add_module_names = False
