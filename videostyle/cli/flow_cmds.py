"""Commands: flow_cmds."""

from videostyle.cli import main  # noqa: F401
