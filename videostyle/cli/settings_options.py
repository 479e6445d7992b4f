"""Command-line options made from the settings' declarations in :mod:`videostyle.config`.

``@settings_options("run")`` adds one option per setting the command offers, with the declared
flag, help, default and allowed values, and a bare flag per declared alias (``--original-colors``
for ``--color-transfer luminance``); a bad value is refused while the command line is read, by
the same check as TOML files and the Python API, as one line (``error: --passes must be ...``).
The command receives the given values as ``overrides`` (``{"style": {...}, "video": {...}}``,
options not given left out) and the optimiser-neutral ``--learning-rate`` as ``learning_rate``.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from videostyle.config import (Declared, Settings, declarations, declared, parse_text, resolve_settings, validate,
                               with_learning_rate)
from videostyle.errors import UserError

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


class SettingType(click.ParamType):
    """Parses and checks one setting's text; a bad value raises the one-line UserError."""

    def __init__(self, decl: Declared) -> None:
        self.decl = decl
        self.name = decl.kind.__name__

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str | None:
        choices = self.decl.choices
        if self.decl.spec.metavar:
            return self.decl.spec.metavar
        if choices:
            return f"[{'|'.join(choices)}]"
        word = {int: "INTEGER", float: "FLOAT", str: "TEXT"}[self.decl.kind]
        return f"{word},..." if self.decl.is_tuple else word

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):
            return value
        return parse_text(self.decl, value, self.decl.flags[0])


def _dest(decl: Declared) -> str:
    return f"{decl.section}__{decl.name}"


def _default_text(decl: Declared) -> str:
    value = decl.default
    if decl.kind is bool or value is None:
        return ""
    shown = ",".join(map(str, value)) if decl.is_tuple else str(value)
    return f" [default: {shown or 'none'}]"


def _alias_dest(decl: Declared, k: int) -> str:
    return f"{_dest(decl)}__alias{k}"


def _alias_options(decl: Declared) -> list[Decorator]:
    """A bare flag per alias (``--original-colors``), each with its own destination, so that
    giving it beside the setting's own option can be told apart (see :func:`_given_value`)."""
    return [click.option(flag, _alias_dest(decl, k), flag_value=value, default=None,
                         help=f"Same as {decl.flags[0]} {value}.")
            for k, (flag, value) in enumerate(decl.spec.aliases)]


def _given_value(decl: Declared, kwargs: dict[str, Any]) -> Any:
    """The value the command line gives ``decl`` through its option or an alias; None if neither."""
    given = [(decl.flags[0], kwargs.pop(_dest(decl)))]
    given += [(flag, kwargs.pop(_alias_dest(decl, k))) for k, (flag, _) in enumerate(decl.spec.aliases)]
    given = [(flag, value) for flag, value in given if value is not None]
    if len({value for _, value in given}) > 1:
        raise UserError(f"{' and '.join(flag for flag, _ in given)} ask for different values of "
                        f"{decl.flags[0]}; give one")
    return given[0][1] if given else None


def _option(decl: Declared) -> Decorator:
    flag, help_text = decl.flags[0], decl.spec.help + _default_text(decl)
    if decl.kind is bool and not decl.is_tuple:
        return click.option(f"{flag}/--no-{flag[2:]}", _dest(decl), default=None, help=help_text)
    return click.option(*decl.flags, _dest(decl), type=SettingType(decl), default=None, help=help_text)


LEARNING_RATE_HELP = ("Step size of the optimiser that runs (chosen by --optimizer, the preset or the "
                      "config): sets --lbfgs-learning-rate (default 1) or --adam-learning-rate (default 10).")


def settings_options(command: str) -> Decorator:
    """Add the options of every setting ``command`` offers, plus ``--learning-rate``."""
    offered = [d for d in declarations() if command in d.spec.commands]

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(f)
        def wrapper(**kwargs: Any) -> Any:
            overrides: dict[str, dict[str, Any]] = {}
            for decl in offered:
                value = _given_value(decl, kwargs)
                if value is not None:
                    overrides.setdefault(decl.section, {})[decl.name] = value
            return f(overrides=overrides, **kwargs)

        for decl in reversed(offered):
            for option in reversed([_option(decl), *_alias_options(decl)]):
                wrapper = option(wrapper)
        return click.option("--learning-rate", type=SettingType(_rate_decl()), default=None,
                            help=LEARNING_RATE_HELP)(wrapper)

    return decorate


_DECLARED = object()  # setting_option's default: the declared one


def setting_option(section: str, name: str, *flags: str, help: str = "", default: Any = _DECLARED) -> Decorator:
    """One setting's option on a command that takes no settings otherwise (``eval --device``):
    its declared values, checks and messages, under ``flags`` (default: the declared ones); the
    command receives the value, or ``default`` (the declared default unless given)."""
    decl = declared(section, name)
    if flags:
        decl = dataclasses.replace(decl, spec=dataclasses.replace(decl.spec, flags=flags))
    chosen = decl.default if default is _DECLARED else default
    return click.option(*decl.flags, name, type=SettingType(decl), default=chosen, show_default=chosen is not None,
                        help=help or decl.spec.help)


def _rate_decl() -> Declared:
    # --learning-rate is checked like the rates it sets (positive, finite).
    decl = declared("style", "learning_rate")
    return dataclasses.replace(decl, spec=dataclasses.replace(decl.spec, flags=("--learning-rate",)))


def settings_from_cli(preset: str | None, config_file: Path | None, overrides: dict[str, dict[str, Any]],
                      learning_rate: float | None, n_styles: int | None = None) -> Settings:
    """Defaults, preset, config file, then the options; ``--learning-rate`` goes to the optimiser
    chosen by all of them together. Validated as a whole before anything runs."""
    settings = resolve_settings(preset, config_file, overrides)
    if learning_rate is not None:
        settings = with_learning_rate(settings, learning_rate)
    validate(settings, n_styles)
    return settings
