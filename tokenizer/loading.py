"""Reading a tokenizer from its files: ``vocab.txt``, ``tokenizer_config.json``,
``special_tokens_map.json`` or ``tokenizer.json`` alone.

`load_pretrained` returns the vocabulary and the constructor options the files imply; the
caller's overrides win, and a field the caller overrides is not read (nor checked). Every
problem names the file (and the field, or the line).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .checks import check_bool, check_index, check_model_max_length, check_never_split, check_side
from .wordpiece import CONTINUATION_PREFIX, load_tokenizer_json, load_vocab_file

SPECIAL_ROLES = ("unk_token", "sep_token", "pad_token", "cls_token", "mask_token")
# The tokenizer_config.json fields the constructor takes (special tokens apart).
CONFIG_OPTIONS = ("do_lower_case", "strip_accents", "tokenize_chinese_chars", "clean_text",
                  "never_split", "max_input_chars_per_word", "unicode_normalization",
                  "model_max_length", "clean_up_tokenization_spaces", "padding_side",
                  "truncation_side")  # fmt: skip
_BOOL_OPTIONS = ("do_lower_case", "strip_accents", "tokenize_chinese_chars", "clean_text",
                 "clean_up_tokenization_spaces")  # fmt: skip


def load_pretrained(
    path: str | os.PathLike[str], overrides: dict[str, Any]
) -> tuple[dict[str, int], dict[str, Any]]:
    """(vocabulary, constructor options) from a model directory or a single file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"tokenizer path not found: {path}")
    if path.is_file():
        if path.suffix == ".json":
            return _from_tokenizer_json(path, overrides)
        return load_vocab_file(path), dict(overrides)
    config_path = path / "tokenizer_config.json"
    config = read_json_config(config_path)
    for role, value in read_json_config(path / "special_tokens_map.json").items():
        config.setdefault(role, value)
    # What the caller overrides is not read from the file (nor checked there).
    config = {k: v for k, v in config.items() if k not in overrides}
    options = {**options_from_config(config, config_path), **overrides}
    if (path / "vocab.txt").is_file():
        return load_vocab_file(path / "vocab.txt"), options
    if (path / "tokenizer.json").is_file():
        return _from_tokenizer_json(path / "tokenizer.json", options)
    raise FileNotFoundError(f"{path}: neither vocab.txt nor tokenizer.json found")


def _from_tokenizer_json(path: Path, overrides: dict[str, Any]) -> tuple[dict[str, int], dict[str, Any]]:
    data = load_tokenizer_json(path)
    try:
        options = options_from_tokenizer_json(data, path)
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise ValueError(f"{path}: malformed tokenizer.json ({type(exc).__name__}: {exc})") from None
    options.update(overrides)
    return data["model"]["vocab"], options


def options_from_tokenizer_json(data: dict[str, Any], path: Path) -> dict[str, Any]:
    """The constructor options a ``tokenizer.json`` implies (model, normalizer, specials)."""
    model = data["model"]
    if model.get("continuing_subword_prefix", CONTINUATION_PREFIX) != CONTINUATION_PREFIX:
        raise ValueError(f"{path}: only the '##' continuation prefix is supported")
    options: dict[str, Any] = {
        "unk_token": model.get("unk_token", "[UNK]"),
        "max_input_chars_per_word": model.get("max_input_chars_per_word", 100),
    }
    norm = data.get("normalizer")
    if norm is not None:
        if norm.get("type") != "BertNormalizer":
            raise ValueError(f"{path}: normalizer {norm.get('type')!r} is not BertNormalizer")
        options.update(
            clean_text=bool(norm.get("clean_text", True)),
            tokenize_chinese_chars=bool(norm.get("handle_chinese_chars", True)),
            strip_accents=norm.get("strip_accents"),
            do_lower_case=bool(norm.get("lowercase", False)),
        )
    options.update(_specials_from_post_processor(data.get("post_processor") or {}))
    padding = data.get("padding") or {}
    if padding.get("pad_token"):
        options["pad_token"] = padding["pad_token"]
    added = {t["content"] for t in data.get("added_tokens", []) if t.get("special")}
    if "[MASK]" not in added and len(added) == 5:
        rest = added - {options.get(r) for r in ("unk_token", "sep_token", "cls_token")}
        rest.discard(options.get("pad_token", "[PAD]"))
        if len(rest) == 1:
            options["mask_token"] = rest.pop()
    return options


def _specials_from_post_processor(post: dict[str, Any]) -> dict[str, str]:
    """``[CLS]``/``[SEP]`` as the post-processor names them (BertProcessing or a template)."""
    if post.get("type") == "BertProcessing":
        return {"sep_token": post["sep"][0], "cls_token": post["cls"][0]}
    if post.get("type") == "TemplateProcessing":
        single = [p["SpecialToken"]["id"] for p in post.get("single", []) if "SpecialToken" in p]
        if len(single) == 2:
            return {"cls_token": single[0], "sep_token": single[1]}
    return {}


def read_json_config(path: Path) -> dict[str, Any]:
    """A JSON object from `path` ({} when the file is absent); errors name the file."""
    if not path.is_file():
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}, line {exc.lineno}: not valid JSON ({exc.msg})") from None
    except RecursionError:
        raise ValueError(f"{path}: JSON nested too deeply to be a tokenizer configuration") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return data


def options_from_config(config: dict[str, Any], source: str | os.PathLike[str]) -> dict[str, Any]:
    """The constructor options a ``tokenizer_config.json`` sets, checked: a bad value is an
    error naming the file and the field (the same rules as the constructor's)."""
    where = f"{source}: "
    options = {k: config[k] for k in CONFIG_OPTIONS if config.get(k) is not None}
    try:
        for name in _BOOL_OPTIONS:
            if name in options:
                check_bool(name, options[name], where=where)
        if "never_split" in options:
            options["never_split"] = check_never_split(options["never_split"], where)
    except TypeError as exc:  # a wrong type in a file is bad file content: ValueError
        raise ValueError(str(exc)) from None
    if "max_input_chars_per_word" in options:
        check_index("max_input_chars_per_word", options["max_input_chars_per_word"], 1, where)
    if "model_max_length" in options:
        options["model_max_length"] = check_model_max_length(options["model_max_length"], where)
    for side in ("padding_side", "truncation_side"):
        if side in options:
            check_side(side, options[side], where)
    if options.get("unicode_normalization", "NFC") != "NFC":
        raise ValueError(f"{where}unicode_normalization must be null or 'NFC', "
                         f"got {options['unicode_normalization']!r}")  # fmt: skip
    for role in SPECIAL_ROLES:
        value = config.get(role)
        if isinstance(value, dict):  # serialized AddedToken
            value = value.get("content")
        if isinstance(value, str):
            options[role] = value
    return options


def save_tokenizer(tokenizer: Any, save_directory: str | os.PathLike[str]) -> tuple[str, ...]:
    """Write `tokenizer` as ``vocab.txt``, ``tokenizer_config.json`` and
    ``special_tokens_map.json``, the files `load_pretrained` (and transformers'
    `BertTokenizer`) read. Returns the paths written."""
    directory = Path(save_directory)
    if directory.exists() and not directory.is_dir():
        raise NotADirectoryError(f"save_pretrained: {directory} exists and is not a directory")
    directory.mkdir(parents=True, exist_ok=True)
    paths = (
        directory / "vocab.txt",
        directory / "tokenizer_config.json",
        directory / "special_tokens_map.json",
    )
    paths[0].write_text(vocab_file_text(tokenizer.vocab), encoding="utf-8")
    specials = {role: getattr(tokenizer, role) for role in SPECIAL_ROLES}
    _write_json(paths[1], {"tokenizer_class": "BertTokenizer", **config_of(tokenizer), **specials})
    _write_json(paths[2], specials)
    return tuple(str(p) for p in paths)


def vocab_file_text(vocab: dict[str, int]) -> str:
    """``vocab.txt``: one token per line, line number = id; the ids must be 0..n-1."""
    by_id = sorted((i, t) for t, i in vocab.items())
    if [i for i, _ in by_id] != list(range(len(by_id))):
        raise ValueError("save_pretrained: the vocabulary ids are not 0..n-1, so no vocab.txt can hold them")
    for _, token in by_id:
        if "\n" in token or "\r" in token:
            raise ValueError(f"save_pretrained: token {token!r} has a line break; vocab.txt cannot hold it")
    return "".join(token + "\n" for _, token in by_id)


def config_of(tokenizer: Any) -> dict[str, Any]:
    """The tokenizer_config.json fields of `tokenizer`'s options."""
    config = {name: getattr(tokenizer, name) for name in CONFIG_OPTIONS}
    config["never_split"] = list(config["never_split"]) or None
    config["max_input_chars_per_word"] = tokenizer.max_input_chars_per_word
    return {k: v for k, v in config.items() if v is not None}


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
