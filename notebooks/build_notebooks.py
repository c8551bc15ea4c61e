"""Write the teaching notebooks (`notebooks/*.ipynb`) from the cell texts below.

    python notebooks/build_notebooks.py          # rewrites every notebook, outputs empty

The notebooks are kept in git without outputs; this script is their source of truth, so
edits to a notebook's text go here and are regenerated (a reviewer reads one diffable
Python file instead of JSON). Execute them with `python -m pytest tests/test_notebooks.py`,
or open them in Jupyter.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent


def md(text: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_markdown_cell(textwrap.dedent(text).strip("\n"))


def code(text: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_code_cell(textwrap.dedent(text).strip("\n"))


SETUP = code(
    """
    # Finds the real model ($NUMPY_DISTILBERT_REAL_MODEL or the Hugging Face cache), else writes a
    # random-weight checkpoint of the real size into a temporary directory (see notebook_setup.py).
    from notebook_setup import model_directory

    model_dir, real = model_directory()
    """
)


# ============================================================================ 01
TOKENIZATION = [
    md(
        """
        # 01 · Tokenization: from multilingual text to ids, one rule at a time

        Before the model sees anything, text becomes a list of integer ids. For BERT-family
        models (DistilmBERT included) that happens in two stages:

        1. the **basic tokenizer** cleans the text and cuts it into *words*: at whitespace,
           around every punctuation character and around every CJK ideograph;
        2. **WordPiece** cuts each word into vocabulary pieces, greedily, longest match first;
           a word it cannot cut becomes `[UNK]`.

        Then `[CLS]` and `[SEP]` are added and every piece is looked up in `vocab.txt`.
        The package `tokenizer/` implements exactly this, in small documented rules
        (`_unicode.py` → `basic.py` → `wordpiece.py` → `tokenizer.py`). Each section below shows
        one rule on real multilingual text, calling those functions.

        This notebook needs **no model weights**, only the real 119,547-entry vocabulary of
        distilbert-base-multilingual-cased: nothing here is random.
        """
    ),
    code(
        """
        import unicodedata

        from notebook_setup import real_model_dir, shared_model_dir

        from tokenizer import WordPieceTokenizer, _unicode
        from tokenizer.wordpiece import wordpiece

        vocab_dir = real_model_dir() or shared_model_dir()
        tok = WordPieceTokenizer.from_pretrained(vocab_dir)  # vocab.txt + tokenizer_config.json
        print(tok)
        print("vocabulary size:", tok.vocab_size)
        """
    ),
    md(
        """
        ## Rule 1 · Cleaning

        Invisible characters would otherwise end up inside tokens. Cleaning **removes** control
        and format characters (category Cc/Cf: NUL, zero-width space U+200B, soft hyphen…) and the
        replacement character U+FFFD, and treats every kind of **whitespace** (tab, newline,
        no-break space U+00A0, ideographic space…) as a plain space. Note what the table shows:
        a removed character does *not* split a word: `Hello\\u200bworld` becomes the single
        word `Helloworld` (which WordPiece then cuts into `Hello` + `##world`).
        """
    ),
    code(
        """
        text = "Hello\\u200bworld\\tand\\u00a0more\\x00!"
        for ch in dict.fromkeys(text):  # each distinct character once
            name = unicodedata.name(ch, "<control>")
            print(f"U+{ord(ch):04X} {name:<22} category {unicodedata.category(ch)}  "
                  f"removed={_unicode.is_removed(ch)!s:<5}  whitespace={_unicode.is_whitespace(ch)}")
        print()
        print(repr(text), "->", tok.tokenize(text))
        """
    ),
    md(
        """
        ## Rule 2 · CJK ideographs are words of their own

        Chinese (and the kanji of Japanese) is written without spaces, so there are no word
        boundaries to find. BERT's answer: put a space around every **CJK ideograph**, making each
        one a word. Kana (ひらがな, カタカナ) and Hangul are *not* in those Unicode blocks: they
        stay in runs and go to WordPiece like any other word.
        """
    ),
    code(
        """
        for text in ["我喜欢NumPy和東京。", "ひらがなとカタカナ", "한국어 문장"]:
            flags = "".join("C" if _unicode.is_chinese_char(ord(ch)) else "." for ch in text)
            print(f"{text}\\n{flags}   (C = CJK ideograph)\\n  -> {tok.tokenize(text)}\\n")
        """
    ),
    md(
        """
        ## Rule 3 · Punctuation is split off

        Every punctuation character becomes a one-character word. "Punctuation" means Unicode's
        P* categories **plus every ASCII symbol**: `$`, `+`, `^`, `` ` `` are symbols (S*) for
        Unicode, but BERT splits them as well. Hence `Don't` → `Don ' t`, `U.S.A.` → six
        words and `e-mail` → three.
        """
    ),
    code(
        """
        for ch in "'$-.¿«":
            category = unicodedata.category(ch)
            print(f"{ch!r}: category {category}, BERT punctuation: {_unicode.is_punctuation(ch)}")
        text = "Don't pay $5 for e-mail, U.S.A.! ¿Qué tal? «Très bien»"
        print("\\n", tok.tokenize(text))
        """
    ),
    md(
        r"""
        ## Rule 4 · WordPiece: greedy longest match first

        Each word is cut left to right: take the **longest** vocabulary entry that starts the
        word; then the longest entry starting the rest, now spelled with the continuation
        prefix `##`; and so on. The trace below prints every lookup for one word, then checks
        that the package's `tokenizer.wordpiece.wordpiece` finds the same pieces.
        """
    ),
    code(
        """
        def trace_wordpiece(word, vocab, max_len=100):
            \"\"\"Greedy longest-match-first, printing every lookup (the package's version is faster).\"\"\"
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
        """
    ),
    md(
        """
        ### Greedy is not always best

        Longest-first never backtracks. With a toy vocabulary holding `abc`, `a` and `##bcd`,
        the word `abcd` could be `a ##bcd`, but greedy takes `abc` first, then finds no `##d`,
        and gives up: the **whole word** becomes `[UNK]`. BERT never emits half a word.
        """
    ),
    code(
        """
        toy = WordPieceTokenizer(vocab=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "abc", "a", "##bcd"])
        print("abcd ->", toy.tokenize("abcd"), "   though 'a' + '##bcd' would have worked")
        """
    ),
    md(
        """
        ## `[UNK]`: words the vocabulary cannot spell

        A word becomes `[UNK]` when some part of it matches no entry (most emoji, rare symbols),
        or when it is longer than `max_input_chars_per_word` = 100 characters.
        """
    ),
    code(
        """
        for text in ["I love 🦜 and ☃", "x" * 101]:
            print(f"{text[:40]!r:<44} -> {tok.tokenize(text)}")
        """
    ),
    md(
        """
        ## Ids, special tokens, padding

        Calling the tokenizer gives what the model eats, with transformers' key names:
        `input_ids` with `[CLS]` (101) first and `[SEP]` (102) last, and an `attention_mask`
        that is 1 for real tokens and 0 for the `[PAD]` (0) added to make a batch rectangular.
        `decode` maps ids back to text.
        """
    ),
    code(
        """
        batch = tok(["Paris is the capital of France.", "Guten Morgen!"], padding=True)
        for i in range(2):
            print(batch.tokens(i))
            print(" input_ids     ", batch["input_ids"][i])
            print(" attention_mask", batch["attention_mask"][i])
        print(tok.decode(batch["input_ids"][1]))
        print(tok.decode(batch["input_ids"][1], skip_special_tokens=True))
        """
    ),
    md(
        """
        ## Offsets: where each token came from

        `return_offsets_mapping=True` gives each token's `[start, end)` character span in the
        **original** text (special tokens get `(0, 0)`). Pipelines use these to report answers and
        entities as slices of what the user typed, accents, case and removed characters included.
        """
    ),
    code(
        """
        text = "Hà Nội\\u200b is the capital of Việt Nam."
        enc = tok(text, return_offsets_mapping=True)
        for token, (start, end) in zip(enc.tokens(), enc["offset_mapping"], strict=True):
            print(f"{token:>10}  ({start:2d}, {end:2d})  {text[start:end]!r}")
        """
    ),
    md(
        """
        ## Why NFC matters: a Vietnamese sentence

        Unicode can write the same letter in two ways: **precomposed** (NFC: `ộ` is one code
        point, U+1ED9) or **decomposed** (NFD: `o` + combining circumflex U+0302 + combining dot
        below U+0323). They look identical, but they are different strings. Vietnamese, with up to
        two diacritics per letter, is where this bites: text from macOS file names, some input
        methods or some web pages arrives decomposed.

        The vocabulary was built from NFC text. transformers' default (Rust) `BertTokenizer` does
        **not** normalise, so decomposed Vietnamese falls apart into `[UNK]`s and stray combining
        marks; the legacy Python `BertTokenizerLegacy` applies NFC first. Our tokenizer reproduces
        the first by default and the second with `unicode_normalization="NFC"`.
        """
    ),
    code(
        """
        sentence = "Tôi là sinh viên đại học ở Hà Nội."  # "I am a university student in Hanoi."
        nfc_text = unicodedata.normalize("NFC", sentence)
        nfd_text = unicodedata.normalize("NFD", sentence)
        print(f"NFC: {len(nfc_text)} code points   NFD: {len(nfd_text)} code points   "
              f"equal strings: {nfc_text == nfd_text}")
        print("'ộ' in NFD:", [f"U+{ord(c):04X}" for c in unicodedata.normalize("NFD", "ộ")])

        tok_nfc = WordPieceTokenizer.from_pretrained(vocab_dir, unicode_normalization="NFC")
        print("\\ndefault tokenizer, NFC text:", tok.tokenize(nfc_text))
        print("default tokenizer, NFD text:", tok.tokenize(nfd_text))
        print("NFC tokenizer,     NFD text:", tok_nfc.tokenize(nfd_text))
        assert tok_nfc.tokenize(nfd_text) == tok.tokenize(nfc_text)
        """
    ),
    md(
        """
        If your text may come decomposed, normalise it yourself
        (`unicodedata.normalize("NFC", text)`) or use `unicode_normalization="NFC"`; the model
        only ever saw the composed forms.

        ## Checked against transformers

        When transformers is installed, the last cell compares our tokens with its
        `BertTokenizer` (the Rust-backed default) on every example above.
        """
    ),
    code(
        """
        try:
            from transformers import BertTokenizer
        except ImportError:
            print("transformers is not installed: comparison skipped (pip install transformers)")
        else:
            reference = BertTokenizer.from_pretrained(str(vocab_dir))
            examples = [
                "Hello\\u200bworld\\tand\\u00a0more\\x00!", "我喜欢NumPy和東京。", "ひらがなとカタカナ",
                "Don't pay $5 for e-mail, U.S.A.! ¿Qué tal? «Très bien»", "Donaudampfschifffahrt",
                "I love 🦜 and ☃", text, nfc_text, nfd_text,
            ]
            for example in examples:
                ours = tok(example, return_offsets_mapping=True)
                theirs = reference(example, return_offsets_mapping=True)
                assert ours["input_ids"] == theirs["input_ids"], example
                assert list(map(tuple, ours["offset_mapping"])) == list(map(tuple, theirs["offset_mapping"]))
            print(f"ids and offsets equal to transformers' BertTokenizer on {len(examples)} examples  ✓")
        """
    ),
]


# ============================================================================ 02
FORWARD_PASS = [
    md(
        """
        # 02 · The forward pass, one step at a time

        This notebook follows two short sentences through DistilmBERT: token ids → embeddings →
        one transformer block, written out operation by operation → the other five blocks → the
        masked-language-model (MLM) head. After every step it prints the array shapes, and
        wherever we recompute something by hand we **assert** that it equals what the package's
        own functions (`numpy_distilbert.layers`, `numpy_distilbert.model`) return. Nothing here
        is a re-implementation for show: it is the same arithmetic the model runs.

        Shape letters, as in `layers.py`: **B** batch, **L** sequence length, **D** = 768 model
        width, **H** = 12 heads, **Dh** = D/H = 64 per head, **F** = 3072 feed-forward width,
        **V** = 119,547 vocabulary entries.
        """
    ),
    md(
        """
        ## 0. The model

        If the trained weights are not on this machine, the next cell builds a checkpoint of
        random numbers with exactly the real shapes. Everything below then still runs and every
        check still holds, but **predictions on random weights are meaningless**: read them for
        their shapes, not their values.
        """
    ),
    SETUP,
    code(
        """
        import math

        import matplotlib.pyplot as plt
        import numpy as np

        from numpy_distilbert import DistilBertForMaskedLM, layers
        from numpy_distilbert.model import transformer_block
        from tokenizer import WordPieceTokenizer

        model = DistilBertForMaskedLM.from_pretrained(model_dir)  # float32, memory-mapped
        tok = WordPieceTokenizer.from_pretrained(model_dir)
        cfg = model.config
        print(f"layers={cfg.n_layers}  D={cfg.dim}  H={cfg.n_heads}  Dh={cfg.head_dim}  "
              f"F={cfg.hidden_dim}  V={cfg.vocab_size}  activation={cfg.activation}")
        """
    ),
    md(
        """
        ## 1. Token ids and the attention mask

        Notebook 01 explains how text becomes ids. Here we take two sentences of different
        lengths, so that the shorter one is **padded** with `[PAD]` (id 0) and the
        `attention_mask` marks which positions are real (1) and which are padding (0).
        """
    ),
    code(
        """
        texts = ["Paris is the capital of [MASK].", "Guten Morgen!"]
        enc = tok(texts, padding=True)
        ids = np.array(enc["input_ids"])  # [B, L]
        mask = np.array(enc["attention_mask"])  # [B, L]
        B, L = ids.shape
        for i in range(B):
            print(enc.tokens(i))
        print("ids", ids.shape, "\\n", ids)
        print("mask", mask.shape, "\\n", mask)
        """
    ),
    md(
        r"""
        ## 2. Embeddings

        Each token id picks a row of the word-embedding table $E \in \mathbb{R}^{V\times D}$, and
        each position $t$ a row of the learned position table $P \in \mathbb{R}^{512\times D}$.
        DistilBERT has no token-type (segment) embeddings. The sum is layer-normalised:

        $$x_t = \mathrm{LN}\big(E_{\mathrm{id}_t} + P_t\big)$$
        """
    ),
    code(
        """
        enc_model = model.distilbert
        word = enc_model.word_embeddings[ids]  # [B, L, D]: a row lookup, no matrix product
        pos = enc_model.position_embeddings[:L]  # [L, D]: broadcast over the batch
        summed = word + pos  # [B, L, D]: the LayerNorm input
        x0 = layers.layer_norm(summed, *enc_model.embedding_norm)  # [B, L, D]
        print("word", word.shape, " pos", pos.shape, " summed", summed.shape, " x0", x0.shape)

        # The package does exactly this in one call:
        tables = enc_model.word_embeddings, enc_model.position_embeddings
        np.testing.assert_array_equal(x0, layers.embed(ids, *tables, *enc_model.embedding_norm))
        print("x0 == layers.embed(...)  ✓")
        """
    ),
    md(
        r"""
        ### What LayerNorm does to its input

        For one token's vector $s \in \mathbb{R}^D$:

        $$\mathrm{LN}(s) = \gamma \odot \frac{s - \mu}{\sqrt{\sigma^2 + \varepsilon}} + \beta,
        \qquad \mu = \tfrac1D\textstyle\sum_i s_i,\quad \sigma^2 = \tfrac1D\sum_i (s_i-\mu)^2,
        \quad \varepsilon = 10^{-12}$$

        Whatever the scale of the input, each token comes out with mean ≈ 0 and standard
        deviation ≈ 1 (before the learned gain $\gamma$ and bias $\beta$). Below: the values of the
        embedding LayerNorm's input and output, and each token's standard deviation before and
        after. (With random weights the embedding rows have std ≈ 0.02, so LayerNorm scales them
        up about 35-fold; a trained model's embeddings have their own, wider, spread.)
        """
    ),
    code(
        """
        real_tokens = mask.astype(bool)  # [B, L]: ignore padding positions in the statistics
        fig, axes = plt.subplots(1, 3, figsize=(13, 3.2))
        axes[0].hist(summed[real_tokens].ravel(), bins=100, color="tab:blue")
        axes[0].set_title("LayerNorm input  E[id] + P[t]")
        axes[1].hist(x0[real_tokens].ravel(), bins=100, color="tab:orange")
        axes[1].set_title("LayerNorm output  x0")
        axes[2].semilogy(summed.std(-1)[real_tokens], "o", label="input std per token")
        axes[2].semilogy(x0.std(-1)[real_tokens], "s", label="output std per token")
        axes[2].set_xlabel("token (real positions, both sentences)")
        axes[2].legend()
        fig.tight_layout()
        plt.show()
        print("per-token mean of x0 (first sentence):", np.round(x0[0].mean(-1), 3))
        """
    ),
    md(
        r"""
        ## 3. One transformer block, by hand

        DistilBERT's block is **post-LayerNorm**: the sub-layer's output is added to its input,
        then the sum is normalised.

        $$h = \mathrm{LN}_{sa}\big(x + \mathrm{MHA}(x)\big), \qquad
        y = \mathrm{LN}_{out}\big(h + W_2\,\mathrm{GELU}(W_1 h + b_1) + b_2\big)$$

        ### 3a. Queries, keys, values

        Three linear maps $D \to D$. The package stacks $W_q, W_k, W_v$ into one $[3D, D]$ matrix so
        that one matrix product makes all three; we split it back. Weights are stored as
        `nn.Linear` does, `[out, in]`, so a linear map is `x @ W.T + b`.
        """
    ),
    code(
        """
        block = enc_model.blocks[0]
        H, Dh = cfg.n_heads, cfg.head_dim
        w_q, w_k, w_v = np.split(block.w_qkv, 3)  # each [D, D]
        b_q, b_k, b_v = np.split(block.b_qkv, 3)  # each [D]
        q = layers.linear(x0, w_q, b_q)  # [B, L, D]
        k = layers.linear(x0, w_k, b_k)
        v = layers.linear(x0, w_v, b_v)
        print("w_qkv", block.w_qkv.shape, "→ w_q", w_q.shape, "   q, k, v", q.shape)
        """
    ),
    md(
        """
        ### 3b. Split into heads

        The D = 768 features are cut into H = 12 groups of Dh = 64; each head attends on its own
        group. Reshape `[B, L, D] → [B, L, H, Dh]`, then move the head axis forward so that the
        last two axes are (position, feature): `[B, H, L, Dh]`.
        """
    ),
    code(
        """
        def split_heads(t):  # [B, L, D] -> [B, H, L, Dh]
            return t.reshape(B, L, H, Dh).transpose(0, 2, 1, 3)


        qh, kh, vh = split_heads(q), split_heads(k), split_heads(v)
        print("per-head q, k, v:", qh.shape)
        """
    ),
    md(
        r"""
        ### 3c. Scaled scores, the mask, softmax

        Every query is compared with every key by a dot product. Dividing by $\sqrt{D_h}$ keeps
        the scores' spread independent of the head width (a sum of 64 products of unit-variance
        numbers has variance 64), so softmax does not saturate:

        $$\mathrm{scores} = \frac{Q K^\top}{\sqrt{D_h}} + \mathrm{bias}, \qquad
        A = \mathrm{softmax}_{\text{keys}}(\mathrm{scores})$$

        The **mask** enters as an additive bias: 0 for real keys, the most negative float32 for
        padding keys, so that after softmax padding gets weight exactly 0. (A finite number, not
        −∞: a row that is *all* padding then gives a uniform row instead of 0/0 = NaN.)
        """
    ),
    code(
        """
        scores = qh @ kh.swapaxes(-1, -2) / np.float32(math.sqrt(Dh))  # [B, H, L, L]
        bias = layers.attention_bias(mask, np.float32)  # [B, 1, 1, L]: broadcasts over heads and queries
        weights = layers.softmax(scores + bias, axis=-1)  # [B, H, L, L]
        print("scores", scores.shape, " bias", bias.shape, " weights", weights.shape)
        print("each row sums to 1:", np.allclose(weights.sum(-1), 1.0))
        print("largest weight on a padding key of sentence 1:", weights[1][..., mask[1] == 0].max())
        """
    ),
    md(
        """
        ### 3d. Mix the values, merge the heads, project back

        Each query position takes the attention-weighted average of the value vectors; the 12
        heads' outputs are concatenated back to D features and passed through one more linear
        map, `out_lin`.
        """
    ),
    code(
        """
        context = weights @ vh  # [B, H, L, Dh]
        merged = layers.merge_heads(context)  # [B, L, D]
        attended = layers.linear(merged, block.w_out, block.b_out)  # [B, L, D]
        print("context", context.shape, " merged", merged.shape, " attended", attended.shape)

        package_attended, package_weights = layers.multi_head_attention(
            x0, block.w_qkv, block.b_qkv, block.w_out, block.b_out, H, bias
        )
        # One [3D, D] product instead of three [D, D] ones: BLAS may sum in another order,
        # so compare to float32 rounding, not bit for bit.
        print("max |ours − layers.multi_head_attention| =", np.abs(attended - package_attended).max())
        np.testing.assert_allclose(attended, package_attended, rtol=0, atol=1e-5)
        np.testing.assert_allclose(weights, package_weights, rtol=0, atol=1e-6)
        """
    ),
    md(
        """
        ### Attention maps, one per head

        Row = the query token, column = the key token it attends to; each row sums to 1. On a
        trained model the heads differ visibly (some look at the previous token, some at `[SEP]`,
        some at the same word). **On random weights** the patterns are noise: weights scattered
        around 1/L with random bumps, no head looking at anything in particular. That is what an
        untrained attention layer looks like.
        """
    ),
    code(
        """
        n = int(mask[0].sum())  # real tokens of sentence 0
        labels = enc.tokens(0)[:n]
        fig, axes = plt.subplots(3, 4, figsize=(13, 9.5))
        for head, ax in enumerate(axes.flat):
            image = ax.imshow(weights[0, head, :n, :n], cmap="viridis", vmin=0)
            ax.set_title(f"layer 0, head {head}", fontsize=9)
            ax.set_xticks(range(n), labels, rotation=90, fontsize=7)
            ax.set_yticks(range(n), labels, fontsize=7)
            fig.colorbar(image, ax=ax, fraction=0.046)
        fig.tight_layout()
        plt.show()
        """
    ),
    md(
        """
        ### 3e. Residual connection, then LayerNorm

        The attention output is *added* to the block's input (the residual stream) and the sum is
        normalised. This sum is the input of `sa_layer_norm`; its spread is what LayerNorm resets.
        """
    ),
    code(
        """
        residual = x0 + attended  # [B, L, D]: the LayerNorm input
        h = layers.layer_norm(residual, *block.sa_norm)  # [B, L, D]
        print("residual", residual.shape, f"std {residual[real_tokens].std():.3f}",
              " → h", h.shape, f"std {h[real_tokens].std():.3f}")
        """
    ),
    md(
        r"""
        ### 3f. The feed-forward network and GELU

        Each position on its own: widen to F = 3072, apply GELU, narrow back to D.
        DistilBERT's `"gelu"` is the **exact** GELU,

        $$\mathrm{GELU}(x) = x\,\Phi(x) = \tfrac{x}{2}\Big(1 + \mathrm{erf}\big(x/\sqrt2\big)\Big),$$

        not the popular tanh approximation
        $\tfrac{x}{2}\big(1+\tanh(\sqrt{2/\pi}\,(x + 0.044715\,x^3))\big)$. The two differ by up to
        ~5·10⁻⁴ (measured below): fifty times our hidden-state tolerance of 10⁻⁵, so matching
        transformers requires the erf form. NumPy has no `erf`, so `layers.erf` supplies one.
        """
    ),
    code(
        """
        pre = layers.linear(h, block.w_ffn1, block.b_ffn1)  # [B, L, F]
        activated = layers.gelu(pre)  # [B, L, F]
        fed = layers.linear(activated, block.w_ffn2, block.b_ffn2)  # [B, L, D]
        y = layers.layer_norm(h + fed, *block.out_norm)  # [B, L, D]: the block's output
        print("lin1", pre.shape, " gelu", activated.shape, " lin2", fed.shape, " y", y.shape)
        """
    ),
    code(
        """
        xs = np.linspace(-4, 4, 801)
        exact = layers.gelu(xs)
        tanh_form = 0.5 * xs * (1 + np.tanh(math.sqrt(2 / math.pi) * (xs + 0.044715 * xs**3)))
        fig, axes = plt.subplots(1, 3, figsize=(14, 3.4))
        axes[0].plot(xs, layers.relu(xs), label="ReLU  max(x, 0)", color="gray")
        axes[0].plot(xs, exact, label="GELU (erf, exact)", lw=2)
        axes[0].plot(xs, tanh_form, "--", label="GELU (tanh approx.)")
        axes[0].legend()
        axes[0].set_title("activations")
        axes[1].plot(xs, exact - tanh_form)
        axes[1].set_title("exact GELU − tanh GELU")
        axes[2].hist(pre[real_tokens].ravel(), bins=100)
        axes[2].set_title("FFN pre-activations, layer 0 (where GELU acts)")
        fig.tight_layout()
        plt.show()
        print(f"max |exact − tanh| on [-4, 4]: {np.abs(exact - tanh_form).max():.2e}")
        """
    ),
    md(
        """
        ### 3g. The whole block, checked

        Our step-by-step `y` must equal the package's `model.transformer_block`, the function
        the model runs six times.
        """
    ),
    code(
        """
        y_package, _ = transformer_block(x0, block, H, bias, layers.gelu)
        print("max |step-by-step − transformer_block| =", np.abs(y - y_package).max())
        np.testing.assert_allclose(y, y_package, rtol=0, atol=1e-5)
        """
    ),
    md(
        """
        ## 4. The other five blocks

        The same function with the next block's weights, five more times. The package's encoder,
        `model.distilbert(ids, mask)`, does precisely this loop.
        """
    ),
    code(
        """
        x = y_package
        for i, blk in enumerate(enc_model.blocks[1:], start=1):
            x, _ = transformer_block(x, blk, H, bias, enc_model.activation)
            print(f"after block {i}: {x.shape}")
        hidden = enc_model(ids, mask).last_hidden_state  # [B, L, D]
        np.testing.assert_array_equal(x, hidden)
        print("equal to model.distilbert(ids, mask).last_hidden_state  ✓")
        """
    ),
    md(
        r"""
        ## 5. The masked-language-model head

        At the `[MASK]` position, the final vector is transformed, normalised and compared with
        **every** word embedding: the output matrix is the input embedding table $E$ itself
        (*tied* weights), so a token scores high when its embedding points the same way.

        $$\mathrm{logits} = \mathrm{LN}\big(\mathrm{GELU}(W_t h + b_t)\big)\,E^\top + b
        \;\in\; \mathbb{R}^{V}$$

        The product with $E^\top$ (768 × 119,547) costs more than the whole encoder for a short
        sentence, so we compute it only where the mask is.
        """
    ),
    code(
        """
        rows, cols = np.nonzero(ids == tok.mask_token_id)  # where [MASK] is
        h_mask = hidden[rows, cols]  # [N, D], N = 1 here
        t = layers.gelu(layers.linear(h_mask, *model.transform))  # [N, D]
        t = layers.layer_norm(t, *model.transform_norm)  # [N, D]
        logits = t @ model.projector.T + model.projector_bias  # [N, V]
        print("h at mask", h_mask.shape, " logits", logits.shape,
              " projector is the embedding table:", model.projector is enc_model.word_embeddings)

        package_logits = model(ids, mask, positions=(rows, cols))  # [N, V]
        np.testing.assert_allclose(logits, package_logits, rtol=0, atol=1e-5)

        probs = layers.softmax(logits[0].astype(np.float64))
        top = np.argsort(-probs)[:5]
        print("\\nTop 5 for", repr(texts[0]), "(meaningless on random weights)" if not real else "")
        for i in top:
            print(f"  {tok.convert_ids_to_tokens(int(i)):>12}  p = {probs[i]:.4f}")
        """
    ),
    md(
        """
        ## What to take away

        * Every step is a handful of array operations with a fixed shape contract:
          `[B, L] → [B, L, D] → [B, H, L, L] → [B, L, D] → [N, V]`.
        * The mask is an additive bias, broadcast to `[B, H, L, L]`; padded keys get weight 0.
        * Post-LayerNorm: normalise *after* the residual sum, twice per block.
        * GELU is the erf form; the tanh form would already break equality with transformers.
        * The output layer *is* the embedding table.

        Notebook 03 checks the same forward pass against float64 and against transformers.
        """
    ),
]


# ============================================================================ 03
VERIFICATION = [
    md(
        """
        # 03 · Verification: float32, float64 and transformers

        A reference implementation is only as good as the evidence that it is right. This
        notebook measures, layer by layer, how far apart three computations of the same model are:

        1. **ours in float32 vs ours in float64**: the rounding error of float32 itself;
        2. **ours vs transformers, both float32**: do two independent implementations agree
           within that rounding?
        3. **ours vs transformers, both float64**: with rounding almost removed, any remaining
           difference would be a real difference in the arithmetic.

        and explains what the project's tolerances (hidden states ≤ 10⁻⁵, logits ≤ 10⁻⁴,
        float64 ≤ 10⁻¹⁰) mean next to float32's machine epsilon.
        """
    ),
    md(
        """
        The same weights must go into every computation. Without the trained weights the next
        cell writes a random-weight checkpoint (**predictions meaningless**, comparisons fully
        valid: random weights exercise every multiplication just the same).
        """
    ),
    SETUP,
    code(
        """
        import matplotlib.pyplot as plt
        import numpy as np

        from numpy_distilbert import DistilBertForMaskedLM
        from tokenizer import WordPieceTokenizer

        tok = WordPieceTokenizer.from_pretrained(model_dir)
        texts = ["The cat sat on the mat.", "Le chat dort sur le tapis.", "猫はマットの上で寝た。"]
        enc = tok(texts, padding=True)
        ids = np.array(enc["input_ids"])  # [B, L]
        mask = np.array(enc["attention_mask"])  # [B, L]
        keep = mask.astype(bool)  # compare real tokens only: padding rows are never used
        print(ids.shape)
        for i in range(len(texts)):
            print(enc.tokens(i))
        """
    ),
    md(
        """
        ## 1. Our model in float32 and in float64

        `from_pretrained(dir, dtype=np.float64)` widens every weight to float64 and runs all the
        arithmetic in float64. The float32 weights are exactly representable in float64, so the
        two runs use *identical* weights and differ only in rounding. float64's result is
        ~10⁹ times more precise, so it serves as the "true" value for float32.
        """
    ),
    code(
        """
        ours32 = DistilBertForMaskedLM.from_pretrained(model_dir, dtype=np.float32)
        ours64 = DistilBertForMaskedLM.from_pretrained(model_dir, dtype=np.float64)


        def run_ours(model):
            \"\"\"Hidden states (embeddings + one per block) and the MLM logits, at real tokens only.\"\"\"
            out = model.distilbert(ids, mask, output_hidden_states=True)
            hidden = [h[keep] for h in out.hidden_states]  # 7 × [N, D]
            return hidden, model.mlm_logits(out.last_hidden_state[keep])  # [N, V]


        hidden32, logits32 = run_ours(ours32)
        hidden64, logits64 = run_ours(ours64)
        print(len(hidden32), "hidden states of", hidden32[0].shape, "; logits", logits32.shape)
        """
    ),
    md(
        r"""
        For each stage we report

        * the **max absolute difference** $\max_i |a_i - b_i|$, and
        * a **relative** one, $\max_i |a_i - b_i| \,/\, \max_i |b_i|$: the error as a fraction
          of the stage's own scale (hidden states are O(1) after LayerNorm; logits are larger).
        """
    ),
    code(
        """
        STAGES = ["embeddings"] + [f"block {i}" for i in range(1, 7)] + ["logits"]


        def compare(a_hidden, a_logits, b_hidden, b_logits):
            \"\"\"Per stage (max abs difference, relative difference), computed in float64.\"\"\"
            rows = []
            for a, b in zip([*a_hidden, a_logits], [*b_hidden, b_logits], strict=True):
                a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
                diff = np.abs(a - b).max()
                rows.append((diff, diff / np.abs(b).max()))
            return np.array(rows)  # [stages, 2]


        def show(title, table):
            print(title)
            for stage, (abs_diff, rel_diff) in zip(STAGES, table, strict=True):
                print(f"  {stage:>10}   max abs {abs_diff:9.2e}   rel {rel_diff:9.2e}")


        fp32_vs_fp64 = compare(hidden32, logits32, hidden64, logits64)
        show("ours float32 vs ours float64", fp32_vs_fp64)
        """
    ),
    md(
        r"""
        ## 2. What float32 can resolve

        A float32 has a 24-bit significand: the gap between 1 and the next float32 is
        $\varepsilon_{32} = 2^{-23} \approx 1.19\cdot10^{-7}$, and in general one **ulp** (unit in the
        last place) at magnitude $|x|$ is about $|x|\,\varepsilon_{32}$. Every addition and
        multiplication rounds to the nearest float32, so errors of a few ulps per operation are
        unavoidable, and they accumulate over long sums (a 3072-term dot product in the FFN) and
        over layers.

        Nor is float32 addition associative: summing the same numbers in another order gives a
        different, equally valid, answer. BLAS libraries (and torch vs NumPy) choose different
        orders, so **two correct float32 implementations disagree in the last bits**. A tolerance
        says how many such bits we allow to differ.
        """
    ),
    code(
        """
        rng = np.random.default_rng(0)
        terms = rng.standard_normal(3072).astype(np.float32)
        exact = terms.astype(np.float64).sum()
        forward, backward = terms.sum(), terms[::-1].sum()
        print(f"float32 eps = {np.finfo(np.float32).eps:.3e}   float64 eps = {np.finfo(np.float64).eps:.3e}")
        print(f"the same 3072 float32 numbers summed forward: {float(forward):.9g}, "
              f"backward: {float(backward):.9g}; in float64: {exact:.9g}")

        hidden_scale = max(np.abs(h).max() for h in hidden64)
        logit_scale = np.abs(logits64).max()
        for name, scale, tol in [("hidden states", hidden_scale, 1e-5), ("logits", logit_scale, 1e-4)]:
            ulp = np.spacing(np.float32(scale))
            print(f"{name:>13}: largest |value| {scale:7.3f}, one float32 ulp there = {ulp:.2e}; "
                  f"tolerance {tol:.0e} = {tol / ulp:.0f} ulps")
        """
    ),
    md(
        r"""
        So the project's tolerances read:

        * **hidden states ≤ 10⁻⁵** (float32 vs float32): tens of ulps at the largest hidden values,
          ~80 ulps at magnitude 1. Generous enough for a different summation order through six
          blocks, tight enough that any wrong formula (tanh-GELU instead of erf-GELU: ~10⁻⁴;
          LayerNorm ε = 10⁻⁵ instead of 10⁻¹²; a missing mask) fails by orders of magnitude.
        * **logits ≤ 10⁻⁴**: logits are a 768-term dot product with the embedding table on top of
          the last hidden state, and larger in magnitude (tens, for the trained model), so the same
          relative error is a larger absolute one.
        * **float64 ≤ 10⁻¹⁰**: float64's ε is 2.2·10⁻¹⁶; after the same accumulation its
          differences are ~10⁻¹⁴, so 10⁻¹⁰ is loose for rounding and still ~10⁶× tighter than
          float32 could ever be. Agreement there shows the *formulas* are identical, not just close.
        """
    ),
    md(
        """
        ## 3. Against transformers

        We load the **same directory** with transformers' `DistilBertForMaskedLM.from_pretrained`
        (the random checkpoint is written in transformers' own file layout, so this is a plain
        load) and run it with `output_hidden_states=True`, in float32 and after `.double()` in
        float64. This part needs torch and transformers (the `test` extra); without them the
        notebook says so and skips it.
        """
    ),
    code(
        """
        try:
            import torch
            import transformers
        except ImportError as exc:
            torch = transformers = None
            print(f"torch/transformers are not installed ({exc}): the comparison with transformers "
                  f"is skipped. Install them with: pip install torch==2.13.0 transformers")
        else:
            print(f"torch {torch.__version__}, transformers {transformers.__version__}")
        """
    ),
    code(
        """
        def run_transformers(reference):
            with torch.no_grad():
                out = reference(torch.tensor(ids), attention_mask=torch.tensor(mask),
                                output_hidden_states=True)
            hidden = [h.numpy()[keep] for h in out.hidden_states]
            return hidden, out.logits.numpy()[keep]


        tables = {"ours fp32 vs ours fp64": fp32_vs_fp64}
        if transformers is not None:
            torch.set_num_threads(max(1, torch.get_num_threads()))
            reference = transformers.DistilBertForMaskedLM.from_pretrained(model_dir).eval()
            theirs32 = run_transformers(reference)
            reference = reference.double()
            theirs64 = run_transformers(reference)
            del reference
            tables["ours fp32 vs transformers fp32"] = compare(hidden32, logits32, *theirs32)
            tables["transformers fp32 vs ours fp64"] = compare(*theirs32, hidden64, logits64)
            tables["ours fp64 vs transformers fp64"] = compare(hidden64, logits64, *theirs64)
            for title, table in list(tables.items())[1:]:
                show(title, table)
        """
    ),
    md(
        """
        ## 4. Error growth, layer by layer

        Read the plot from left to right: the rounding error of float32 grows through the
        blocks, each block adding its own rounding to what it inherits; the logits add the head's
        (their absolute error scales with their size, which is tens for the trained model).
        Ours-vs-transformers in float32 sits at the same height as float32-vs-float64: the two
        implementations differ by no more than float32 rounding, and transformers' own float32
        error (against our float64) is the same size as ours. The float64 comparison lies about
        nine orders of magnitude lower.
        """
    ),
    code(
        """
        fig, axes = plt.subplots(1, 2, figsize=(13, 4))
        for title, table in tables.items():
            for ax, column in zip(axes, (0, 1), strict=True):
                ax.semilogy(STAGES, np.maximum(table[:, column], 1e-18), "o-", label=title)
        for ax, what in zip(axes, ("max absolute difference", "relative difference"), strict=True):
            ax.set_title(what)
            ax.tick_params(axis="x", rotation=45)
            ax.grid(True, which="major", alpha=0.3)
        axes[0].axhline(1e-5, color="gray", ls=":", label="hidden tolerance 1e-5")
        axes[0].axhline(1e-4, color="gray", ls="--", label="logit tolerance 1e-4")
        axes[0].axhline(1e-10, color="black", ls=":", label="float64 tolerance 1e-10")
        axes[0].legend(fontsize=7)
        fig.tight_layout()
        plt.show()
        """
    ),
    md(
        """
        ## 5. The verdict, as assertions

        The notebook fails if any measured difference exceeds the project's tolerances, so that
        running it is itself a verification (CI runs every notebook).
        """
    ),
    code(
        """
        HIDDEN_TOL, LOGIT_TOL, FP64_TOL = 1e-5, 1e-4, 1e-10
        checks = [("ours fp32 vs ours fp64", HIDDEN_TOL, LOGIT_TOL)]
        if transformers is not None:
            checks += [("ours fp32 vs transformers fp32", HIDDEN_TOL, LOGIT_TOL),
                       ("ours fp64 vs transformers fp64", FP64_TOL, FP64_TOL)]
        for title, hidden_tol, logit_tol in checks:
            table = tables[title]
            assert table[:-1, 0].max() <= hidden_tol, (title, table[:-1, 0].max())
            assert table[-1, 0] <= logit_tol, (title, table[-1, 0])
            print(f"{title:>32}: hidden {table[:-1, 0].max():.2e} ≤ {hidden_tol:.0e}, "
                  f"logits {table[-1, 0]:.2e} ≤ {logit_tol:.0e}  ✓")
        if transformers is None:
            print("(transformers not installed: only our float32 vs float64 was checked)")
        """
    ),
]


# ============================================================================ 04
USING_IT = [
    md(
        """
        # 04 · Using it: pipelines

        The pipelines give transformers' interface and output formats on the NumPy model:

            from numpy_distilbert import pipeline
            unmasker = pipeline("fill-mask", model="path/to/model")   # or a model id in the HF cache
            unmasker("Paris is the [MASK] of France.")

        This notebook runs four of them: **fill-mask**, **feature-extraction** (sentence
        embeddings, compared across languages), **token-classification** and
        **question-answering**.

        **About the predictions.** Without the trained weights the model below is random and every
        prediction is **meaningless**: the outputs have the right form and nothing more. With
        the real distilbert-base-multilingual-cased (set `NUMPY_DISTILBERT_REAL_MODEL`, or have it
        in the Hugging Face cache) fill-mask and the embeddings become real. Token classification
        and question answering need a *fine-tuned* checkpoint, which the base model is not: set
        `NUMPY_DISTILBERT_NER_MODEL` / `NUMPY_DISTILBERT_QA_MODEL` to one (a DistilBERT directory
        with config.json and model.safetensors); otherwise they run on a random head.
        """
    ),
    SETUP,
    code(
        """
        import matplotlib.pyplot as plt
        import numpy as np

        from numpy_distilbert import pipeline

        unmasker = pipeline("fill-mask", model=model_dir)
        print(unmasker)
        """
    ),
    md(
        """
        ## Fill-mask

        The task DistilmBERT was trained on: guess the hidden token. One model, many languages.
        Each candidate is a dict with the probability `score`, the `token` id, its text
        `token_str` and the filled-in `sequence`, exactly as transformers returns them.
        """
    ),
    code(
        """
        if not real:
            print("RANDOM WEIGHTS: these guesses are meaningless\\n")
        for text in ["Paris is the [MASK] of France.", "Berlin ist die [MASK] von Deutschland.",
                     "Hà Nội là thủ đô của [MASK] Nam."]:
            print(text)
            for candidate in unmasker(text, top_k=3):
                print(f"   {candidate['score']:.4f}  {candidate['token_str']!r:<14} {candidate['sequence']}")
        """
    ),
    code(
        """
        unmasker("Paris is the [MASK] of France.", top_k=1)  # the raw output format
        """
    ),
    md(
        r"""
        ## Sentence embeddings across languages

        `feature-extraction` returns the encoder's last hidden state, one 768-vector per token.
        With `pooling="mean"` it averages them into one vector per sentence. Comparing two
        sentences by the **cosine similarity** of their vectors,
        $\cos(a, b) = \frac{a\cdot b}{\lVert a\rVert\,\lVert b\rVert}$, a multilingual encoder
        should place translations of one sentence closer than unrelated sentences (mean-pooled
        mBERT does this only roughly; models fine-tuned for similarity do it well).
        **On random weights** the values are meaningless: all sentences look about equally similar.
        """
    ),
    code(
        """
        embedder = pipeline("feature-extraction", model=model_dir, pooling="mean", return_tensors=True)
        sentences = {
            "en: weather": "The weather is nice today.",
            "fr: weather": "Il fait beau aujourd'hui.",
            "de: weather": "Das Wetter ist heute schön.",
            "vi: weather": "Hôm nay trời đẹp.",
            "en: car": "I sold my old car.",
            "fr: car": "J'ai vendu ma vieille voiture.",
            "ja: car": "古い車を売りました。",
        }
        vectors = np.concatenate(embedder(list(sentences.values())))  # [7, 768]: one [1, 768] per sentence
        unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        similarity = unit @ unit.T  # [7, 7] cosine similarities
        print("embeddings", vectors.shape)

        fig, ax = plt.subplots(figsize=(6.5, 5.5))
        image = ax.imshow(similarity, cmap="magma")
        ax.set_xticks(range(len(sentences)), list(sentences), rotation=60, ha="right")
        ax.set_yticks(range(len(sentences)), list(sentences))
        for i in range(len(sentences)):
            for j in range(len(sentences)):
                ax.text(j, i, f"{similarity[i, j]:.2f}", ha="center", va="center", fontsize=7, color="gray")
        fig.colorbar(image, ax=ax)
        ax.set_title("cosine similarity of mean-pooled embeddings" + ("" if real else "\\n(RANDOM WEIGHTS)"))
        fig.tight_layout()
        plt.show()
        """
    ),
    md(
        """
        ## Token classification (named entities)

        A token-classification model gives every token a distribution over labels such as
        `B-PER` (beginning of a person's name), `I-PER` (inside one), `LOC`, `ORG`, `O` (outside).
        `aggregation_strategy="simple"` groups adjacent tokens into entities; `word`, `start` and
        `end` point into the original text.
        """
    ),
    code(
        """
        from notebook_setup import task_model_dir

        NER_LABELS = {0: "O", 1: "B-PER", 2: "I-PER", 3: "B-ORG", 4: "I-ORG", 5: "B-LOC", 6: "I-LOC"}
        ner_dir, ner_real = task_model_dir("NUMPY_DISTILBERT_NER_MODEL", "DistilBertForTokenClassification",
                                           id2label=NER_LABELS)
        ner = pipeline("token-classification", model=ner_dir, aggregation_strategy="simple")
        text = "Angela Merkel a rencontré Emmanuel Macron à Paris."
        if not ner_real:
            print("RANDOM HEAD: these entities are meaningless\\n")
        for entity in ner(text):
            span = f"[{entity['start']}:{entity['end']}]"
            print(f"{entity['entity_group']:>4}  {entity['score']:.3f}  {entity['word']!r} {span}")
        """
    ),
    md(
        """
        ## Question answering

        Extractive QA: the model scores every context token as a possible answer start and end;
        the pipeline picks the best span (end after start, at most `max_answer_len` tokens) and
        returns its characters from the context, with the span's probability as `score`.
        """
    ),
    code(
        """
        qa_dir, qa_real = task_model_dir("NUMPY_DISTILBERT_QA_MODEL", "DistilBertForQuestionAnswering")
        qa = pipeline("question-answering", model=qa_dir)
        context = "La tour Eiffel a été construite en 1889 pour l'Exposition universelle de Paris."
        if not qa_real:
            print("RANDOM HEAD: these answers are meaningless\\n")
        questions = ["Quand la tour Eiffel a-t-elle été construite ?", "When was the Eiffel Tower built?"]
        for question in questions:
            answer = qa(question=question, context=context)
            print(f"{question}\\n   -> {answer}")
        """
    ),
    md(
        """
        ## Where to go from here

        * `pipeline("text-classification" | "zero-shot-classification", model=...)` work the same
          way with a fine-tuned sequence-classification (or NLI) checkpoint.
        * `python -m numpy_distilbert fill-mask "..."` runs the same pipelines from the shell.
        * Any DistilBERT checkpoint saved as safetensors loads; a PyTorch pickle is refused
          (loading one can run arbitrary code), with the one-line conversion in the error message.
        """
    ),
]


NOTEBOOKS = {
    "01_tokenization.ipynb": TOKENIZATION,
    "02_forward_pass.ipynb": FORWARD_PASS,
    "03_verification.ipynb": VERIFICATION,
    "04_using_it.ipynb": USING_IT,
}


def build(name: str, cells: list[nbformat.NotebookNode]) -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.from_dict(dict(cell)) for cell in cells]  # copies: SETUP is shared
    for i, cell in enumerate(notebook.cells):
        cell.id = f"{name[:2]}-{i:02d}"  # stable ids, so a rebuild changes nothing it need not
    notebook.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    notebook.metadata["language_info"] = {"name": "python"}
    return notebook


def main() -> None:
    for name, cells in NOTEBOOKS.items():
        notebook = build(name, cells)
        nbformat.validate(notebook)
        nbformat.write(notebook, HERE / name)
        print(f"wrote {HERE / name} ({len(cells)} cells)")


if __name__ == "__main__":
    main()
