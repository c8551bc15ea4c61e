"""Every Unicode code point, alone and inside a word, through every tokenizer.

Each code point ``c`` becomes the unit ``"c a{c}b\\n"``; units are concatenated into long
texts (one per 16,384 code points, so the Rust tokenizer is called in batches) and tokens are
assigned back to their unit by their offsets.

Asserted exactly:

* our default mode vs transformers' Rust ``BertTokenizer`` (ids and offsets): the remaining
  divergences are `EXPECTED_DEFAULT_DIVERGENCES` (none);
* our NFC mode vs ``BertTokenizerLegacy`` (ids): `EXPECTED_NFC_DIVERGENCES` (none);
* Rust vs legacy: exactly the classes documented in docs/tokenizer.md
  (`documented_rust_python_divergences`), so a new one fails. The legacy tokenizer follows the
  running Python's ``unicodedata``, so these classes are computed for the running Python
  (their sizes differ between 3.10, 3.11 and 3.13), never hard-coded for one version;
* the frozen tables of the default mode (``tokenizer/_unicode_tables.py``) are exactly what
  the installed ``tokenizers`` answers, probed class by class
  (``scripts/make_unicode_tables.py``).

Runs without torch: only transformers' tokenizers are needed.
"""

from __future__ import annotations

import bisect
import importlib.util
import sys
import unicodedata

import pytest
from conftest import REPO_ROOT, require_module

from tokenizer import WordPieceTokenizer, _unicode, _unicode_tables

EXPECTED_DEFAULT_DIVERGENCES: set[int] = set()  # see docs/tokenizer.md: none remain
EXPECTED_NFC_DIVERGENCES: set[int] = set()
CHUNK = 16384
CODE_POINTS = [cp for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF]


def _unit(cp: int) -> str:
    c = chr(cp)
    return f"{c} a{c}b\n"


@pytest.fixture(scope="module")
def chunks():
    out = []
    for i in range(0, len(CODE_POINTS), CHUNK):
        cps = CODE_POINTS[i : i + CHUNK]
        units = [_unit(cp) for cp in cps]
        starts, pos = [], 0
        for u in units:
            starts.append(pos)
            pos += len(u)
        out.append((cps, "".join(units), starts))
    return out


def _per_unit(ids, offsets, starts, n):
    """Split a chunk's tokens into per-unit (ids, offsets relative to the unit)."""
    units = [([], []) for _ in range(n)]
    for i, (a, b) in zip(ids, offsets, strict=True):
        k = bisect.bisect_right(starts, a) - 1
        units[k][0].append(i)
        units[k][1].append((a - starts[k], b - starts[k]))
    return units


@pytest.fixture(scope="module")
def tokenizers(bert_tokenizers):
    return bert_tokenizers


@pytest.fixture(scope="module")
def rust_units(tokenizers, chunks):
    texts = [text for _, text, _ in chunks]
    enc = tokenizers["rust"](texts, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    return [
        _per_unit(ids, offs, starts, len(cps))
        for (cps, _, starts), ids, offs in zip(chunks, enc["input_ids"], enc["offset_mapping"], strict=True)
    ]


@pytest.fixture(scope="module")
def nfc_units(tokenizers, chunks):
    """Our NFC mode per unit, after checking it equals legacy on every chunk."""
    ours, legacy = tokenizers["ours_nfc"], tokenizers["legacy"]
    texts = [text for _, text, _ in chunks]
    enc = ours(texts, add_special_tokens=False, return_offsets_mapping=True)
    want = legacy(texts, add_special_tokens=False, verbose=False)["input_ids"]
    divergent = set()
    for (cps, _, _), got_ids, want_ids in zip(chunks, enc["input_ids"], want, strict=True):
        if got_ids != want_ids:  # localize: unit by unit
            for cp in cps:
                u = _unit(cp)
                if ours.encode(u, add_special_tokens=False) != legacy.encode(u, add_special_tokens=False):
                    divergent.add(cp)
    units = [
        _per_unit(ids, offs, starts, len(cps))
        for (cps, _, starts), ids, offs in zip(chunks, enc["input_ids"], enc["offset_mapping"], strict=True)
    ]
    return units, divergent


def test_every_code_point_default_mode_matches_rust(tokenizers, chunks, rust_units):
    ours = tokenizers["ours"]
    texts = [text for _, text, _ in chunks]
    enc = ours(texts, add_special_tokens=False, return_offsets_mapping=True)
    divergent = set()
    for (cps, _, starts), want, ids, offs in zip(
        chunks, rust_units, enc["input_ids"], enc["offset_mapping"], strict=True
    ):
        got = _per_unit(ids, offs, starts, len(cps))
        divergent |= {cp for cp, g, w in zip(cps, got, want, strict=True) if g != w}
    print(f"default mode vs Rust: {len(CODE_POINTS)} code points, {len(divergent)} divergent")
    assert divergent == EXPECTED_DEFAULT_DIVERGENCES, sorted(map(hex, divergent))[:50]


def test_every_code_point_nfc_mode_matches_legacy(nfc_units):
    _, divergent = nfc_units
    print(f"NFC mode vs legacy: {len(CODE_POINTS)} code points, {len(divergent)} divergent")
    assert divergent == EXPECTED_NFC_DIVERGENCES, sorted(map(hex, divergent))[:50]


_LABELS = ("word", "punct", "cjk", "space", "removed")  # later ones win, as in the tokenizer


def class_labels(flavour: str) -> bytearray:
    """Per code point, the index in `_LABELS` of its class for `flavour` (with cleaning on)."""
    labels = bytearray(len(range(0x110000)))
    classes = _unicode.code_point_classes(flavour)
    for k, name in enumerate(_LABELS[1:], start=1):
        for lo, hi in classes[name]:
            labels[lo : hi + 1] = bytes([k]) * (hi - lo + 1)
    return labels


def documented_rust_python_divergences(ours: WordPieceTokenizer) -> dict[str, set[int]]:
    """The classes of docs/tokenizer.md's divergence table, computed from their definitions
    for the *running* Python (whose unicodedata the legacy tokenizer follows).

    Character classes: where Rust's frozen Unicode 8.0 tables and this Python's unicodedata
    put a code point in different classes (unassigned code points are listed on their own).
    The NFC class is "NFC changes the unit and the vocabulary tells the forms apart", decided
    with our default mode (which equals Rust on every code point, see the test above).
    """
    cat = unicodedata.category
    rust, python = class_labels("rust"), class_labels("python")
    unassigned = {cp for cp in CODE_POINTS if cat(chr(cp)) == "Cn"}
    differ = {cp for cp in CODE_POINTS if rust[cp] != python[cp]} - unassigned
    cjk_hole = set(range(0x2B820, 0x2B920))
    classes = {
        f"unassigned in Unicode {unicodedata.unidata_version} (Cn): Python removes": unassigned,
        "CJK U+2B820-U+2B91F missing from Rust's table": differ & cjk_hole,
        "format characters newer than Unicode 8 (Rust keeps)": {
            cp for cp in differ if _LABELS[python[cp]] == "removed" and _LABELS[rust[cp]] == "word"
        },
        "punctuation newer than Unicode 8 (Rust: word character)": {
            cp for cp in differ if _LABELS[python[cp]] == "punct" and _LABELS[rust[cp]] == "word"
        },
        "Unicode 8 punctuation, recategorized later": {
            cp for cp in differ if _LABELS[rust[cp]] == "punct" and _LABELS[python[cp]] == "word"
        },
    }
    other = differ - set().union(*classes.values())
    classes["other class differences"] = other  # none on 3.10-3.13; printed if that changes
    nfc_class = set()
    for cp in CODE_POINTS:
        u = _unit(cp)
        n = unicodedata.normalize("NFC", u)
        if n != u and cp not in unassigned:
            if ours.encode(u, add_special_tokens=False) != ours.encode(n, add_special_tokens=False):
                nfc_class.add(cp)
    classes["NFC changes the text (singletons, exclusions, a+mark)"] = nfc_class
    return classes


def test_rust_vs_python_divergences_are_the_documented_ones(tokenizers, rust_units, nfc_units):
    units_nfc, nfc_divergent = nfc_units
    assert not nfc_divergent  # our NFC mode stands in for legacy only where they agree
    observed = set()
    for cps, rust_chunk, nfc_chunk in zip(
        (CODE_POINTS[i : i + CHUNK] for i in range(0, len(CODE_POINTS), CHUNK)),
        rust_units, units_nfc, strict=True,
    ):
        observed |= {cp for cp, r, p in zip(cps, rust_chunk, nfc_chunk, strict=True) if r[0] != p[0]}
    classes = documented_rust_python_divergences(tokenizers["ours"])
    print(f"Python {sys.version.split()[0]}, unicodedata {unicodedata.unidata_version}")
    for name, cps in classes.items():
        print(f"{name}: {len(cps & observed)} code points")
    documented = set().union(*classes.values())
    print(f"Rust vs legacy: {len(observed)} divergent code points")
    assert observed == documented, (
        f"undocumented: {sorted(map(hex, observed - documented))[:30]}; "
        f"documented but equal: {sorted(map(hex, documented - observed))[:30]}"
    )


def _load_table_script():
    spec = importlib.util.spec_from_file_location(
        "make_unicode_tables", REPO_ROOT / "scripts" / "make_unicode_tables.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_frozen_tables_are_what_the_installed_tokenizers_does():
    """Each frozen class equals the installed Rust components' answer on every code point, and
    the file is byte for byte what the script writes (so it was not edited by hand)."""
    tokenizers = require_module("tokenizers")
    script = _load_table_script()
    found = script.probe()
    for name in script.CLASSES:
        assert getattr(_unicode_tables, name) == tuple(script.to_ranges(found[name])), name
    assert _unicode_tables.TOKENIZERS_VERSION == tokenizers.__version__
    expected = script.render(found, tokenizers.__version__)
    assert (REPO_ROOT / "tokenizer" / "_unicode_tables.py").read_text(encoding="utf-8") == expected
