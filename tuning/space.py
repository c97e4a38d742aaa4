"""Search spaces as data: ``tuning/spaces/<name>.yaml``, validated on load.

A space file names the model it tunes, the paper its ranges come from, the
dataset it is meant for, and its hyperparameters::

    model: calo_cnn                      # a name from jettf.models.available()
    paper: "004 (Collado thesis), Table 3.3"
    dataset: top_tagging_images          # default --dataset
    config: {}                           # trainer settings applied before every trial (optional)
    quick: {}                            # further settings under --quick (optional)
    hyperparameters:                     # in declaration order (a condition's parent comes first)
      learning_rate: {type: float, min: 1.0e-4, max: 1.0e-2, sampling: log, default: 1.0e-4,
                      target: learning_rate}
      conv_blocks:   {type: int, min: 1, max: 4, default: 3}        # target: model_options.conv_blocks
      mlp_width:     {type: int, min: 32, max: 512, step: 32, default: 200, target: null,
                      condition: {global_features: [true]}}
    derived:                             # config entries computed from several hyperparameters (optional)
      model_options.mlp_units: {repeat: mlp_width, times: mlp_depth}   # [w] * d
      model_options.filters: {list: [conv1_filters, conv2_filters]}    # [a, b]

Hyperparameter types and their keys (``note`` is free text everywhere):

- ``int`` / ``float``: ``min``, ``max``, optional ``step``, ``sampling`` (``linear``, ``log``,
  ``reverse_log``; log needs ``min > 0``), ``default``;
- ``choice``: ``values`` (scalars of one type), ``default``, optional ``map`` from a value to the
  config value it stands for (e.g. ``{all: null, frozen: 0}``);
- ``boolean``: ``default``;
- ``fixed``: ``value`` (recorded with the trial, not searched).

``target`` says where the value goes in the trainer configuration
(:func:`jettf.training.config.resolve_config`): a top-level key (``learning_rate``,
``batch_size``, ``global_features``, ``crop``, ...), ``model_options.<option>`` (an
argument of the model's ``build_<model>`` function), or ``null`` for a
hyperparameter used only by ``derived``. The default target is
``model_options.<name>``. ``condition`` (one parent, declared earlier) makes a
hyperparameter active only for some values of another; an inactive one sets
nothing.

Errors name the file and the key: ``ValueError("spaces/lenet.yaml: hyperparameters.dropout.max:
expected a number, got 'half'")``.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import math
from pathlib import Path
from typing import Optional, Union

__all__ = ["SPACES_DIR", "SearchSpace", "HyperParameter", "available_spaces", "load_space", "space_path",
           "TOP_LEVEL_TARGETS"]

SPACES_DIR = Path(__file__).resolve().parent / "spaces"

#: Trainer settings a hyperparameter may set directly (everything else goes through model_options).
TOP_LEVEL_TARGETS = ("learning_rate", "batch_size", "global_features", "crop", "resize", "epochs", "patience",
                     "round_size", "standardize", "to_rgb", "flips")
_TYPES = {
    "int": {"min", "max", "step", "sampling", "default"},
    "float": {"min", "max", "step", "sampling", "default"},
    "choice": {"values", "default", "map"},
    "boolean": {"default"},
    "fixed": {"value"},
}
_COMMON = {"type", "target", "condition", "note"}
_SAMPLINGS = ("linear", "log", "reverse_log")
_TOP_KEYS = {"model", "paper", "dataset", "config", "quick", "hyperparameters", "derived", "note"}
_UNSET = object()


@dataclasses.dataclass(frozen=True)
class HyperParameter:
    """One validated entry of ``hyperparameters``."""

    name: str
    type: str
    target: Optional[str]
    spec: dict  # the type's keys (min, max, values, default, ...)
    condition: Optional[tuple] = None  # (parent name, allowed values)

    def declare(self, hp):
        """Declare this hyperparameter on a ``keras_tuner.HyperParameters``; returns its value (None if inactive)."""
        s = self.spec
        if self.type == "int":
            return hp.Int(self.name, s["min"], s["max"], step=s.get("step"), sampling=s.get("sampling", "linear"),
                          default=s["default"])
        if self.type == "float":
            return hp.Float(self.name, s["min"], s["max"], step=s.get("step"), sampling=s.get("sampling", "linear"),
                            default=s["default"])
        if self.type == "choice":
            return hp.Choice(self.name, list(s["values"]), default=s["default"])
        if self.type == "boolean":
            return hp.Boolean(self.name, default=s["default"])
        return hp.Fixed(self.name, s["value"])

    def config_value(self, value):
        """The trainer-config value a sampled ``value`` stands for (``map`` for choices)."""
        mapping = self.spec.get("map")
        return mapping[value] if mapping and value in mapping else value


@dataclasses.dataclass
class SearchSpace:
    """A validated search space: ``declare(hp)`` for keras-tuner, ``config_for(values)`` for the trainer."""

    name: str
    path: Path
    model: str
    paper: str
    dataset: Optional[str]
    hyperparameters: list
    derived: dict
    config: dict
    quick: dict

    def __getitem__(self, name: str) -> HyperParameter:
        for p in self.hyperparameters:
            if p.name == name:
                return p
        raise KeyError(f"{self.path.name}: no hyperparameter {name!r}")

    @property
    def names(self) -> list:
        return [p.name for p in self.hyperparameters]

    def declare(self, hp) -> dict:
        """Declare every hyperparameter (conditions as keras-tuner conditional scopes); returns active values."""
        values = {}
        for p in self.hyperparameters:
            if p.condition is None:
                value = p.declare(hp)
            else:
                parent, allowed = p.condition
                with hp.conditional_scope(parent, list(allowed)):
                    value = p.declare(hp)
            if value is not None and (p.condition is None or values.get(p.condition[0], _UNSET) in p.condition[1]):
                values[p.name] = value
        return values

    def active_values(self, values: dict) -> dict:
        """``values`` restricted to the hyperparameters of this space that are active under their conditions."""
        active = {}
        for p in self.hyperparameters:
            if p.name not in values:
                continue
            if p.condition is not None and active.get(p.condition[0], _UNSET) not in p.condition[1]:
                continue
            active[p.name] = values[p.name]
        return active

    def config_for(self, values: dict) -> dict:
        """Trainer-config overrides for sampled ``values``: top-level keys plus a ``model_options`` dict.

        Inactive or missing hyperparameters set nothing; ``derived`` entries are set
        only when all the hyperparameters they use are active.
        """
        active = self.active_values(values)
        out: dict = {"model_options": {}}
        for p in self.hyperparameters:
            if p.name in active and p.target is not None:
                _assign(out, p.target, p.config_value(active[p.name]))
        for target, rule in self.derived.items():
            if "repeat" in rule:
                if rule["repeat"] in active and rule["times"] in active:
                    _assign(out, target, [active[rule["repeat"]]] * int(active[rule["times"]]))
            elif all(name in active for name in rule["list"]):
                _assign(out, target, [active[name] for name in rule["list"]])
        return out

    def restrict(self, name: str, keep, reason: str) -> None:
        """Drop the values of choice ``name`` for which ``keep(value)`` is false (e.g. crops larger than the image)."""
        p = self[name]
        if p.type != "choice":
            raise ValueError(f"{self.path.name}: hyperparameters.{name}: only choices can be restricted")
        values = [v for v in p.spec["values"] if keep(v)]
        if not values:
            raise ValueError(f"{self.path.name}: hyperparameters.{name}: no value of {p.spec['values']} is possible "
                             f"({reason})")
        if values == list(p.spec["values"]):
            return
        spec = dict(p.spec, values=values)
        if spec["default"] not in values:
            spec["default"] = values[-1]
        self.hyperparameters[self.names.index(name)] = dataclasses.replace(p, spec=spec)

    def to_dict(self) -> dict:
        """JSON-able description (saved with a search, compared on resume)."""
        return {
            "name": self.name,
            "model": self.model,
            "paper": self.paper,
            "dataset": self.dataset,
            "config": copy.deepcopy(self.config),
            "quick": copy.deepcopy(self.quick),
            "hyperparameters": {
                p.name: {"type": p.type, "target": p.target, **p.spec,
                         **({"condition": {p.condition[0]: list(p.condition[1])}} if p.condition else {})}
                for p in self.hyperparameters
            },
            "derived": copy.deepcopy(self.derived),
        }


def _assign(out: dict, target: str, value) -> None:
    if target.startswith("model_options."):
        out["model_options"][target.split(".", 1)[1]] = value
    else:
        out[target] = value


def available_spaces() -> list:
    """Names of the shipped spaces (``tuning/spaces/*.yaml``), sorted."""
    return sorted(p.stem for p in SPACES_DIR.glob("*.yaml"))


def space_path(name_or_path: Union[str, Path]) -> Path:
    """The file of a shipped space name, or the given path."""
    text = str(name_or_path)
    if text.endswith((".yaml", ".yml")) or "/" in text:
        return Path(text)
    path = SPACES_DIR / f"{text}.yaml"
    if not path.exists():
        raise ValueError(f"unknown hypermodel {text!r}: no {path}; available: {', '.join(available_spaces())}")
    return path


def load_space(name_or_path: Union[str, Path]) -> SearchSpace:
    """Load and validate a space: a shipped name (``"effnet_s"``) or a YAML file path."""
    import yaml

    path = space_path(name_or_path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: search-space file not found")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ValueError(f"{path.name}: not valid YAML: {e}") from None
    return parse_space(raw, path)


def parse_space(raw, path: Union[str, Path] = "<space>") -> SearchSpace:
    """Validate a space given as a dict (the YAML document); ``path`` names it in errors."""
    path = Path(path)
    where = path.name

    def fail(key: str, expected: str, got=_UNSET):
        shown = "" if got is _UNSET else f", got {got!r}"
        raise ValueError(f"{where}: {key}: expected {expected}{shown}")

    if not isinstance(raw, dict):
        fail("top level", "a mapping with model, hyperparameters, ...", raw)
    unknown = sorted(set(raw) - _TOP_KEYS)
    if unknown:
        fail(unknown[0], f"one of the keys {sorted(_TOP_KEYS)} (unknown key)")
    import jettf.models as zoo

    model = raw.get("model")
    if model not in zoo.available():
        fail("model", f"a model from jettf.models.available() {zoo.available()}", model)
    options = _model_options(zoo.info(model).builder)
    for key in ("config", "quick"):
        if not isinstance(raw.get(key, {}) or {}, dict):
            fail(key, "a mapping of trainer settings", raw.get(key))
    dataset = raw.get("dataset")
    if dataset is not None and not isinstance(dataset, str):
        fail("dataset", "a dataset name such as 'top_tagging_images'", dataset)
    entries = raw.get("hyperparameters")
    if not isinstance(entries, dict) or not entries:
        fail("hyperparameters", "a non-empty mapping of name -> {type, ...}", entries)

    params: list = []
    for name, spec in entries.items():
        key = f"hyperparameters.{name}"
        if not isinstance(name, str) or not name.isidentifier():
            fail(key, "a name made of letters, digits and underscores", name)
        if not isinstance(spec, dict):
            fail(key, "a mapping with 'type' and its keys", spec)
        kind = spec.get("type")
        if kind not in _TYPES:
            fail(f"{key}.type", f"one of {sorted(_TYPES)}", kind)
        extra = sorted(set(spec) - _TYPES[kind] - _COMMON)
        if extra:
            fail(f"{key}.{extra[0]}", f"a key of a {kind} hyperparameter: {sorted(_TYPES[kind] | _COMMON)}")
        body = {k: v for k, v in spec.items() if k in _TYPES[kind]}
        if kind in ("int", "float"):
            _check_range(body, kind, key, fail)
        elif kind == "choice":
            _check_choice(body, key, fail)
        elif kind == "boolean":
            if not isinstance(body.get("default"), bool):
                fail(f"{key}.default", "true or false", body.get("default"))
        elif "value" not in body or not isinstance(body["value"], (int, float, str, bool)):
            fail(f"{key}.value", "a number, string or boolean", body.get("value"))
        target = spec.get("target", f"model_options.{name}")
        if target is not None:
            if not isinstance(target, str):
                fail(f"{key}.target", "a config key, 'model_options.<option>' or null", target)
            if target.startswith("model_options."):
                option = target.split(".", 1)[1]
                if options is not None and option not in options:
                    fail(f"{key}.target", f"an option of jettf.models {model!r} ({', '.join(sorted(options))})",
                         option)
            elif target not in TOP_LEVEL_TARGETS:
                fail(f"{key}.target", f"'model_options.<option>' or one of {list(TOP_LEVEL_TARGETS)}", target)
        condition = None
        if "condition" in spec:
            cond = spec["condition"]
            if not isinstance(cond, dict) or len(cond) != 1:
                fail(f"{key}.condition", "a mapping {parent: [values]} with one parent", cond)
            (parent, allowed), = cond.items()
            if parent not in [p.name for p in params]:
                fail(f"{key}.condition", "a parent hyperparameter declared earlier in the file", parent)
            if not isinstance(allowed, list) or not allowed:
                fail(f"{key}.condition.{parent}", "a non-empty list of the parent's values", allowed)
            condition = (parent, tuple(allowed))
        params.append(HyperParameter(name, kind, target, body, condition))

    names = [p.name for p in params]
    derived = raw.get("derived") or {}
    if not isinstance(derived, dict):
        fail("derived", "a mapping of target -> {repeat, times} or {list}", derived)
    for target, rule in derived.items():
        key = f"derived.{target}"
        if not isinstance(target, str) or not (target.startswith("model_options.") or target in TOP_LEVEL_TARGETS):
            fail("derived", f"targets 'model_options.<option>' or one of {list(TOP_LEVEL_TARGETS)}", target)
        if target.startswith("model_options.") and options is not None and target.split(".", 1)[1] not in options:
            fail(key, f"an option of jettf.models {model!r} ({', '.join(sorted(options))})", target.split(".", 1)[1])
        if not isinstance(rule, dict) or not ({"repeat", "times"} == set(rule) or {"list"} == set(rule)):
            fail(key, "{repeat: NAME, times: NAME} or {list: [NAME, ...]}", rule)
        used = [rule["repeat"], rule["times"]] if "repeat" in rule else rule["list"]
        if not isinstance(used, list) or not used:
            fail(f"{key}.list", "a non-empty list of hyperparameter names", used)
        for name in used:
            if name not in names:
                fail(key, f"names of hyperparameters in this file ({', '.join(names)})", name)

    return SearchSpace(
        name=path.stem,
        path=path,
        model=model,
        paper=str(raw.get("paper", "")),
        dataset=dataset,
        hyperparameters=params,
        derived=dict(derived),
        config=dict(raw.get("config") or {}),
        quick=dict(raw.get("quick") or {}),
    )


def _model_options(builder) -> Optional[set]:
    """Keyword options of a ``build_<model>`` function (None if it takes ``**kwargs``)."""
    sig = inspect.signature(builder)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values()):
        return None
    skip = {"n_classes", "input_shape", "n_global_features", "class_names", "metadata", "name", "global_mean",
            "global_std"}
    return {n for n, p in sig.parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY and n not in skip} | {
        n for n, p in sig.parameters.items() if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD and n not in skip}


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _check_range(body: dict, kind: str, key: str, fail) -> None:
    for k in ("min", "max", "default", "step"):
        if kind == "float" and isinstance(body.get(k), str):  # YAML 1.1 reads 1e-4 (no dot) as a string
            try:
                body[k] = float(body[k])
            except ValueError:
                pass
    for k in ("min", "max", "default"):
        if k not in body:
            fail(f"{key}.{k}", "a number (required)")
        if not _is_number(body[k]) or (kind == "int" and not isinstance(body[k], int)):
            fail(f"{key}.{k}", "an integer" if kind == "int" else "a number", body[k])
    if kind == "float":
        body.update({k: float(body[k]) for k in ("min", "max", "default")})
    if not body["min"] < body["max"]:
        fail(f"{key}.max", f"a value above min={body['min']}", body["max"])
    if not body["min"] <= body["default"] <= body["max"]:
        fail(f"{key}.default", f"a value in [{body['min']}, {body['max']}]", body["default"])
    sampling = body.get("sampling", "linear")
    if sampling not in _SAMPLINGS:
        fail(f"{key}.sampling", f"one of {list(_SAMPLINGS)}", sampling)
    if sampling != "linear" and body["min"] <= 0:
        fail(f"{key}.min", f"a value > 0 for {sampling} sampling", body["min"])
    if "step" in body:
        step = body["step"]
        if not _is_number(step) or step <= 0 or (kind == "int" and not isinstance(step, int)):
            fail(f"{key}.step", "a positive integer" if kind == "int" else "a positive number", step)
        if sampling == "linear" and kind == "int" and (body["default"] - body["min"]) % step:
            fail(f"{key}.default", f"min + a multiple of step={step}", body["default"])


def _check_choice(body: dict, key: str, fail) -> None:
    values = body.get("values")
    if not isinstance(values, list) or not values:
        fail(f"{key}.values", "a non-empty list", values)
    kinds = {type(v) for v in values}
    if len(kinds) != 1 or not kinds <= {int, float, str, bool}:
        fail(f"{key}.values", "numbers, strings or booleans, all of one type", values)
    if len(set(values)) != len(values):
        fail(f"{key}.values", "distinct values", values)
    if body.get("default") not in values:
        fail(f"{key}.default", f"one of {values}", body.get("default"))
    mapping = body.get("map")
    if mapping is not None:
        if not isinstance(mapping, dict) or set(mapping) - set(values):
            fail(f"{key}.map", f"a mapping from some of {values} to config values", mapping)
