"""The registry of data-set kinds: what a ``[data]`` table of a configuration file may say.

Each kind is declared once, next to the functions that make it, as a frozen dataclass of
options (:class:`mfntk._options.Options`, one :func:`~mfntk._options.option` per key: default,
bounds, doc) registered with :func:`data_kind` together with its builder. Everything else reads
the registry: :func:`from_config` builds a :class:`Dataset` from a table, the command line
validates its ``[data]`` table with it, and ``mfntk run --help`` lists the kinds and their keys
with :func:`describe_data_kinds`. A new kind of data set is one declaration and no other line.
"""

from __future__ import annotations

import dataclasses
import textwrap
from typing import Callable

from .._options import REQUIRED, OptionError, Options
from .._validation import check_choice
from ._container import Dataset

__all__ = ["DataKind", "DATA_KINDS", "DEFAULT_KIND", "data_kind", "from_config", "describe_data_kinds"]


@dataclasses.dataclass(frozen=True)
class DataKind:
    """One kind of data set, named in a configuration by ``kind = name``.

    Attributes
    ----------
    name : str
        The value of ``kind``.
    options : type
        A frozen dataclass deriving from :class:`mfntk._options.Options`: the other keys of the
        table, each with its default, bounds and doc.
    build : callable
        ``build(**options) -> Dataset``, called with every option by name.
    doc : str
        One line saying what the data are (the first line of the options' docstring).
    """

    name: str
    options: type
    build: Callable[..., Dataset]
    doc: str

    def keys(self) -> tuple:
        """The keys of a table of this kind other than ``kind``."""
        return self.options.toml_keys()

    def make(self, options, *, where: str = "data") -> Dataset:
        """The data set of validated ``options``; an error of the builder becomes an
        :class:`~mfntk._options.OptionError` naming ``where.key`` when it names an option."""
        kwargs = {f.name: getattr(options, f.name) for f in dataclasses.fields(options)}
        try:
            data = self.build(**kwargs)
        except (TypeError, ValueError, OSError) as exc:
            text = str(exc)
            key = text.split(":", 1)[0]
            raise OptionError(f"{where}.{text}" if key in kwargs else f"{where}: {text}") from None
        if not isinstance(data, Dataset):  # pragma: no cover - a registration error
            raise AssertionError(f"the builder of data kind {self.name!r} returned {type(data).__name__}")
        return data


#: The data-set kinds by name, in registration order.
DATA_KINDS: dict[str, DataKind] = {}
#: The kind of a table that does not say ``kind``.
DEFAULT_KIND = "teacher"


def data_kind(name: str, build: Callable[..., Dataset]):
    """Class decorator registering an options dataclass as the data kind ``name`` built by ``build``.

    The options' docstring gives the one-line description (its first line); every option must
    be a keyword argument of ``build``.
    """

    def register(options):
        if name in DATA_KINDS:
            raise ValueError(f"name: the data kind {name!r} is already registered")
        if not (isinstance(options, type) and issubclass(options, Options) and dataclasses.is_dataclass(options)):
            raise TypeError(f"options: expected an Options dataclass, got {options!r}")
        doc = (options.__doc__ or "").strip().splitlines()
        DATA_KINDS[name] = DataKind(name, options, build, doc[0] if doc else "")
        return options

    return register


def _kind_and_options(table, where):
    if not isinstance(table, dict):
        raise OptionError(f"{where}: expected a table, got {type(table).__name__}")
    kind = table.get("kind", DEFAULT_KIND)
    try:
        check_choice(kind, f"{where}.kind", tuple(DATA_KINDS))
    except ValueError as exc:
        raise OptionError(str(exc)) from None
    entry = DATA_KINDS[kind]
    keys = entry.keys()
    for key in table:
        if key == "kind" or key in keys:
            continue
        others = [n for n, e in DATA_KINDS.items() if key in e.keys()]
        what = f"not used by kind = {kind!r} (a key of {', '.join(others)})" if others else "unknown key"
        raise OptionError(f"{where}.{key}: {what}; the keys of kind = {kind!r} are kind, {', '.join(keys)}")
    options = entry.options.from_toml({k: v for k, v in table.items() if k != "kind"}, where=where)
    return entry, options


def from_config(table, *, where: str = "data") -> Dataset:
    """The data set described by a configuration table.

    Parameters
    ----------
    table : dict
        ``{"kind": NAME, key: value, ...}`` as read from the ``[data]`` table of a TOML file:
        ``kind`` is one of :data:`DATA_KINDS` (default :data:`DEFAULT_KIND`), the other keys
        are the options of that kind (``describe_data_kinds()`` lists them); options left out
        take their defaults.
    where : str, default "data"
        The table's name, at the start of every error message.

    Returns
    -------
    Dataset

    Raises
    ------
    mfntk._options.OptionError (a ValueError)
        For an unknown kind, a key that the kind does not use, a missing required key, or a
        bad value; the message starts with ``where.key`` (``data.d: must be >= 1, got 0``).

    Examples
    --------
    >>> ds = from_config({"kind": "gaussian_mixture", "d": 8, "n_train": 50, "n_test": 0})
    >>> ds.name, ds.X.shape
    ('gaussian_mixture', (50, 8))
    """
    entry, options = _kind_and_options(table, where)
    return entry.make(options, where=where)


def _default_text(value):
    if value is REQUIRED:
        return "(required)"
    if value is None:
        return "(optional)"
    if isinstance(value, bool):
        return "= " + str(value).lower()
    if isinstance(value, str):
        return f'= "{value}"'
    return f"= {value:g}" if isinstance(value, float) else f"= {value}"


def describe_data_kinds(full: bool = False, width: int = 88) -> str:
    """The data kinds and their keys, for ``--help``: one entry per kind with its keys and
    defaults, or with ``full`` every option's accepted values and doc."""
    lines = []
    for name, entry in DATA_KINDS.items():
        lines += textwrap.wrap(f'kind = "{name}": {entry.doc}', width=width, initial_indent="  ",
                               subsequent_indent="      ")
        if full:
            lines.append(textwrap.indent(entry.options.describe(width=width - 4), "    "))
            continue
        defaults = {f.name: f.default for f in dataclasses.fields(entry.options)}
        items = [f"{k} {_default_text(defaults[k])}" for k in entry.keys()]
        line = "     "
        for i, item in enumerate(items):  # break lines between keys, never inside one
            item += "," if i < len(items) - 1 else ""
            if len(line) + 1 + len(item) > width and line.strip():
                lines.append(line)
                line = "     "
            line += " " + item
        lines.append(line)
    return "\n".join(lines)
