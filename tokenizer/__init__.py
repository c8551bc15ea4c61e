"""A hand-written BERT WordPiece tokenizer: pure Python and the standard library's `re`.

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

The Encoding's keys also read as attributes (``enc.input_ids``), and it has `BatchEncoding`'s
alignment methods: ``char_to_token``, ``token_to_chars``, ``word_to_tokens``, ``char_to_word``,
``word_to_chars``, ``token_to_word``, ``token_to_sequence``.

transformers' call conventions work: ``return_tensors="np"`` (int64 arrays; numpy is imported
only then), ``is_split_into_words=True``, a batch of ``(text, pair)`` tuples,
``padding_side``/``truncation_side`` (attributes, options, config fields; ``padding_side``
also per call), ``pad_to_multiple_of``, and the warning when a row exceeds
``model_max_length`` without truncation (logged once per tokenizer, logger
``tokenizer.tokenizer``).

Special tokens: ``unk_token``/``sep_token``/``pad_token``/``cls_token``/``mask_token`` and
their ``*_id`` properties, ``all_special_tokens``, ``all_special_ids``, ``special_tokens_map``;
also ``vocab_size``, ``model_max_length``, ``convert_tokens_to_ids``,
``convert_ids_to_tokens``, ``convert_tokens_to_string``, ``tokenize``, ``encode``, ``decode``,
``batch_decode``, ``pad``, ``save_pretrained``, ``build_inputs_with_special_tokens``,
``get_special_tokens_mask``.

Modes and Python versions. The default mode equals the Rust tokenizer on every Python: its
character classes (whitespace, removed controls, punctuation, CJK, nonspacing marks) are frozen
tables generated from ``tokenizers`` (`_unicode_tables`, Unicode 8.0 categories as compiled
into tokenizers), never the running Python's ``unicodedata``. Only the options that change
characters still use the running Python: ``do_lower_case`` (``str.lower``) and accent
stripping (its NFD). ``unicode_normalization="NFC"`` follows the running Python's
``unicodedata`` throughout (NFC and every character class), exactly as ``BertTokenizerLegacy``
does, so its tokens may differ between Python versions, as the legacy tokenizer's do.

A tokenizer may be shared by threads. Integer arguments accept Python and numpy integers.

Modules, in reading order: `_unicode` (character rules; `_unicode_tables` holds the frozen
data, written by ``scripts/make_unicode_tables.py``), `basic` (cleaning, splitting),
`wordpiece` (vocabulary, greedy longest-match-first), `inputs` (what a call accepts, in one
shape), `encoder` (text -> ids, the word cache),
`postprocess` (truncation, overflow windows, special tokens, padding), `encoding` (the
returned dict), `decoding` (ids -> text), `padding` (`pad()` of encoded inputs), `loading`
(the files, read and written) and `checks` (argument rules), and `tokenizer` (the class that
ties them together). See
``docs/tokenizer.md`` for the differences between the Rust and Python tokenizers.
"""

from .decoding import clean_up_tokenization
from .encoding import Encoding
from .tokenizer import WordPieceTokenizer

# PyPI has an unrelated package with the same import name ("tokenizer"). numpy_distilbert checks
# this marker after importing, so that an impostor installed over (or shadowing) this package
# is reported by name instead of as an obscure ImportError or AttributeError.
NUMPY_DISTILBERT_TOKENIZER = True

__all__ = ["NUMPY_DISTILBERT_TOKENIZER", "Encoding", "WordPieceTokenizer", "clean_up_tokenization"]
