"""The tokenizer's test corpus: multilingual sentences, their NFD forms, and hard cases.

Used by ``tests/test_tokenizer_*.py`` and by ``benchmarks/bench_tokenizer.py`` (which builds
its "web-like" lines from these sentences with seeded variation, so no network is needed).
"""

from __future__ import annotations

import random
import unicodedata
from pathlib import Path

HERE = Path(__file__).resolve().parent


def sentences() -> list[str]:
    """The hand-written sentences of ``multilingual.txt`` (as typed, i.e. NFC)."""
    lines = (HERE / "multilingual.txt").read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line.strip() and not line.startswith("#")]


# Characters and situations that tokenizers get wrong; each line exercises one or more rules.
SPECIAL_LINES = [
    "",
    " ",
    "\t\n\r  \u3000",
    "Hello I'm a [MASK] model.",
    "the[MASK]of [mask] [CLS]x[SEP]y[PAD][UNK] [MASK][MASK] [MAS K] [[MASK]]",
    "no\u00a0break\u00a0space and narrow\u202fno-break\u2009thin",
    "zero\u200bwidth\u200bspace, zw\u200cnon\u200djoiner, word\u2060joiner, \ufeffBOM",
    "Silben\u00adtrennung mit wei\u00adchem Binde\u00adstrich",
    "\u200fעברית\u200e abc \u202bembedded\u202c \u202eoverride\u202c \u2066isolate\u2069",
    "کتاب\u200cها و می\u200cخواهم",
    "tab\there\nnewline\r\ncarriage\x0bvt\x0cff\x1cfs\x1fus \x85nel",
    "nul\x00char \ufffdreplacement \x7fdel \x9fapc",
    "line\u2028separator\u2029paragraph \u1680ogham \u205fmath \u180emongolian",
    "$+=<>^|~ `a` $5+$3=8 a<b>c 2^10 x|y ~z",
    "a" * 100,
    "b" * 101,
    "pneumonoultramicroscopicsilicovolcanoconiosis" * 3,
    " ".join(["supercalifragilisticexpialidocious"] * 5),
    "é" * 99 + "\u0301",
    "!\u0301 ?\u0308 .\u0323 a\u0301\u0302\u0323\u0304",
    "Greek question mark\u037e ano teleia\u0387 \u1fef\u1fed\u1fee",
    "=\u0338 <\u0338 >\u0338 \u2260 \u226e",
    "ΟΔΟΣ. ΣΑΣ ΟΔΥΣΣΕΥΣ İstanbul IĞDIR ß ẞ ﬁ ǅ",
    "क़लम ज़रूर फ़िल्म ग़ज़ल",
    "\u0915\u093c\u0932\u092e \u091c\u093c\u0930\u0942\u0930",
    "\u0645\u064e\u0651\u0627 \u0645\u0651\u064e\u0627 \u0634\u064e\u062f\u0651\u064e\u0629",
    "Vie\u0302\u0323t Nam, Tie\u0302\u0301ng Vie\u0302\u0323t, \u1ec7 e\u0323\u0302 e\u0302\u0323",
    "\u1100\u1161\u11a8 \u1112\u1161\u11ab\u1100\u1173\u11af \ud55c\uae00",
    "private \ue000\uf8ff \U000f0000 \U0010fffd use",
    "unassigned \u0378 \u08b5 \U000e0080 \U0001fffe \uffff \U0003134b",
    "new punctuation \u2e52\u2e5d \u061d \U00011fff \U00016fe2 old \u166d \U000111c9",
    "new format \u0890 \u08e2 \U000110cd \U00013430\U00013438",
    "CJK holes \U0002b81f\U0002b820\U0002b91f\U0002b920 \U0002ceaf\U0002ceb0 \u9fff\u4dbf",
    "CJK compat \uf900\ufa0e\ufaff \U0002f800\U0002fa1d 豈更",
    "emoji 😀😃 👍🏽 👨\u200d👩\u200d👧 🇺🇳 ❤\ufe0f #\ufe0f\u20e3 "
    "🏴\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f",
    "variation selectors \u845b\U000e0100 \u8fbb\U000e0101 a\ufe00",
    "fullwidth ＡＢＣ１２３！？ halfwidth ｶﾀｶﾅ ideographic　space",
    "mixed scripts: abcабвαβγאבגابج漢字かなカナ한글",
    "numbers 3.14159 1,000,000 1.000,5 ١٢٣ ४५६ 五六七",
    "urls https://example.com/path?q=1&r=2#frag and mail a.b+c@example.org",
    "code: def f(x): return x**2 # comment; {'a': [1, 2]}",
    "repeated!!! ??? ... --- *** ___",
]


def nfd(line: str) -> str:
    return unicodedata.normalize("NFD", line)


def corpus() -> list[str]:
    """Sentences, their NFD forms when different, and the special lines."""
    out = []
    for line in sentences():
        out.append(line)
        if nfd(line) != line:
            out.append(nfd(line))
    out += SPECIAL_LINES
    out += [nfd(line) for line in SPECIAL_LINES if nfd(line) != line]
    return out


def web_lines(n: int, seed: int = 0) -> list[str]:
    """`n` reproducible "web-like" lines: sentences and fragments of several languages mixed,
    with numbers, URLs, emoji and markup sprinkled in, of varied length (5-60 words)."""
    rng = random.Random(seed)
    words = [w for line in sentences() for w in line.split()]
    extras = ["https://example.org/a/b?c=d", "#tag", "@user", "😀", "—", "(2024)", "42%",
              "<br>", "&amp;", "e-mail:", "U.S.A.", "«quoted»", "“smart”", "1/2", "...", "→"]  # fmt: skip
    out = []
    for _ in range(n):
        k = rng.randint(5, 60)
        start = rng.randrange(len(words))
        chunk = words[start : start + k]
        if rng.random() < 0.5:
            chunk = rng.sample(words, min(k, len(words)))
        chunk = [rng.choice(extras) if rng.random() < 0.06 else w for w in chunk]
        if rng.random() < 0.3:
            chunk = [w.capitalize() if rng.random() < 0.3 else w for w in chunk]
        out.append(" ".join(chunk))
    return out
