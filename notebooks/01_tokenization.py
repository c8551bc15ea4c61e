# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 01 · Tokenization: from multilingual text to ids, one rule at a time
#
# Before the model sees anything, text becomes a list of integer ids. For BERT-family
# models (DistilmBERT included) that happens in two stages:
#
# 1. the **basic tokenizer** cleans the text and cuts it into *words*: at whitespace,
#    around every punctuation character and around every CJK ideograph;
# 2. **WordPiece** cuts each word into vocabulary pieces, greedily, longest match first;
#    a word it cannot cut becomes `[UNK]`.
#
# Then `[CLS]` and `[SEP]` are added and every piece is looked up in `vocab.txt`.
# The package `tokenizer/` implements exactly this, in small documented rules
# (`_unicode.py` → `basic.py` → `wordpiece.py` → `tokenizer.py`). Each section below shows
# one rule on real multilingual text, calling those functions.
#
# This notebook needs **no model weights**, only the real 119,547-entry vocabulary of
# distilbert-base-multilingual-cased: nothing here is random.

# %%
import unicodedata

from notebook_setup import real_model_dir, shared_model_dir

from tokenizer import WordPieceTokenizer, _unicode
from tokenizer.wordpiece import wordpiece

vocab_dir = real_model_dir() or shared_model_dir()
tok = WordPieceTokenizer.from_pretrained(vocab_dir)  # vocab.txt + tokenizer_config.json
print(tok)
print("vocabulary size:", tok.vocab_size)

# %% [markdown]
# ## Rule 1 · Cleaning
#
# Invisible characters would otherwise end up inside tokens. Cleaning **removes** control
# and format characters (category Cc/Cf: NUL, zero-width space U+200B, soft hyphen…) and the
# replacement character U+FFFD, and treats every kind of **whitespace** (tab, newline,
# no-break space U+00A0, ideographic space…) as a plain space. Note what the table shows:
# a removed character does *not* split a word: `Hello\u200bworld` becomes the single
# word `Helloworld` (which WordPiece then cuts into `Hello` + `##world`).

# %%
text = "Hello\u200bworld\tand\u00a0more\x00!"
for ch in dict.fromkeys(text):  # each distinct character once
    name = unicodedata.name(ch, "<control>")
    print(f"U+{ord(ch):04X} {name:<22} category {unicodedata.category(ch)}  "
          f"removed={_unicode.is_removed(ch)!s:<5}  whitespace={_unicode.is_whitespace(ch)}")
print()
print(repr(text), "->", tok.tokenize(text))

# %% [markdown]
# ## Rule 2 · CJK ideographs are words of their own
#
# Chinese (and the kanji of Japanese) is written without spaces, so there are no word
# boundaries to find. BERT's answer: put a space around every **CJK ideograph**, making each
# one a word. Kana (ひらがな, カタカナ) and Hangul are *not* in those Unicode blocks: they
# stay in runs and go to WordPiece like any other word.

# %%
for text in ["我喜欢NumPy和東京。", "ひらがなとカタカナ", "한국어 문장"]:
    flags = "".join("C" if _unicode.is_chinese_char(ord(ch)) else "." for ch in text)
    print(f"{text}\n{flags}   (C = CJK ideograph)\n  -> {tok.tokenize(text)}\n")

# %% [markdown]
# ## Rule 3 · Punctuation is split off
#
# Every punctuation character becomes a one-character word. "Punctuation" means Unicode's
# P* categories **plus every ASCII symbol**: `$`, `+`, `^`, `` ` `` are symbols (S*) for
# Unicode, but BERT splits them as well. Hence `Don't` → `Don ' t`, `U.S.A.` → six
# words and `e-mail` → three.

# %%
for ch in "'$-.¿«":
    category = unicodedata.category(ch)
    print(f"{ch!r}: category {category}, BERT punctuation: {_unicode.is_punctuation(ch)}")
text = "Don't pay $5 for e-mail, U.S.A.! ¿Qué tal? «Très bien»"
print("\n", tok.tokenize(text))


# %% [markdown]
# ## Rule 4 · WordPiece: greedy longest match first
#
# Each word is cut left to right: take the **longest** vocabulary entry that starts the
# word; then the longest entry starting the rest, now spelled with the continuation
# prefix `##`; and so on. The trace below prints every lookup for one word, then checks
# that the package's `tokenizer.wordpiece.wordpiece` finds the same pieces.

# %%
def trace_wordpiece(word, vocab, max_len=100):
    """Greedy longest-match-first, printing every lookup (the package's version is faster)."""
    pieces, start = [], 0
    while start < len(word):
        for end in range(min(len(word), start + max_len), start, -1):
            candidate = ("##" if start else "") + word[start:end]
            found = candidate in vocab
            print(f"  {candidate:<22} {'in vocab' if found else '-'}")
            if found:
                pieces.append(candidate)
                start = end
                break
        else:
            return None  # nothing matched: the whole word is [UNK]
    return pieces


word = "Donaudampfschifffahrt"  # German: Danube steam navigation
pieces = trace_wordpiece(word, tok.vocab, max_len=12)
print(word, "->", pieces)

spans = wordpiece(word, tok.vocab, max(map(len, tok.vocab)))  # the package's function
assert pieces == [("##" if s else "") + word[s:e] for s, e in spans]
assert pieces == tok.tokenize(word)

# %% [markdown]
# ### Greedy is not always best
#
# Longest-first never backtracks. With a toy vocabulary holding `abc`, `a` and `##bcd`,
# the word `abcd` could be `a ##bcd`, but greedy takes `abc` first, then finds no `##d`,
# and gives up: the **whole word** becomes `[UNK]`. BERT never emits half a word.

# %%
toy = WordPieceTokenizer(vocab=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "abc", "a", "##bcd"])
print("abcd ->", toy.tokenize("abcd"), "   though 'a' + '##bcd' would have worked")

# %% [markdown]
# ## `[UNK]`: words the vocabulary cannot spell
#
# A word becomes `[UNK]` when some part of it matches no entry (most emoji, rare symbols),
# or when it is longer than `max_input_chars_per_word` = 100 characters.

# %%
for text in ["I love 🦜 and ☃", "x" * 101]:
    print(f"{text[:40]!r:<44} -> {tok.tokenize(text)}")

# %% [markdown]
# ## Ids, special tokens, padding
#
# Calling the tokenizer gives what the model eats, with transformers' key names:
# `input_ids` with `[CLS]` (101) first and `[SEP]` (102) last, and an `attention_mask`
# that is 1 for real tokens and 0 for the `[PAD]` (0) added to make a batch rectangular.
# `decode` maps ids back to text.

# %%
batch = tok(["Paris is the capital of France.", "Guten Morgen!"], padding=True)
for i in range(2):
    print(batch.tokens(i))
    print(" input_ids     ", batch["input_ids"][i])
    print(" attention_mask", batch["attention_mask"][i])
print(tok.decode(batch["input_ids"][1]))
print(tok.decode(batch["input_ids"][1], skip_special_tokens=True))

# %% [markdown]
# ## Offsets: where each token came from
#
# `return_offsets_mapping=True` gives each token's `[start, end)` character span in the
# **original** text (special tokens get `(0, 0)`). Pipelines use these to report answers and
# entities as slices of what the user typed, accents, case and removed characters included.

# %%
text = "Hà Nội\u200b is the capital of Việt Nam."
enc = tok(text, return_offsets_mapping=True)
for token, (start, end) in zip(enc.tokens(), enc["offset_mapping"], strict=True):
    print(f"{token:>10}  ({start:2d}, {end:2d})  {text[start:end]!r}")

# %% [markdown]
# ## Why NFC matters: a Vietnamese sentence
#
# Unicode can write the same letter in two ways: **precomposed** (NFC: `ộ` is one code
# point, U+1ED9) or **decomposed** (NFD: `o` + combining circumflex U+0302 + combining dot
# below U+0323). They look identical, but they are different strings. Vietnamese, with up to
# two diacritics per letter, is where this bites: text from macOS file names, some input
# methods or some web pages arrives decomposed.
#
# The vocabulary was built from NFC text. transformers' default (Rust) `BertTokenizer` does
# **not** normalise, so decomposed Vietnamese falls apart into `[UNK]`s and stray combining
# marks; the legacy Python `BertTokenizerLegacy` applies NFC first. Our tokenizer reproduces
# the first by default and the second with `unicode_normalization="NFC"`.

# %%
sentence = "Tôi là sinh viên đại học ở Hà Nội."  # "I am a university student in Hanoi."
nfc_text = unicodedata.normalize("NFC", sentence)
nfd_text = unicodedata.normalize("NFD", sentence)
print(f"NFC: {len(nfc_text)} code points   NFD: {len(nfd_text)} code points   "
      f"equal strings: {nfc_text == nfd_text}")
print("'ộ' in NFD:", [f"U+{ord(c):04X}" for c in unicodedata.normalize("NFD", "ộ")])

tok_nfc = WordPieceTokenizer.from_pretrained(vocab_dir, unicode_normalization="NFC")
print("\ndefault tokenizer, NFC text:", tok.tokenize(nfc_text))
print("default tokenizer, NFD text:", tok.tokenize(nfd_text))
print("NFC tokenizer,     NFD text:", tok_nfc.tokenize(nfd_text))
assert tok_nfc.tokenize(nfd_text) == tok.tokenize(nfc_text)

# %% [markdown]
# If your text may come decomposed, normalise it yourself
# (`unicodedata.normalize("NFC", text)`) or use `unicode_normalization="NFC"`; the model
# only ever saw the composed forms.
#
# ## Checked against transformers
#
# When transformers is installed, the last cell compares our tokens with its
# `BertTokenizer` (the Rust-backed default) on every example above.

# %%
try:
    from transformers import BertTokenizer
except ImportError:
    print("transformers is not installed: comparison skipped (pip install transformers)")
else:
    reference = BertTokenizer.from_pretrained(str(vocab_dir))
    examples = [
        "Hello\u200bworld\tand\u00a0more\x00!", "我喜欢NumPy和東京。", "ひらがなとカタカナ",
        "Don't pay $5 for e-mail, U.S.A.! ¿Qué tal? «Très bien»", "Donaudampfschifffahrt",
        "I love 🦜 and ☃", text, nfc_text, nfd_text,
    ]
    for example in examples:
        ours = tok(example, return_offsets_mapping=True)
        theirs = reference(example, return_offsets_mapping=True)
        assert ours["input_ids"] == theirs["input_ids"], example
        assert list(map(tuple, ours["offset_mapping"])) == list(map(tuple, theirs["offset_mapping"]))
    print(f"ids and offsets equal to transformers' BertTokenizer on {len(examples)} examples  ✓")
