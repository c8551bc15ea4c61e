"""Dev-time helper: re-derive the Rust exception tables of `_unicode.py` by probing `tokenizers`.

Not imported by the tokenizer (which never imports `tokenizers`). Run it after upgrading
Python or `tokenizers` to see whether the small exception sets in `_unicode.py` still hold::

    python -m tokenizer._make_tables

It walks every code point through the installed Rust ``BertNormalizer`` and
``BertPreTokenizer`` and prints, as Python literals, where their character classes differ from
the ``unicodedata`` rules of the running Python. Paste changes into `_unicode.py`; the
exhaustive test (``tests/test_tokenizer_exhaustive.py``) checks the result on every code point.
"""

from __future__ import annotations

import unicodedata


def _ranges(cps: list[int]) -> str:
    out: list[list[int]] = []
    for cp in sorted(cps):
        if out and out[-1][1] == cp - 1:
            out[-1][1] = cp
        else:
            out.append([cp, cp])
    return ", ".join(
        f"0x{a:04X}" if a == b else f"*range(0x{a:04X}, 0x{b + 1:04X})" for a, b in out
    )


def probe() -> dict[str, list[int]]:
    from tokenizers import normalizers, pre_tokenizers

    clean = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=False
    )
    strip = normalizers.BertNormalizer(
        clean_text=False, handle_chinese_chars=False, strip_accents=True, lowercase=False
    )
    pretok = pre_tokenizers.BertPreTokenizer()
    found: dict[str, list[int]] = {"removed": [], "space": [], "cjk": [], "punct": [], "mark": []}
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        ch = chr(cp)
        out = clean.normalize_str(f"a{ch}b")
        if out == "ab":
            found["removed"].append(cp)
        elif out == "a b":
            found["space"].append(cp)
        elif out == f"a {ch} b":
            found["cjk"].append(cp)
        elif [s for s, _ in pretok.pre_tokenize_str(f"a{ch}b")] == ["a", ch, "b"]:
            found["punct"].append(cp)
        # A nonspacing mark for Rust: NFD of "a"+ch loses ch when accents are stripped.
        if unicodedata.normalize("NFD", ch) == ch and strip.normalize_str(f"a{ch}") == "a":
            found["mark"].append(cp)
    return found


def main() -> None:
    from tokenizer import _unicode as u

    found = probe()
    cat = unicodedata.category
    cps = [cp for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF]
    py_format = [cp for cp in cps if cat(chr(cp)) in ("Cc", "Cf", "Co") and chr(cp) not in "\t\n\r"]
    py_punct = [cp for cp in cps if cat(chr(cp)).startswith("P") or u.is_ascii_punctuation(cp)]
    py_mark = [
        cp for cp in cps if cat(chr(cp)) == "Mn" and unicodedata.normalize("NFD", chr(cp)) == chr(cp)
    ]
    removed = set(found["removed"]) - {0xFFFD}
    print("unicodedata", unicodedata.unidata_version)
    print("RUST_KEPT_FORMAT =", _ranges(sorted(set(py_format) - removed)))
    print("(removed by Rust, not Cc/Cf/Co here):", _ranges(sorted(removed - set(py_format))))
    print("RUST_NOT_PUNCTUATION =", _ranges(sorted(set(py_punct) - set(found["punct"]))))
    print("RUST_EXTRA_PUNCTUATION =", _ranges(sorted(set(found["punct"]) - set(py_punct))))
    print("RUST_NOT_NONSPACING_MARK =", _ranges(sorted(set(py_mark) - set(found["mark"]))))
    print("RUST_EXTRA_NONSPACING_MARK =", _ranges(sorted(set(found["mark"]) - set(py_mark))))
    print("White_Space (Rust) =", _ranges(found["space"]))
    print("CJK (Rust) =", _ranges(found["cjk"]))


if __name__ == "__main__":
    main()
