"""A hand-written BERT WordPiece tokenizer: pure Python plus `regex`-style pattern matching.

It reproduces transformers' `BertTokenizer` token for token (ids, offsets, masks, overflow),
or with ``unicode_normalization="NFC"`` the legacy pure-Python `BertTokenizerLegacy`.
It knows nothing of the model and imports nothing of the project.

    >>> from tokenizer import WordPieceTokenizer
    >>> tok = WordPieceTokenizer.from_pretrained("path/to/distilbert-base-multilingual-cased")
    >>> tok.tokenize("Hello world")
    ['Hello', 'world']
    >>> enc = tok(["a question?"], ["the context."], truncation="only_second", max_length=384,
    ...           stride=128, return_overflowing_tokens=True, return_offsets_mapping=True)
    >>> enc["input_ids"], enc["offset_mapping"], enc["overflow_to_sample_mapping"]
    >>> enc.word_ids(0), enc.sequence_ids(0), enc.tokens(0)   # per output row

`WordPieceTokenizer.__call__` returns an `Encoding`: a plain ``dict`` with exactly
transformers' keys and values (``input_ids``, ``token_type_ids``, ``attention_mask`` and, when
asked, ``special_tokens_mask``, ``offset_mapping``, ``length``,
``overflow_to_sample_mapping``), plus three methods like `BatchEncoding`'s:

* ``word_ids(i=0)``: per token of output row ``i``, the index of its word in its sequence
  (None for ``[CLS]``/``[SEP]``/padding);
* ``sequence_ids(i=0)``: 0 for tokens of the text, 1 for the pair, None for special tokens
  and padding (what question answering needs to find the context);
* ``tokens(i=0)``: the token strings.

Special tokens: ``unk_token``/``sep_token``/``pad_token``/``cls_token``/``mask_token`` and
their ``*_id`` properties, ``all_special_tokens``, ``all_special_ids``, ``special_tokens_map``;
also ``vocab_size``, ``model_max_length``, ``convert_tokens_to_ids``,
``convert_ids_to_tokens``, ``tokenize``, ``encode``, ``decode``, ``batch_decode``.

Modules, in reading order: `_unicode` (character rules), `basic` (cleaning, splitting),
`wordpiece` (vocabulary, greedy longest-match-first), `tokenizer` (the class). See
``docs/tokenizer.md`` for the differences between the Rust and Python tokenizers.
"""

from .tokenizer import Encoding, WordPieceTokenizer, clean_up_tokenization

__all__ = ["Encoding", "WordPieceTokenizer", "clean_up_tokenization"]
