"""DistilBERT's hyper-parameters, read from a checkpoint's `config.json`.

Only what the arithmetic needs is typed; every other key of the file (dropout rates,
`output_past`, ...) is kept in `extra` so nothing is silently lost.

A config.json is input from anywhere, so it is read strictly: a duplicate key, nesting
deeper than any config needs, or a non-finite number (`NaN`, `Infinity`, `1e999`, which
Python's json module accepts but JSON does not) anywhere in the file is a ConfigError
naming the file and the field, as is a typed field of the wrong type or range.

DistilBERT names its sizes `dim`, `n_heads`, `n_layers` and `hidden_dim`; the config also
answers to transformers' generic names, `hidden_size`, `num_attention_heads`,
`num_hidden_layers` (read, and given to the constructor or in config.json, as transformers'
`attribute_map` allows) and `intermediate_size` (read only: transformers' DistilBertConfig
does not map it, so `DistilBertConfig(intermediate_size=...)` there is silently ignored;
here it is refused).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, TypeVar

ACTIVATIONS = ("gelu", "relu")
LABEL_MAPS = ("id2label", "label2id")
PROBLEM_TYPES = ("regression", "single_label_classification", "multi_label_classification")


# transformers' generic names -> DistilBERT's (transformers.DistilBertConfig.attribute_map).
ATTRIBUTE_MAP = {"hidden_size": "dim", "num_attention_heads": "n_heads", "num_hidden_layers": "n_layers"}
TRANSFORMERS_DEFAULT_VOCAB_SIZE = 30522  # transformers.DistilBertConfig().vocab_size
MAX_CONFIG_BYTES = 16 * 1024 * 1024  # real config.json files are about a kilobyte
MAX_NESTING = 32  # real config.json files nest 2 deep (id2label inside the object)


class ConfigError(ValueError):
    """A config.json that cannot describe a DistilBERT model; the message names the field."""


class _DuplicateKeyError(ValueError):
    pass


def _refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json `object_pairs_hook`: a key given twice is an error, not "the last one wins"."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKeyError(f"key {key!r} appears twice")
        result[key] = value
    return result


def _is_count(value: Any) -> bool:
    """An integer >= 0; JSON's `true` is not one, though Python's bool is an int."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _short(value: Any, limit: int = 80) -> str:
    """repr(value) cut to `limit` characters, so that a message stays one readable line."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check_numbers_and_nesting(data: dict[str, Any]) -> None:
    """Refuse a non-finite float anywhere in `data`, or nesting deeper than MAX_NESTING.

    Walks with an explicit stack (not recursion), so a hostile depth cannot exhaust
    Python's stack; the field is named by its path, e.g. 'id2label.3'.
    """
    stack: list[tuple[str, Any, int]] = [(str(key), value, 1) for key, value in data.items()]
    while stack:
        where, value, depth = stack.pop()
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"config field {where!r} must be a finite number, got {value!r}")
        if isinstance(value, (dict, list)):
            if depth >= MAX_NESTING:
                raise ConfigError(f"config field {where!r} is nested more than {MAX_NESTING} levels deep")
            items = value.items() if isinstance(value, dict) else enumerate(value)
            stack.extend((f"{where}.{key}", item, depth + 1) for key, item in items)


def _label_id(key: Any) -> int | None:
    """A label id: an int, or (JSON object keys are strings) its decimal spelling; else None."""
    if isinstance(key, int) and not isinstance(key, bool):
        return key
    if isinstance(key, str) and key.isascii() and key.isdigit() and len(key) <= 18:
        return int(key)
    return None


def _id2label(value: Any) -> dict[int, str]:
    """{id: label name}: ids are integers (decimal strings in JSON), names are strings."""
    if not isinstance(value, dict):
        raise ConfigError(f"config field 'id2label' must be an object, got {_short(value)}")
    labels = {}
    for key, name in value.items():
        label_id = _label_id(key)
        if label_id is None or not isinstance(name, str):
            raise ConfigError(
                f"config field 'id2label' must map integer ids to label names, "
                f"got {_short(key)}: {_short(name)}"
            )
        labels[label_id] = name
    return labels


def _label2id(value: Any) -> dict[str, int]:
    """{label name: id}, the inverse map; ids are integers."""
    if not isinstance(value, dict):
        raise ConfigError(f"config field 'label2id' must be an object, got {_short(value)}")
    ids = {}
    for name, label_id in value.items():
        if not isinstance(name, str) or _label_id(label_id) is None or isinstance(label_id, str):
            raise ConfigError(
                f"config field 'label2id' must map label names to integer ids, "
                f"got {_short(name)}: {_short(label_id)}"
            )
        ids[name] = label_id
    return ids


def _architectures(value: Any) -> tuple[str, ...]:
    """config.json's `architectures`: a list of class names (null or [] for none).

    A bare string is refused rather than guessed at: transformers keeps it as the string,
    and then iterates over its characters where it expects class names.
    """
    if value is None:
        return ()
    if not (isinstance(value, list) and all(isinstance(name, str) for name in value)):
        hint = f" (write [{_short(value)}], a list of one name)" if isinstance(value, str) else ""
        raise ConfigError(
            f"config field 'architectures' must be a list of class names, got {_short(value)}{hint}"
        )
    return tuple(value)


def _apply_attribute_map(kwargs: dict[str, Any]) -> dict[str, Any]:
    """`kwargs` with transformers' generic names renamed to DistilBERT's.

    Both names with different values is refused (transformers lets the generic one win
    silently); `intermediate_size` is refused with the name to use instead.
    """
    if "intermediate_size" in kwargs:
        raise ConfigError(
            f"DistilBERT's feed-forward size is 'hidden_dim', not 'intermediate_size' "
            f"(got intermediate_size={_short(kwargs['intermediate_size'])}; transformers' "
            f"DistilBertConfig would keep it unused); pass hidden_dim"
        )
    renamed = dict(kwargs)
    for generic, own in ATTRIBUTE_MAP.items():
        if generic not in renamed:
            continue
        value = renamed.pop(generic)
        if own in renamed and renamed[own] != value:
            raise ConfigError(
                f"config fields {generic!r} ({_short(value)}) and {own!r} ({_short(renamed[own])}) "
                f"name the same size and disagree; give one of them"
            )
        renamed[own] = value
    return renamed


def read_config_json(path: str | Path) -> Any:
    """The parsed content of a config.json, read strictly (size, UTF-8, JSON, no duplicate keys).

    Any JSON value comes back; the config classes check that it is an object of the right fields.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path} is not a config.json: larger than {MAX_CONFIG_BYTES} bytes")
    try:
        return json.loads(path.read_bytes().decode("utf-8"), object_pairs_hook=_refuse_duplicate_keys)
    except (UnicodeDecodeError, json.JSONDecodeError, _DuplicateKeyError) as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path} is not valid JSON: nested too deeply to parse") from None


def _drop_agreeing_intermediate_size(data: dict[str, Any]) -> dict[str, Any]:
    """A config.json may state `intermediate_size` beside `hidden_dim` if they agree; it is dropped."""
    if "intermediate_size" not in data:
        return data
    hidden_dim = data.get("hidden_dim", _DistilBertFields.hidden_dim)
    if data["intermediate_size"] != hidden_dim:
        raise ConfigError(
            f"config field 'intermediate_size' ({_short(data['intermediate_size'])}) disagrees with "
            f"'hidden_dim' ({_short(hidden_dim)}); DistilBERT reads hidden_dim (transformers would "
            f"ignore intermediate_size)"
        )
    return {key: value for key, value in data.items() if key != "intermediate_size"}


ConfigT = TypeVar("ConfigT", bound="_ConfigFile")


def _parse_label_fields(kwargs: dict[str, Any]) -> dict[str, Any]:
    """`architectures`, `id2label` and `label2id` from their JSON forms, checked (in place)."""
    if "architectures" in kwargs:
        kwargs["architectures"] = _architectures(kwargs["architectures"])
    if "id2label" in kwargs:
        kwargs["id2label"] = _id2label(kwargs["id2label"])
    if "label2id" in kwargs:
        kwargs["label2id"] = _label2id(kwargs["label2id"])
    return kwargs


class _ConfigFile:
    """What every family's config does with config.json: read it (naming the file in errors)
    and write it back. A family's config is a frozen dataclass that adds `from_dict`."""

    model_type: ClassVar[str]
    architectures: tuple[str, ...]
    id2label: dict[int, str]
    extra: dict[str, Any]

    @classmethod
    def from_dict(cls: type[ConfigT], data: dict[str, Any]) -> ConfigT:
        raise NotImplementedError

    @classmethod
    def from_json_file(cls: type[ConfigT], path: str | Path) -> ConfigT:
        path = Path(path)
        data = read_config_json(path)
        try:
            return cls.from_dict(data)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None

    @classmethod
    def from_pretrained(cls: type[ConfigT], directory: str | Path) -> ConfigT:
        """Read `config.json` from a model directory."""
        return cls.from_json_file(Path(directory) / "config.json")

    def to_dict(self) -> dict[str, Any]:
        """The config.json form (the inverse of `from_dict`)."""
        data: dict[str, Any] = {"model_type": self.model_type, **self.extra}
        for f in fields(self):  # type: ignore[arg-type]  # a dataclass subclass, always
            if f.name != "extra":
                data[f.name] = getattr(self, f.name)
        data["architectures"] = list(self.architectures)
        data["id2label"] = {str(k): v for k, v in self.id2label.items()}
        return data


@dataclass(frozen=True)
class _DistilBertFields:
    """The typed fields and their checks; `DistilBertConfig` adds the names transformers uses."""

    vocab_size: int = 119547
    max_position_embeddings: int = 512
    sinusoidal_pos_embds: bool = False
    n_layers: int = 6
    n_heads: int = 12
    dim: int = 768
    hidden_dim: int = 3072
    activation: str = "gelu"
    pad_token_id: int | None = 0
    architectures: tuple[str, ...] = ()
    id2label: dict[int, str] = field(default_factory=dict)
    label2id: dict[str, int] = field(default_factory=dict)
    problem_type: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("vocab_size", "max_position_embeddings", "n_layers", "n_heads", "dim",
                     "hidden_dim"):  # fmt: skip
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"config field {name!r} must be a positive integer, got {value!r}")
        if self.dim % self.n_heads != 0:
            raise ConfigError(
                f"config field 'n_heads' ({self.n_heads}) must divide 'dim' ({self.dim}) evenly"
            )
        if self.activation not in ACTIVATIONS:
            raise ConfigError(
                f"config field 'activation' must be one of {ACTIVATIONS}, got {self.activation!r}"
            )
        if not isinstance(self.sinusoidal_pos_embds, bool):
            raise ConfigError(
                f"config field 'sinusoidal_pos_embds' must be true or false, "
                f"got {self.sinusoidal_pos_embds!r}"
            )
        pad = self.pad_token_id
        if pad is not None and not _is_count(pad):
            raise ConfigError(
                f"config field 'pad_token_id' must be an integer >= 0 or null, got {_short(pad)}"
            )
        names = self.architectures
        if not (isinstance(names, tuple) and all(isinstance(name, str) for name in names)):
            raise ConfigError(
                f"config field 'architectures' must be a list of class names, got {_short(names)}"
            )
        num_labels = self.extra.get("num_labels") if isinstance(self.extra, dict) else None
        if num_labels is not None and (not _is_count(num_labels) or num_labels == 0):
            raise ConfigError(
                f"config field 'num_labels' must be a positive integer, got {_short(num_labels)}"
            )
        if self.problem_type is not None and self.problem_type not in PROBLEM_TYPES:
            raise ConfigError(
                f"config field 'problem_type' must be one of {PROBLEM_TYPES} or null, "
                f"got {self.problem_type!r}"
            )



class DistilBertConfig(_DistilBertFields, _ConfigFile):
    """DistilBERT's hyper-parameters (a frozen dataclass; see the module docstring).

    `DistilBertConfig(dim=768, n_heads=12, ...)`; `hidden_size=`, `num_attention_heads=` and
    `num_hidden_layers=` are accepted for `dim`, `n_heads` and `n_layers`.
    """

    model_type: ClassVar[str] = "distilbert"
    attribute_map: ClassVar[dict[str, str]] = ATTRIBUTE_MAP

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **_apply_attribute_map(kwargs))

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads

    @property
    def num_labels(self) -> int:
        return len(self.id2label)

    # transformers' generic names, read-only (the config is frozen)
    @property
    def hidden_size(self) -> int:
        return self.dim

    @property
    def num_attention_heads(self) -> int:
        return self.n_heads

    @property
    def num_hidden_layers(self) -> int:
        return self.n_layers

    @property
    def intermediate_size(self) -> int:
        return self.hidden_dim

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DistilBertConfig:
        """Build from a parsed config.json. Unknown keys go to `extra`."""
        if not isinstance(data, dict):
            raise ConfigError(f"config must be a JSON object, got {type(data).__name__}")
        _check_numbers_and_nesting(data)
        if data.get("model_type", cls.model_type) != cls.model_type:
            raise ConfigError(
                f"config field 'model_type' is {_short(data['model_type'])}; {cls.__name__} reads "
                f"{cls.model_type!r} configs"
            )
        data = _apply_attribute_map(_drop_agreeing_intermediate_size(data))
        known = {name for name in cls.__dataclass_fields__ if name != "extra"}
        kwargs = {key: value for key, value in data.items() if key in known}
        # A file that leaves a key out means transformers' default. All match this class's
        # defaults but the vocabulary: transformers assumes the English 30,522, this class
        # the multilingual 119,547 (every real config.json states it either way).
        kwargs.setdefault("vocab_size", TRANSFORMERS_DEFAULT_VOCAB_SIZE)
        # transformers writes `"label2id": null` when only id2label was given: null means absent.
        kwargs = {key: value for key, value in kwargs.items() if value is not None or key not in LABEL_MAPS}
        extra = {key: value for key, value in data.items() if key not in known}
        return cls(**_parse_label_fields(kwargs), extra=extra)


# ------------------------------------------------------------------------------ BERT
BERT_ACTIVATIONS = ("gelu", "relu", "gelu_new")
# BERT's options this package does not implement, with the one value it does: a config asking
# for another is refused, never silently run as absolute-position, encoder-only BERT.
BERT_UNSUPPORTED = {"position_embedding_type": "absolute", "is_decoder": False, "add_cross_attention": False}


@dataclass(frozen=True)
class BertConfig(_ConfigFile):
    """BERT's hyper-parameters under transformers' BertConfig names (a frozen dataclass).

    Defaults are transformers' (bert-base-uncased's sizes). The encoder reads the same
    DistilBERT-style names (`dim`, `n_heads`, `n_layers`, `hidden_dim`, `activation`) as
    read-only properties, so both families share one transformer stack. Unknown keys go to
    `extra`. Refused: `position_embedding_type` other than "absolute", `hidden_act` other
    than gelu / relu / gelu_new, `is_decoder`, `add_cross_attention`.
    """

    model_type: ClassVar[str] = "bert"

    vocab_size: int = TRANSFORMERS_DEFAULT_VOCAB_SIZE
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    pad_token_id: int | None = 0
    position_embedding_type: str = "absolute"
    is_decoder: bool = False
    add_cross_attention: bool = False
    architectures: tuple[str, ...] = ()
    id2label: dict[int, str] = field(default_factory=dict)
    label2id: dict[str, int] = field(default_factory=dict)
    problem_type: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                     "intermediate_size", "max_position_embeddings", "type_vocab_size"):  # fmt: skip
            value = getattr(self, name)
            if not _is_count(value) or value == 0:
                raise ConfigError(f"config field {name!r} must be a positive integer, got {_short(value)}")
        if self.hidden_size % self.num_attention_heads != 0:
            raise ConfigError(
                f"config field 'num_attention_heads' ({self.num_attention_heads}) must divide "
                f"'hidden_size' ({self.hidden_size}) evenly"
            )
        if not isinstance(self.hidden_act, str) or self.hidden_act not in BERT_ACTIVATIONS:
            raise ConfigError(
                f"config field 'hidden_act' must be one of {BERT_ACTIVATIONS}, got {_short(self.hidden_act)}"
            )
        eps = self.layer_norm_eps
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not (0 < eps < 1):
            raise ConfigError(f"config field 'layer_norm_eps' must be a number in (0, 1), got {_short(eps)}")
        for name, supported in BERT_UNSUPPORTED.items():
            value = getattr(self, name)
            if value != supported or type(value) is not type(supported):
                raise ConfigError(
                    f"config field {name!r} is {_short(value)}; this package implements only "
                    f"{name}={supported!r} (an encoder with absolute learned positions)"
                )
        pad = self.pad_token_id
        if pad is not None and not _is_count(pad):
            raise ConfigError(
                f"config field 'pad_token_id' must be an integer >= 0 or null, got {_short(pad)}"
            )
        names = self.architectures
        if not (isinstance(names, tuple) and all(isinstance(name, str) for name in names)):
            raise ConfigError(
                f"config field 'architectures' must be a list of class names, got {_short(names)}"
            )
        num_labels = self.extra.get("num_labels") if isinstance(self.extra, dict) else None
        if num_labels is not None and (not _is_count(num_labels) or num_labels == 0):
            raise ConfigError(
                f"config field 'num_labels' must be a positive integer, got {_short(num_labels)}"
            )
        if self.problem_type is not None and self.problem_type not in PROBLEM_TYPES:
            raise ConfigError(
                f"config field 'problem_type' must be one of {PROBLEM_TYPES} or null, "
                f"got {self.problem_type!r}"
            )

    # The names the shared encoder reads (DistilBERT's), read-only.
    @property
    def dim(self) -> int:
        return self.hidden_size

    @property
    def n_heads(self) -> int:
        return self.num_attention_heads

    @property
    def n_layers(self) -> int:
        return self.num_hidden_layers

    @property
    def hidden_dim(self) -> int:
        return self.intermediate_size

    @property
    def activation(self) -> str:
        return self.hidden_act

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @property
    def num_labels(self) -> int:
        return len(self.id2label)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BertConfig:
        """Build from a parsed config.json. Unknown keys go to `extra`."""
        if not isinstance(data, dict):
            raise ConfigError(f"config must be a JSON object, got {type(data).__name__}")
        _check_numbers_and_nesting(data)
        if data.get("model_type", cls.model_type) != cls.model_type:
            raise ConfigError(
                f"config field 'model_type' is {_short(data['model_type'])}; {cls.__name__} reads "
                f"{cls.model_type!r} configs"
            )
        known = {f.name for f in fields(cls) if f.name != "extra"}
        kwargs = {key: value for key, value in data.items() if key in known}
        kwargs = {key: value for key, value in kwargs.items() if value is not None or key not in LABEL_MAPS}
        if kwargs.get("position_embedding_type", "absolute") is None:
            kwargs.pop("position_embedding_type")  # transformers reads null as absolute
        extra = {key: value for key, value in data.items() if key not in known and key != "model_type"}
        return cls(**_parse_label_fields(kwargs), extra=extra)
