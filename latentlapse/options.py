"""Declared options: one declaration gives the flag, the environment variable, the default, the
help line and the checks of a value.

A service lists its options once::

    OPTIONS = Options("TRAINER_", [
        Option("batch_size", int, 64, "images per train step", metavar="N", minimum=1),
        ...
    ])

and gets from that list its config object (``OPTIONS.dataclass()``), its ``--help``
(``OPTIONS.parser()``: every default and variable shown) and its values (``OPTIONS.values()``:
the command line wins over the environment, which wins over the default). A bad value is an
``OptionError``: one line naming the flag or the variable and what to pass; the command lines
exit 2 on it.

Standard library only, Python 3.8 syntax: the trainer runs in SageMaker's Python 3.8 image.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")
KINDS = (str, int, float, bool)
# The largest seed numpy's RandomState takes, and so MXNet, scikit-learn and openTSNE: the range of
# the trainer's and the reporter's --seed.
MAX_SEED = 2**32 - 1


class OptionError(Exception):
    """A bad option value or command line; the message names the option and what to pass."""

    exit_code = 2


def parse_bool(text: str, source: str) -> bool:
    """``text`` (from a variable such as ``TRAINER_OVERWRITE``) as a boolean.

    Raises
    ------
    OptionError
        If ``text`` is none of 1/true/yes/on or 0/false/no/off (any case).
    """
    value = text.strip().lower()
    if value in TRUE_WORDS:
        return True
    if value in FALSE_WORDS:
        return False
    raise OptionError(f"{source}={text!r} is not a boolean: use 1 or 0")


@dataclasses.dataclass(frozen=True)
class Option:
    """One option of a command line.

    Parameters
    ----------
    name : str
        The attribute name in the config object (``batch_size``); the flag is ``--batch-size``.
    kind : type
        ``str``, ``int``, ``float`` or ``bool``. A bool gets ``--x`` and ``--no-x``.
    default
        The value when neither the flag nor the variable is given; None means "not set".
    help : str
        What the option does, in the user's words.
    metavar : str, optional
        What ``--help`` shows after the flag (``SECONDS``); default ``N``, ``NUMBER`` or ``TEXT``.
    env : str or tuple of str, optional
        The environment variable(s); default: the service's prefix + the upper-case name.
        Several: the first one set counts. An empty tuple: no variable.
    default_text : str, optional
        How ``--help`` describes a default that is computed at run time (None default).
    minimum, maximum : number, optional
        Inclusive bounds of a number.
    above : number, optional
        Exclusive lower bound (``above=0``: positive).
    choices : tuple of str, optional
        The only values allowed.
    required : bool
        Shown as required in the usage line and in ``--help``; missing, it is an error.
    parse : callable, optional
        The parse hook: the checked value in, the value the config holds out (``"28x28"`` in,
        ``(28, 28, 1, 0)`` out). It refuses a value by raising OptionError or ValueError with
        one line that names the option and says what to pass. The default is not parsed:
        declare it as the hook would give it.
    """

    name: str
    kind: type
    default: Any
    help: str
    metavar: Optional[str] = None
    env: Any = None
    default_text: Optional[str] = None
    minimum: Optional[float] = None
    maximum: Optional[float] = None
    above: Optional[float] = None
    choices: Optional[Tuple[str, ...]] = None
    required: bool = False
    parse: Optional[Callable[[Any], Any]] = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise TypeError(f"option {self.name}: kind must be one of str, int, float, bool")

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def variables(self) -> Tuple[str, ...]:
        if isinstance(self.env, str):
            return (self.env,)
        return tuple(self.env or ())

    @property
    def shown_metavar(self) -> str:
        if self.metavar:
            return self.metavar
        return {int: "N", float: "NUMBER"}.get(self.kind, "TEXT")

    # -- checking a value ----------------------------------------------------------------------

    def shown_choices(self) -> str:
        """The choices in words; an empty choice (the option's "not set") is not one to type."""
        named = ", ".join(choice for choice in self.choices if choice)
        return named + (" (or leave it unset)" if "" in self.choices else "")

    def wanted(self) -> str:
        """What a good value is, as the end of "must be ...": ``a positive integer``, ``positive``."""
        if self.choices:
            return "one of " + self.shown_choices()
        low, high, above = (_plain(self.minimum), _plain(self.maximum), _plain(self.above))
        if self.kind is int:
            if high is not None and low is not None:
                return f"an integer from {low} to {high}"
            if above == 0 or low == 1:
                return "a positive integer"
            if low == 0:
                return "0 or a positive integer"
            if low is not None:
                return f"an integer of at least {low}"
            return "an integer"
        if high is not None and (low is not None or above is not None):
            return f"from {low if low is not None else above} to {high}"
        if above == 0:
            return "positive"
        if above is not None:
            return f"more than {above}"
        if low == 0:
            return "0 or more"
        if low is not None:
            return f"at least {low}"
        if high is not None:
            return f"at most {high}"
        return "a finite number"

    def convert(self, raw: Any, source: str) -> Any:
        """``raw`` (a string from the command line or a variable) as the value the config holds.

        Parameters
        ----------
        raw : str or bool
            The text given (argparse gives a bool for switches).
        source : str
            Where it came from (``--steps`` or ``TRAINER_STEPS``), for the error message.

        Raises
        ------
        OptionError
            One line naming ``source`` and what to pass.
        """
        value = self._checked(raw, source)
        if self.parse is None:
            return value
        try:
            return self.parse(value)
        except ValueError as exc:
            raise OptionError(str(exc)) from None

    def _checked(self, raw: Any, source: str) -> Any:
        """``raw`` as this option's kind, within its bounds and choices."""
        if self.kind is bool:
            return raw if isinstance(raw, bool) else parse_bool(str(raw), source)
        if self.kind is str:
            value = str(raw)
            if self.choices and value not in self.choices:
                raise OptionError(f"unknown {self.name.replace('_', ' ')} {value!r} for {source}: "
                                  f"pass one of {self.shown_choices()}")
            return value
        text = str(raw).strip()
        try:
            value = int(text) if self.kind is int else float(text)
        except ValueError:
            value = None
        if value is None:
            try:
                number = float(text)  # "2.5" for an integer, "1e3" is 1000
            except ValueError:
                raise OptionError(f"{source}={raw!r} is not a number: pass {self._noun()}") from None
            if not math.isfinite(number) or number != int(number):
                raise OptionError(f"{source} must be {self.wanted()}, got {text}")
            value = int(number)
        if self.kind is float and not math.isfinite(value):
            raise OptionError(f"{source} must be {self.wanted()}, got {text}")
        if not self._in_range(value):
            raise OptionError(f"{source} must be {self.wanted()}, got {text}")
        return value

    def _noun(self) -> str:
        wanted = self.wanted()
        if self.kind is int:
            return wanted
        return {"a finite number": "a number", "positive": "a positive number",
                "0 or more": "0 or a positive number"}.get(wanted, f"a number {wanted}")

    def _in_range(self, value) -> bool:
        return ((self.minimum is None or value >= self.minimum)
                and (self.maximum is None or value <= self.maximum)
                and (self.above is None or value > self.above))

    # -- --help --------------------------------------------------------------------------------

    def help_line(self) -> str:
        """The help text with the default and the variable: ``images per step [default: 64; TRAINER_BATCH_SIZE]``."""
        notes = []
        if self.required:
            notes.append("required")
        elif self.default_text:
            notes.append(f"default: {self.default_text}")
        elif self.kind is bool:
            notes.append(f"default: {'on' if self.default else 'off'}")
        elif self.default not in (None, ""):
            notes.append(f"default: {self.default:g}" if self.kind is float else f"default: {self.default}")
        if self.choices:
            notes.insert(0, "one of " + self.shown_choices())
        if self.variables:
            switch = ("=0" if self.default else "=1") if self.kind is bool else ""
            notes.append(" or ".join(self.variables) + switch)
        text = self.help + (f" [{'; '.join(notes)}]" if notes else "")
        return text.replace("%", "%%")  # argparse formats help strings with %


def _plain(number):
    """3.0 -> 3 and 4294967295.0 -> 4294967295 in messages; None stays None."""
    return int(number) if number is not None and number == int(number) else number


class _Switch(argparse.Action):
    """``--x`` sets True, ``--no-x`` sets False (argparse has this built in only from Python 3.9)."""

    def __init__(self, option_strings, dest, default=None, required=False, help=None):
        super().__init__(option_strings, dest, nargs=0, default=default, required=required, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, not option_string.startswith("--no-"))


class OneLineParser(argparse.ArgumentParser):
    """An argparse parser whose own errors (unknown flag, missing value) are one OptionError line."""

    def error(self, message):
        raise OptionError(f"{message} (see {self.prog} --help)")


class Options:
    """The options of one command line, in the order ``--help`` lists them.

    Parameters
    ----------
    env_prefix : str or None
        Each option's variable is this prefix + its upper-case name, unless it names its own.
        None: only options that name a variable have one.
    options : sequence of Option
    """

    def __init__(self, env_prefix: Optional[str], options: Sequence[Option]):
        filled = []
        for option in options:
            if option.env is None and env_prefix:
                option = dataclasses.replace(option, env=env_prefix + option.name.upper())
            filled.append(option)
        self.options: List[Option] = filled
        self.by_name: Dict[str, Option] = {o.name: o for o in filled}
        if len(self.by_name) != len(filled):
            raise ValueError("two options share a name")

    def __getitem__(self, name: str) -> Option:
        return self.by_name[name]

    def __iter__(self):
        return iter(self.options)

    def pick(self, names: Iterable[str], env: bool = True, help_prefix: str = "") -> List[Option]:
        """Some of these options, to declare them again in another command line (the launcher)."""
        return [dataclasses.replace(self[n], help=help_prefix + self[n].help,
                                    env=self[n].env if env else ()) for n in names]

    def defaults(self) -> Dict[str, Any]:
        return {o.name: o.default for o in self.options}

    def dataclass(self, name: str, module: str):
        """A dataclass with one field per option (its default the option's): subclass it to add methods."""
        fields = []
        for o in self.options:
            annotation = o.kind if o.default is not None else Optional[o.kind]
            fields.append((o.name, annotation, dataclasses.field(default=o.default)))
        cls = dataclasses.make_dataclass(name, fields)
        cls.__module__ = module
        return cls

    def parser(self, prog: str, description: str, epilog: str = "", usage: Optional[str] = None,
               ) -> argparse.ArgumentParser:
        """The command line: each option's help shows its default and its variable."""
        if usage is None:
            required = " ".join(f"{o.flag} {o.shown_metavar}" for o in self.options if o.required)
            usage = f"%(prog)s {required + ' ' if required else ''}[options]"
        p = OneLineParser(prog=prog, description=description, epilog=epilog or None, usage=usage,
                    formatter_class=lambda prog: argparse.HelpFormatter(prog, max_help_position=32))
        required = p.add_argument_group("required")
        for o in self.options:
            group = required if o.required else p
            if o.kind is bool:
                group.add_argument(o.flag, "--no-" + o.flag[2:], dest=o.name, action=_Switch, default=None,
                                   help=o.help_line())
            else:
                group.add_argument(o.flag, dest=o.name, default=None, metavar=o.shown_metavar,
                                   help=o.help_line())
        if not any(o.required for o in self.options):
            p._action_groups.remove(required)
        return p

    def values(self, parsed: argparse.Namespace, environ: Optional[Mapping[str, str]] = None,
               ) -> Dict[str, Any]:
        """The values given: from the command line, else from the environment (not the defaults).

        Parameters
        ----------
        parsed : argparse.Namespace
            What ``self.parser(...).parse_args(argv)`` returned.
        environ : mapping, optional
            The environment (default ``os.environ``). An empty variable counts as not set.

        Raises
        ------
        OptionError
            For the first bad value, or a required option given nowhere.
        """
        environ = os.environ if environ is None else environ
        given = vars(parsed)
        values: Dict[str, Any] = {}
        for o in self.options:
            raw, source = given.get(o.name), o.flag
            if raw is None:
                for variable in o.variables:
                    if environ.get(variable, "").strip():
                        raw, source = environ[variable], variable
                        break
            if raw is None:
                if o.required:
                    also = f" or set {' or '.join(o.variables)}" if o.variables else ""
                    raise OptionError(f"{o.flag} is required: pass {o.flag} {o.shown_metavar}{also}")
                continue
            values[o.name] = o.convert(raw, source)
        return values


