"""Ids back to text, as transformers decodes a WordPiece model.

`join_wordpieces` is the WordPiece decoder (glue ``##`` pieces to the previous token, a space
before the others, and its per-token clean-up); `clean_up_tokenization` is transformers'
optional clean-up of the whole string (``"I ' m"`` -> ``"I'm"``).
"""

from __future__ import annotations

from collections.abc import Sequence

from .wordpiece import CONTINUATION_PREFIX


def join_wordpieces(tokens: Sequence[str]) -> str:
    """The WordPiece decoder: ``["un", "##able", "."]`` -> ``"unable."``."""
    parts = []
    for i, token in enumerate(tokens):
        if i:
            if token.startswith(CONTINUATION_PREFIX):
                token = token[len(CONTINUATION_PREFIX) :]
            else:
                token = " " + token
        parts.append(decoder_cleanup(token))
    return "".join(parts)


def decoder_cleanup(s: str) -> str:
    """The WordPiece decoder's per-token clean-up (tokenizers' ``cleanup=True``)."""
    return (
        s.replace(" .", ".").replace(" ?", "?").replace(" !", "!").replace(" ,", ",")
        .replace(" ' ", "'").replace(" n't", "n't").replace(" 'm", "'m")
        .replace(" do not", " don't").replace(" 's", "'s").replace(" 've", "'ve")
        .replace(" 're", "'re")
    )  # fmt: skip


def clean_up_tokenization(text: str) -> str:
    """transformers' ``clean_up_tokenization``: remove spaces before punctuation and
    inside English contractions."""
    return (
        text.replace(" .", ".").replace(" ?", "?").replace(" !", "!").replace(" ,", ",")
        .replace(" ' ", "'").replace(" n't", "n't").replace(" 'm", "'m").replace(" 's", "'s")
        .replace(" 've", "'ve").replace(" 're", "'re")
    )  # fmt: skip
