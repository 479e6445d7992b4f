"""The ``videostyle`` command. Thin: it parses, configures, reports; the library does the work.

``main`` is the group (``videostyle.cli.group``); each command module adds its commands to it
when imported here.
"""

from videostyle.cli import eval_cmds, farm_cmds, flow_cmds, image_cmd, run_cmds  # noqa: F401  (adds the commands)
from videostyle.cli.group import main

__all__ = ["main"]
