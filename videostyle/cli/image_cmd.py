"""Commands: image_cmd."""

from videostyle.cli import main  # noqa: F401
