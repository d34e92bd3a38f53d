"""Option sets, each option declared once: its default, bounds, unit and doc.

An option set is a frozen dataclass whose fields carry an :class:`Opt` (``field(metadata=
{"opt": ...})``, written with :func:`option`). Everything else reads these declarations: the
constructors validate through them (``__post_init__``), ``config()`` is :meth:`Options.to_dict`,
``resume`` rebuilds a run with :meth:`Options.from_dict`, and the command line derives its TOML
schema (:meth:`Options.from_toml`) and its help (:meth:`Options.describe`) from them, so that a
new option is one declaration and no other line.
"""
from __future__ import annotations

import dataclasses
import inspect
import numbers
import os
import textwrap
from typing import Any, Callable


from ._validation import (MAX_SEED, MAX_THREADS, check_bool, check_choice, check_float, check_int, check_path,
                          check_str)

__all__ = ["Opt", "option", "Options", "OptionError", "NetOptions", "RunOptions", "OutputOptions"]


class OptionError(ValueError):
    """An option set built from a dict (a configuration file, a stored run) with an unknown key."""


@dataclasses.dataclass(frozen=True)
class Opt:
    """One option's declaration.

    kind
        ``"int"``, ``"float"``, ``"bool"``, ``"str"``, ``"choice"`` (one of ``choices``),
        ``"scaling"`` ("mf", "ntk" or a positive number), ``"dtype"`` ("float64", "float32"),
        ``"path"`` (a file path), ``"list[int]"``, ``"list[float]"``, ``"list[str]"``.
    doc
        One sentence (the first line of the help); more sentences may follow.
    minimum, strict, maximum
        Bounds of a number (``strict``: the minimum itself is excluded).
    choices
        The allowed names of a ``"choice"`` (a tuple, or a function returning one so that a
        registry can be read when the check runs).
    optional
        None is allowed (its meaning is said in ``doc``).
    unit
        The unit of a number, for the help ("mean-field time", "MiB").
    toml
        Whether a configuration file may set it (False for call-time values such as a path).
    """

    kind: str
    doc: str
    minimum: float | None = None
    strict: bool = False
    maximum: float | None = None
    choices: tuple | Callable[[], tuple] | None = None
    optional: bool = False
    unit: str = ""
    toml: bool = True

    def allowed(self):
        return self.choices() if callable(self.choices) else self.choices

    def check(self, value, name):
        """The validated (and normalised) value; TypeError / ValueError naming ``name``."""
        if value is None:
            if self.optional:
                return None
            raise TypeError(f"{name}: a value is required (got None)")
        kind = self.kind
        if kind == "int":
            value = check_int(value, name, minimum=-2 ** 62 if self.minimum is None else int(self.minimum))
        elif kind == "float":
            value = check_float(value, name, minimum=self.minimum, strict=self.strict)
        elif kind == "bool":
            return check_bool(value, name)
        elif kind == "str":
            return check_str(value, name)
        elif kind in ("choice", "dtype"):
            return check_choice(value, name, self.allowed() if kind == "choice" else ("float64", "float32"))
        elif kind == "scaling":
            if isinstance(value, str):
                return check_choice(value, name, ("mf", "ntk"))
            if isinstance(value, numbers.Real) and not isinstance(value, bool):
                return check_float(value, name, minimum=0.0, strict=True)
            raise TypeError(f"{name}: expected 'mf', 'ntk' or a positive number, got {type(value).__name__}")
        elif kind == "path":
            return os.fsdecode(check_path(value, name))
        elif kind.startswith("list["):
            item = Opt(kind[5:-1], self.doc, minimum=self.minimum, strict=self.strict, maximum=self.maximum,
                       choices=self.choices)
            if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
                raise TypeError(f"{name}: expected a list, got {type(value).__name__}")
            value = tuple(item.check(v, f"{name}[{i}]") for i, v in enumerate(value))
            if not value:
                raise ValueError(f"{name}: must not be empty")
            return value
        else:  # pragma: no cover - a declaration error
            raise AssertionError(f"unknown option kind {kind!r}")
        if self.maximum is not None and value > self.maximum:
            bound = int(self.maximum) if kind == "int" else f"{self.maximum:g}"
            raise ValueError(f"{name}: must be <= {bound}, got {value}")
        return value

    def describe_type(self):
        """A short description of the accepted values, for the help."""
        if self.kind in ("choice", "dtype"):
            text = " | ".join(self.allowed() if self.kind == "choice" else ("float64", "float32"))
        elif self.kind == "scaling":
            text = "mf | ntk | number > 0"
        else:
            text = self.kind
            if self.minimum is not None:
                text += f" {'>' if self.strict else '>='} {self.minimum:g}"
            if self.maximum is not None:
                text += f", <= {int(self.maximum) if self.kind.endswith('int') else f'{self.maximum:g}'}"
        if self.unit:
            text += f" ({self.unit})"
        return text + (" or none" if self.optional else "")


_REQUIRED = dataclasses.MISSING


def option(default, kind, doc, **kw):
    """A dataclass field declaring one option (``default=REQUIRED`` for a required one)."""
    opt = Opt(kind, doc, **kw)
    if default is _REQUIRED:
        return dataclasses.field(metadata={"opt": opt})
    if isinstance(default, (list, dict)):  # pragma: no cover - a declaration error
        raise AssertionError("mutable defaults are declared as tuples")
    return dataclasses.field(default=default, metadata={"opt": opt})


REQUIRED = _REQUIRED

#: Particles per tile of the core's passes: a network's chunk is a whole number of tiles.
PARTICLE_TILE = 128


class Options:
    """Base of the option sets (frozen dataclasses whose fields are :func:`option`).

    Subclasses may define ``_check_together(self)`` for rules that involve several
    options; it raises ValueError naming the option to change.
    """

    #: the name used in messages and in configuration files ("run", "net", ...)
    section = "options"

    def __post_init__(self):
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, f.metadata["opt"].check(getattr(self, f.name), f.name))
        self._check_together()

    def _check_together(self):
        pass

    # ---- declarations -----------------------------------------------------------------
    @classmethod
    def opts(cls) -> dict[str, Opt]:
        """The declarations, by option name, in declaration order."""
        return {f.name: f.metadata["opt"] for f in dataclasses.fields(cls)}

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        return {f.name: f.default for f in dataclasses.fields(cls) if f.default is not _REQUIRED}

    @classmethod
    def required(cls) -> tuple:
        return tuple(f.name for f in dataclasses.fields(cls) if f.default is _REQUIRED)

    # ---- conversions ------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Every option by name (JSON-able: tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    @classmethod
    def build(cls, caller, **kwargs):
        """``cls(**kwargs)`` with an unknown keyword reported as ``caller: unknown option``."""
        names = cls.opts()
        for key in kwargs:
            if key not in names:
                raise TypeError(f"{caller}: unknown option {key!r}; the options are {', '.join(names)}")
        missing = [k for k in cls.required() if k not in kwargs]
        if missing:
            raise TypeError(f"{caller}: missing the option(s) {', '.join(missing)}")
        return cls(**kwargs)

    @classmethod
    def from_dict(cls, values, *, where=None, ignore_unknown=False):
        """An option set from a dict (a stored configuration); options it lacks take their defaults."""
        where = where or cls.section
        known = cls.opts()
        unknown = [k for k in values if k not in known]
        if unknown and not ignore_unknown:
            raise OptionError(f"{where}.{unknown[0]}: unknown key; the keys of [{where}] are {', '.join(known)}")
        return cls(**{k: v for k, v in values.items() if k in known})

    @classmethod
    def from_toml(cls, table, *, where=None, exclude=()):
        """An option set from a TOML table: unknown keys and bad values raise OptionError naming
        ``where.key``; the options in ``exclude`` may not be set there."""
        where = where or cls.section
        known = {k: o for k, o in cls.opts().items() if o.toml and k not in exclude}
        for key, value in table.items():
            if key not in known:
                raise OptionError(f"{where}.{key}: unknown key; the keys of [{where}] are {', '.join(known)}")
            try:
                known[key].check(value, f"{where}.{key}")
            except (TypeError, ValueError) as exc:
                raise OptionError(str(exc)) from None
        missing = [k for k in cls.required() if k not in table and k in known]
        if missing:
            raise OptionError(f"{where}.{missing[0]}: required key missing")
        try:
            return cls(**table)
        except (TypeError, ValueError) as exc:
            raise OptionError(f"{where}.{exc}") from None

    @classmethod
    def toml_keys(cls, exclude=()):
        return tuple(k for k, o in cls.opts().items() if o.toml and k not in exclude)

    # ---- documentation ----------------------------------------------------------------
    @classmethod
    def describe(cls, exclude=(), width=88):
        """One entry per option for ``--help``: name, accepted values, default, doc."""
        lines = []
        defaults = cls.defaults()
        for name, opt in cls.opts().items():
            if not opt.toml or name in exclude:
                continue
            default = "required" if name not in defaults else f"default {_show(defaults[name])}"
            lines.append(f"  {name} = {opt.describe_type()}; {default}")
            lines += textwrap.wrap(opt.doc, width=width, initial_indent="      ", subsequent_indent="      ")
        return "\n".join(lines)

    @classmethod
    def numpydoc(cls, exclude=()):
        """The options as a numpydoc Parameters block (for generated docstrings)."""
        out = []
        defaults = cls.defaults()
        for name, opt in cls.opts().items():
            if name in exclude:
                continue
            default = "" if name not in defaults else f", default {_show(defaults[name])}"
            out.append(f"{name} : {opt.describe_type()}{default}")
            out += textwrap.wrap(opt.doc, width=84, initial_indent="    ", subsequent_indent="    ")
        return "\n".join(out)

    @classmethod
    def parameters(cls, exclude=()):
        """inspect.Parameter objects (keyword-only) for a generated ``__signature__``."""
        defaults = cls.defaults()
        return [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY,
                                  default=defaults.get(name, inspect.Parameter.empty))
                for name in cls.opts() if name not in exclude]


def _show(value):
    if value is None:
        return "None"
    if isinstance(value, str):
        return repr(value)
    return f"{value:g}" if isinstance(value, float) else str(value)


# ---------------------------------------------------------------------------------------
# the option sets of the package
# ---------------------------------------------------------------------------------------

def _activations():
    from ._registry import ACTIVATIONS
    return ACTIVATIONS


def _losses():
    from ._registry import LOSSES
    return LOSSES


def _integrators():
    from ._registry import INTEGRATORS
    return INTEGRATORS


@dataclasses.dataclass(frozen=True)
class NetOptions(Options):
    """The constructor arguments of :class:`~mfntk.TwoLayer` (SPEC 1)."""

    section = "net"

    d: int = option(REQUIRED, "int", "Input dimension.", minimum=1)
    width: int = option(REQUIRED, "int", "Number of neurons (particles) N.", minimum=1)
    activation: str = option("relu", "choice", "The activation sigma.", choices=_activations)
    scaling: Any = option("mf", "scaling", "The factor alpha: 'mf' (alpha = 1, mean-field), 'ntk' "
                          "(alpha = sqrt(N)), or alpha itself.")
    bias: bool = option(False, "bool", "Whether each neuron has a bias b_j.")
    outputs: int = option(1, "int", "Output dimension k; a_j lies in R^k.", minimum=1)
    w_std: float | None = option(None, "float", "Standard deviation of the entries of w_j; None means 1/sqrt(d).",
                                 minimum=0.0, optional=True)
    a_std: float = option(1.0, "float", "Scale of a_j: N(0, a_std^2) entries, or +-a_std with "
                          "a_init = 'rademacher'.", minimum=0.0)
    b_std: float = option(0.0, "float", "Standard deviation of b_j (with bias).", minimum=0.0)
    symmetric: bool = option(False, "bool", "Draw N/2 particles and complete them with (-a_j, w_j, b_j), so "
                             "that f(x; theta_0) = 0 exactly (N even).")
    seed: int = option(0, "int", "Seed of the initialisation (numpy Generator).", minimum=0, maximum=MAX_SEED)
    dtype: str = option("float64", "dtype", "Precision of the particles and of every computation on them.")
    a_init: str = option("gaussian", "choice", "Law of the second-layer weights.",
                         choices=("gaussian", "rademacher"))
    c0: float = option(0.0, "float", "Constant of the quadratic activation u^2 + c0.")
    output_bias: bool = option(False, "bool", "A trained output bias c in R^k (initialised at 0): f(x) = (alpha/N) "
                               "sum_j a_j sigma(<w_j, x> + b_j) + c, trained by dc/dt = (1/n) sum_i r_i (the "
                               "gradient flow of the risk in c, so the tangent kernel gains + 1; docs/MATH.md).")
    particle_chunk: int | None = option(
        None, "int", "Particles per chunk: the sums over particles are taken per chunk and the chunks' sums added "
        "in a fixed order, and chunk c is drawn from its own seed, so that a run gives the same numbers on any "
        "number of MPI ranks. A multiple of 128; None: max(65536, N / 256 rounded up), so that a network of "
        "at most 65536 particles is one chunk.", minimum=PARTICLE_TILE, optional=True)

    def _check_together(self):
        if self.symmetric and self.width % 2:
            raise ValueError(f"width: symmetric=True needs an even width, got {self.width}")
        if self.particle_chunk is not None and self.particle_chunk % PARTICLE_TILE:
            raise ValueError(f"particle_chunk: must be a multiple of {PARTICLE_TILE}, got {self.particle_chunk}")


def default_particle_chunk(width):
    """The chunk size of a network of ``width`` particles: 65536 up to 2^24 particles (one chunk
    up to 65536), then width / 256 rounded up to a whole tile, so that a run never has much more
    than 256 chunks to exchange."""
    per = -(-width // 256)
    return max(2 ** 16, -(-per // PARTICLE_TILE) * PARTICLE_TILE)


@dataclasses.dataclass(frozen=True)
class RunOptions(Options):
    """The options of a run of the distributional dynamics (:func:`~mfntk.simulate`, SPEC 3-4)."""

    section = "run"

    t_max: float = option(REQUIRED, "float", "Final time; the run takes ceil(t_max / dt) steps.", minimum=0.0,
                          unit="mean-field time")
    dt: float = option(REQUIRED, "float", "Time step; gradient descent with learning rate eta is the Euler "
                       "scheme with dt = eta alpha^2 / N for a two-layer network, dt = eta for the diagonal "
                       "linear network (mf.euler_dt).", minimum=0.0, strict=True, unit="mean-field time")
    method: str = option("rk4", "choice", "Fixed-step integrator: euler, heun, rk4 (orders 1, 2, 4); with "
                         "temperature > 0 only euler (Euler-Maruyama).", choices=_integrators)
    loss: str = option("squared", "choice", "squared: l = 1/2 |y - f|^2; logistic: log(1 + exp(-y f)) for "
                       "labels +-1 and one output.", choices=_losses)
    batch: int | None = option(None, "int", "None: full batch. B: B points per step, fresh samples from the "
                               "data's sampler when it has one (online SGD on the population risk), otherwise a "
                               "random subset of the training set drawn without replacement at each step.",
                               minimum=1, optional=True)
    online: bool | None = option(None, "bool", "Force fresh samples (True) or minibatches of the training set "
                                 "(False); None: fresh samples when batch is set and the data has a sampler.",
                                 optional=True)
    weight_decay: float = option(0.0, "float", "lambda >= 0 in d theta / dt = ... - lambda theta.", minimum=0.0)
    temperature: float = option(0.0, "float", "tau >= 0 (Langevin dynamics / noisy SGD); the noise is keyed by "
                                "(seed, step, parameter index), so it does not depend on threads or chunking.",
                                minimum=0.0)
    record_every: float | None = option(None, "float", "Time between records (rounded to a whole number of "
                                        "steps); None: about 100 records.", minimum=0.0, strict=True,
                                        optional=True, unit="mean-field time")
    threads: int | None = option(None, "int", "OpenMP threads (None: all this process may use). Results are "
                                 "bit-identical for any count.", minimum=1, maximum=MAX_THREADS, optional=True)
    residual_dynamics: bool = option(False, "bool", "Integrate the residual dynamics du/dt = -(1/n) K_t u "
                                     "(SPEC 4) on the training set jointly with the particles; recorded as "
                                     "traj.rd_residual.")
    linearized: bool = option(False, "bool", "Train the linearized (tangent) model alongside and record the "
                              "Chizat-Oyallon-Bach distance |f(theta_t) - fbar_t| / |f(theta_0) - y| as "
                              "traj.linearized_distance.")
    diagnostics: bool = option(False, "bool", "Record the relative displacement (all parameters and per layer), "
                               "the relative kernel distance |K_t - K_0|_F / |K_0|_F and the kernel-target "
                               "alignment <K, Y Y^T>_F / (|K|_F |Y Y^T|_F) of the tangent kernel of one output "
                               "(the mean over outputs, SPEC 4) on a probe set of probe_size training points, and per record interval "
                               "the relative change of the objective and of the tangent features.")
    centered: bool = option(False, "bool", "Train the centred model F(x) = f(x; theta) - f(x; theta_0) "
                            "(Chizat-Oyallon-Bach): it starts at 0 for any initialisation, so the distance to "
                            "the linearization decays as 1/alpha. Risks, residual dynamics, linearized model and "
                            "the returned predictions (traj.predict) are those of F.")
    probe_size: int = option(256, "int", "Training points on which the diagnostics are computed.", minimum=1)
    test_size: int = option(2048, "int", "Size of the held-out sample drawn from the sampler when the data "
                            "has no test split.", minimum=1)
    seed: int = option(0, "int", "Seed of minibatch / online sampling and of the Langevin noise.", minimum=0,
                       maximum=MAX_SEED)
    divergence_factor: float = option(1e6, "float", "A training risk above this factor times max(initial "
                                      "risk, 1) stops the run.", minimum=1.0)
    cache_mb: float = option(1024.0, "float", "Memory budget for keeping the pre-activations X W^T of a "
                             "step's points between the forward and the gradient pass (n N values; for relu "
                             "with one output their signs, n N bits): within it "
                             "a step costs 4 n N d flops, beyond it they are recomputed tile by tile (6 n N d) "
                             "and memory stays O((n + N) d). Results are bit-identical either way.",
                             minimum=0.0, maximum=float(2 ** 30), unit="MiB")

    def _check_together(self):
        from ._registry import INTEGRATORS, integrator_info
        if self.temperature > 0 and not integrator_info(self.method).supports_temperature:
            stochastic = ", ".join(repr(m) for m in INTEGRATORS if integrator_info(m).supports_temperature)
            raise ValueError(f"method: temperature > 0 is integrated by Euler-Maruyama; use method={stochastic}, "
                             f"not {self.method!r}")
        if self.online and self.batch is None:
            raise ValueError("batch: online=True needs a batch size (fresh samples per step)")
        for flag in ("residual_dynamics", "linearized"):
            if getattr(self, flag) and (self.batch is not None or self.temperature > 0):
                raise ValueError(f"{flag}: needs full-batch (batch=None), noiseless (temperature=0) dynamics")


@dataclasses.dataclass(frozen=True)
class OutputOptions(Options):
    """Where and how often a run is written to disk (:func:`~mfntk.simulate` with ``out``)."""

    section = "output"

    out: str | None = option(None, "path", "Write the trajectory (HDF5) to this file, with checkpoints; "
                             "mfntk.resume continues such a run.", optional=True, toml=False)
    checkpoint_every: float | None = option(None, "float", "Time between checkpoints, rounded up to a whole "
                                            "number of record intervals; None: only at t = 0 and at the end "
                                            "(or on Ctrl-C).", minimum=0.0, strict=True, optional=True,
                                            unit="mean-field time")
    snapshot_every: float | None = option(None, "float", "Time between particle snapshots, rounded up to a "
                                          "whole number of record intervals; None: at every checkpoint (and "
                                          "always at t = 0 and at the end).", minimum=0.0, strict=True,
                                          optional=True, unit="mean-field time")

    def _check_together(self):
        if self.out is None:
            for name in ("checkpoint_every", "snapshot_every"):
                if getattr(self, name) is not None:
                    raise ValueError(f"{name}: needs an output file (out=...)")
