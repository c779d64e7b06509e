"""The runtime: the parts the :class:`~mofa_kernel.PluginManager` is made of.

- :mod:`._registry`: one :class:`Entry` per plugin, and the :class:`Registry` of them;
- :mod:`._calls`: the :class:`PluginCaller`, the only code that runs plugin code;
- :mod:`._lifecycle`: the transition table and the :class:`Lifecycle`, the only writer
  of a plugin's state;
- :mod:`._scheduler`: the :class:`Scheduler`, the only code that orders several plugins;
- :mod:`._guard`: tasks a plugin starts, attributed to it and contained;
- :mod:`._intake`: how plugins enter the registry (registered or discovered);
- :mod:`._observers`: pluggy registrations and ``on_plugin_event`` observers;
- :mod:`._port`: the :class:`ReloadPort` hot reload uses.
"""

from ._calls import PluginCaller, TrialFailed, trial
from ._describe import describe
from ._guard import is_guard_frame
from ._intake import Intake
from ._lifecycle import TRANSITIONS, Lifecycle, Transition
from ._observers import Observers
from ._port import ReloadPort, trust_refusal
from ._registry import Entry, Registry
from ._scheduler import Scheduler

__all__ = [
    "TRANSITIONS",
    "Entry",
    "Intake",
    "Lifecycle",
    "Observers",
    "PluginCaller",
    "Registry",
    "ReloadPort",
    "Scheduler",
    "Transition",
    "TrialFailed",
    "describe",
    "is_guard_frame",
    "trial",
    "trust_refusal",
]
