"""The command line: `python -m numpy_distilbert <command> ...` (or the `numpy-distilbert` script).

    numpy-distilbert fill-mask "Hello I'm a [MASK] model."
    numpy-distilbert classify --model ./my-sst2-model -i reviews.txt > scores.jsonl
    cat questions.jsonl | numpy-distilbert qa --model ./squad-model --top-k 3
    numpy-distilbert verify --model ./my-model "Some text to check."
    numpy-distilbert similarity --model ./all-MiniLM-L6-v2 -q "a query" -i lines.txt --top-k 5
    numpy-distilbert search --model ./all-MiniLM-L6-v2 --corpus lines.txt --index lines.npy "a query"

Inputs: TEXT arguments; or `-i FILE` (`-i -` for stdin), one input per line (blank lines
are skipped); or, with neither, lines piped on stdin. With `--field NAME` every line is a
JSON object and the input is its NAME field (`--pair-field NAME2` adds a second text where
a pair makes sense: `classify`, and `qa`, whose lines are always JSON,
{"question": ..., "context": ...} unless the fields are renamed). `qa` also takes
`--question` and `--context`; `classify --text-pair TEXT2` pairs every input with TEXT2.

`classify`, `ner`, `qa` and `zero-shot` need `--model`: the default checkpoint has no such head.

Outputs: JSON on stdout. One input given as an argument prints as indented JSON; otherwise
(or with `--jsonl`, and always for `embed`) every input gets one line of JSON, in input order.
`-o FILE.jsonl` writes them to a file instead, each line {"line": N, "result": ...} (or
"error"), appended batch by batch in input order; `--resume` goes on with a killed run (see
`numpy_distilbert.jobs`), and `--workers N` runs the batches in N processes, with the same output.
`embed -o FILE.npy` writes the vectors as one [N, D] matrix, and `embed -o DIR` as float32 shards
with their line numbers (`numpy_distilbert.shards`), which `search --index DIR` searches.
On a sentence-transformers directory (one with modules.json) `embed` pools and normalises as
the directory says, cutting inputs at its max_seq_length, unless `--pooling` is given.
`similarity` prints a file's lines ranked against `--query`; `search` answers queries from an
index of a corpus it builds once.
An input that fails (a fill-mask line without [MASK], a line too long for the model, bad JSON
for qa) is reported on stderr with its line number, and gets the line `{"error": ..., "line": N}` on
stdout so that output lines stay aligned with input lines; the other lines' results are kept.

Exit status: 0 when every input succeeded; 1 when some failed, the model could not be run
or the output could not be written; 2 for usage errors (bad options, no input, a model
directory or id that does not exist); for `verify`, 3 when nothing was checked against a
tolerance (transformers not installed, or --no-transformers). Errors are one line each:
`numpy-distilbert: error: ...`; a reader that goes away (`| head -1`) just ends the run.
`--traceback` (or NUMPY_DISTILBERT_TRACEBACK=1) also prints the traceback behind an error
that is not a usage error, for bug reports.

Option defaults that are the pipelines' (top-k, batch size, QA window sizes) are not copied
here: an option left out is not passed, and `COMMAND --help` reads the default from the
pipeline class (so the program's own `--help` still imports nothing heavy).

JSON is strict (no NaN or Infinity), and written with ASCII (\\u) escapes when the output
encoding cannot hold a character (e.g. PYTHONIOENCODING=ascii).

A progress bar goes to stderr for inputs longer than one batch, when stderr is a terminal;
`--no-progress` turns it off. Nothing heavy is imported until a command runs, so `--help`
answers at once.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import stat
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, NoReturn

from numpy_distilbert import finetune  # standard library only until it runs
from numpy_distilbert._checks import comma_list
from numpy_distilbert.jobs import one_line as _one_line  # an exception as one line (standard library only)

PROG = "numpy-distilbert"
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NOT_CHECKED = 0, 1, 2, 3
TRACEBACK_ENV = "NUMPY_DISTILBERT_TRACEBACK"


class UsageError(Exception):
    """Bad arguments: reported as one line, exit status 2."""


class RunError(Exception):
    """The command could not run (e.g. the model does not load): one line, exit status 1."""


class OutputError(RunError):
    """Standard output refused the results (a full disk, a closed descriptor)."""


# ------------------------------------------------------------------ reporting
_progress_line = False  # whether a progress bar is drawn on stderr right now
_tracebacks = False  # --traceback or NUMPY_DISTILBERT_TRACEBACK=1: show what a one-line error hides


def _to_stderr(text: str) -> None:
    """Write to stderr, never failing: an error about reporting an error has nowhere to go."""
    stream = sys.stderr
    if stream is None:  # started with stderr closed
        return
    encoding = getattr(stream, "encoding", None) or "utf-8"
    try:
        text = text.encode(encoding, "backslashreplace").decode(encoding)
        stream.write(text)
        stream.flush()
    except (OSError, ValueError, LookupError):
        pass


def _clear_progress() -> None:
    global _progress_line
    if _progress_line:
        _to_stderr("\r\033[K")
        _progress_line = False


def report(message: str, kind: str = "error") -> None:
    """Write `numpy-distilbert: <kind>: <message>` to stderr, as one line."""
    _clear_progress()
    _to_stderr(f"{PROG}: {kind}: {_one_line(message)}\n")


def _show_warning(
    message: Warning | str, category: type[Warning], filename: str, lineno: int,
    file: Any = None, line: str | None = None,
) -> None:
    report(str(message), kind="warning")


class _ReportHandler(logging.Handler):
    """Log records of the project's packages (e.g. the tokenizer's too-long warning) as one
    `numpy-distilbert: warning: ...` line, like Python warnings, instead of Python's bare fallback."""

    def emit(self, record: logging.LogRecord) -> None:
        kind = "error" if record.levelno >= logging.ERROR else "warning"
        report(record.getMessage(), kind=kind)


LOGGERS = ("tokenizer", "numpy_distilbert")  # the packages whose log records the CLI reports


def _traceback_wanted(flag: bool) -> bool:
    return flag or os.environ.get(TRACEBACK_ENV, "").strip() not in ("", "0")


def _show_traceback(exc: BaseException) -> None:
    """The traceback of an exception about to be reported as one line, when --traceback asked for it."""
    if _tracebacks:
        _clear_progress()
        _to_stderr("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))


class Progress:
    """A one-line progress bar on stderr; does nothing when disabled."""

    def __init__(self, label: str, total: int | None, enabled: bool) -> None:
        self.label, self.total, self.enabled = label, total, enabled
        self.done = 0
        self.started = time.monotonic()

    def update(self, n: int) -> None:
        global _progress_line
        self.done += n
        if not self.enabled:
            return
        rate = self.done / max(time.monotonic() - self.started, 1e-9)
        if self.total:
            width = 30
            filled = int(width * min(self.done / self.total, 1.0))
            bar = f"[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total}"
        else:
            bar = f"{self.done} inputs"
        _to_stderr(f"\r{self.label} {bar}  {rate:.1f}/s\033[K")
        _progress_line = True

    def close(self) -> None:
        if self.enabled:
            _clear_progress()


# ------------------------------------------------------------------- argparse
class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit status 2."""

    def error(self, message: str) -> NoReturn:
        hint = f"see '{self.prog} --help'"
        report(f"{message} ({hint})")
        raise SystemExit(EXIT_USAGE)


# `--workers` left out: a file of at least this many batches runs in one worker per core (measured
# faster than one process with as many BLAS threads: README "From one file to a cluster"); a
# shorter input, or one of unknown length (stdin), runs in this process, with no start-up to pay.
AUTO_WORKERS_MIN_BATCHES = 16


def _int_at_least(minimum: int, what: str) -> Callable[[str], int]:
    """An argparse `type` that accepts integers >= minimum and names `what` otherwise."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected {what}, got {value}")
        return value

    return parse


_positive_int = _int_at_least(1, "a positive integer")
_non_negative_int = _int_at_least(0, "an integer >= 0")


def _non_empty_comma_list(text: str) -> list[str]:
    items = comma_list(text)
    if not items:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list, got {text!r}")
    return items


# Help text placeholder for an option whose default is the pipeline's (see _HelpFormatter).
PIPELINE_DEFAULT = "{pipeline default}"


class _HelpFormatter(argparse.HelpFormatter):
    """Fills PIPELINE_DEFAULT in an option's help from the pipeline class, only when that help
    is shown: the defaults have one home (the pipelines), and `--help` of the program itself
    never formats subcommand options, so it still imports nothing heavy."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help
        source = getattr(action, "pipeline_default", None)
        if text and source is not None and PIPELINE_DEFAULT in text:
            text = text.replace(PIPELINE_DEFAULT, source().replace("%", "%%"))
        return text


def _pipeline_option_default(task: str, option: str) -> Any:
    from numpy_distilbert.pipelines import pipeline_class

    return pipeline_class(task).default_options[option]


def _pipeline_batch_size() -> int:
    from numpy_distilbert.pipelines.base import DEFAULT_BATCH_SIZE

    return DEFAULT_BATCH_SIZE


def _add_pipeline_option(
    parser: argparse.ArgumentParser | Any, *flags: str, default_text: Callable[[], str], **kwargs: Any
) -> None:
    """An option left out (None) is not passed to the pipeline, whose default then applies."""
    action = parser.add_argument(*flags, default=None, **kwargs)
    setattr(action, "pipeline_default", default_text)  # noqa: B010  (read by _HelpFormatter)


def _option_default(task: str, option: str) -> Callable[[], str]:
    return lambda: str(_pipeline_option_default(task, option))


def _traceback_option(main: bool) -> _Parser:
    """--traceback, accepted before or after the command name."""
    parent = _Parser(add_help=False)
    parent.add_argument("--traceback", action="store_true", default=False if main else argparse.SUPPRESS,
                        help=f"print the traceback behind an error (also: {TRACEBACK_ENV}=1)")
    return parent


def _model_options(dtype: bool = True, needs: str | None = None) -> _Parser:
    parent = _Parser(add_help=False)
    group = parent.add_argument_group("model")
    default = f"required: {needs}" if needs else "default: distilbert-base-multilingual-cased"
    group.add_argument("-m", "--model", default=None,
                       help=f"model directory, or a Hugging Face model id found in the cache ({default})")
    group.add_argument("--revision", default=None, help="branch, tag or commit of a model id")
    if dtype:
        group.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                           help="arithmetic precision (default: float32)")
    return parent


@dataclass(frozen=True)
class Command:
    """One subcommand: its pipeline task, how inputs are read, and how options and results map."""

    name: str
    help: str
    task: str | None  # None: the command needs only the tokenizer (no weights, no --dtype)
    add_arguments: Callable[[argparse.ArgumentParser], None]
    options: Callable[[argparse.Namespace], dict[str, Any]]
    # result of the pipeline for a *list* of inputs -> one result per input
    per_item: Callable[[Any, int], list[Any]] = lambda result, n: list(result)
    # one result as written (e.g. dropping a leading batch axis of one)
    shape: Callable[[Any, argparse.Namespace], Any] = lambda result, args: result
    # JSON lines: the default names of the input field and of the second text's field
    # (None: no second text). `pair_required`: every line is JSON and holds both (qa).
    fields: tuple[str, str | None] = ("text", None)
    pair_required: bool = False
    # (text, second text or None) -> the pipeline's input
    combine: Callable[[str, str | None], Any] = lambda text, pair: text
    positional_texts: bool = True  # TEXT arguments (qa: --question and --context instead)
    needs_model: str | None = None  # what --model must name, when the default checkpoint has no such head
    compact: bool = False  # one line of JSON per result even for one argument (embed: long vectors)
    truncation_hint: bool = False  # the command has --truncation: name it when an input is too long


def _fill_mask_args(p: argparse.ArgumentParser) -> None:
    _add_pipeline_option(p, "--top-k", type=_positive_int, default_text=_option_default("fill-mask", "top_k"),
                         help=f"candidates per [MASK] (default: {PIPELINE_DEFAULT})")
    p.add_argument("--targets", type=_non_empty_comma_list,
                   help="comma-separated tokens to restrict the candidates to")


def _embed_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pooling", choices=("mean", "cls", "none"), default=None,
                   help="one vector per input: mean over tokens or the [CLS] vector; 'none' gives "
                        "every token's vector (default: a sentence-transformers model directory's own "
                        "pooling and normalisation, from its modules.json, cutting inputs at its "
                        "max_seq_length; mean for any other model)")
    p.add_argument("--normalize", action="store_true", help="scale every vector to unit length (L2)")
    p.add_argument("--shard-rows", type=_positive_int, default=None,
                   help="with -o DIR: rows per shard, rounded up to whole batches (default: 16384)")
    p.add_argument("--truncation", action="store_true", help="cut inputs longer than the model allows")


def _classify_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--top-k", type=_non_negative_int, default=None,
                   help="list the k best labels per input (0: all); default: only the best, as one dict")
    p.add_argument("--function-to-apply", choices=("default", "softmax", "sigmoid", "none"), default=None,
                   help="how logits become scores (default: from the model's config)")
    p.add_argument("--text-pair", metavar="TEXT2",
                   help="classify every input as a pair with TEXT2 (e.g. premise and hypothesis)")
    p.add_argument("--truncation", action="store_true", help="cut inputs longer than the model allows")


def _zero_shot_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--labels", type=_non_empty_comma_list, required=True,
                   help="comma-separated candidate labels")
    _add_pipeline_option(p, "--hypothesis-template",
                         default_text=lambda: repr(_pipeline_option_default("zero-shot-classification",
                                                                            "hypothesis_template")),
                         help=f"the hypothesis for each label, '{{}}' standing for the label "
                              f"(default: {PIPELINE_DEFAULT})")
    p.add_argument("--multi-label", action="store_true", help="score every label independently")


def _ner_args(p: argparse.ArgumentParser) -> None:
    _add_pipeline_option(p, "--aggregation-strategy", choices=("none", "simple", "first", "average", "max"),
                         default_text=_option_default("token-classification", "aggregation_strategy"),
                         help=f"group tokens into entities (default: {PIPELINE_DEFAULT}; none is one row "
                              f"per token)")
    p.add_argument("--ignore-labels", type=comma_list, default=None,
                   help="comma-separated labels to drop (default: O; '' keeps every label)")
    p.add_argument("--stride", type=_positive_int, default=None,
                   help="split long inputs into windows overlapping by this many tokens (default: truncate)")
    p.add_argument("--is-split-into-words", action="store_true",
                   help="with --field: the field holds a list of words (e.g. CoNLL tokens), as transformers' "
                        "is_split_into_words; start/end then index the words joined by spaces")


def _qa_sizes() -> tuple[int, int]:
    from numpy_distilbert.pipelines.question_answering import DEFAULT_DOC_STRIDE, DEFAULT_MAX_SEQ_LEN

    return DEFAULT_MAX_SEQ_LEN, DEFAULT_DOC_STRIDE


def _qa_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-q", "--question", help="the question (with --context)")
    p.add_argument("-c", "--context", help="the text holding the answer (with --question)")
    task = "question-answering"
    _add_pipeline_option(p, "--top-k", type=_positive_int, default_text=_option_default(task, "top_k"),
                         help=f"answers per question (default: {PIPELINE_DEFAULT})")
    _add_pipeline_option(p, "--max-answer-len", type=_positive_int,
                         default_text=_option_default(task, "max_answer_len"),
                         help=f"in tokens (default: {PIPELINE_DEFAULT})")
    _add_pipeline_option(p, "--max-seq-len", type=_positive_int,
                         default_text=lambda: f"the model's limit, at most {_qa_sizes()[0]}",
                         help=f"tokens per window of question + context (default: {PIPELINE_DEFAULT})")
    _add_pipeline_option(p, "--doc-stride", type=_non_negative_int,
                         default_text=lambda: f"half of --max-seq-len, at most {_qa_sizes()[1]}",
                         help=f"overlap of consecutive windows, in tokens (default: {PIPELINE_DEFAULT})")
    p.add_argument("--handle-impossible-answer", action="store_true",
                   help="allow the empty answer when the context has none")
    p.add_argument("--no-align-to-words", action="store_true",
                   help="report token spans as they are, not widened to whole words")


def _tokenize_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-special-tokens", action="store_true", help="leave out [CLS] and [SEP]")


def _given(**options: Any) -> dict[str, Any]:
    """The options given on the command line (None: left out, so the pipeline's default applies)."""
    return {name: value for name, value in options.items() if value is not None}


def _classify_options(a: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {"truncation": a.truncation}
    if a.top_k is not None:
        options["top_k"] = a.top_k or None  # 0: all labels
    return options | _given(function_to_apply=a.function_to_apply, text_pair=a.text_pair)


def _ner_options(a: argparse.Namespace) -> dict[str, Any]:
    given = _given(aggregation_strategy=a.aggregation_strategy, stride=a.stride,
                   ignore_labels=a.ignore_labels)
    return {"is_split_into_words": a.is_split_into_words} | given


def _qa_options(a: argparse.Namespace) -> dict[str, Any]:
    return {
        "handle_impossible_answer": a.handle_impossible_answer,
        "align_to_words": not a.no_align_to_words,
    } | _given(top_k=a.top_k, max_answer_len=a.max_answer_len, max_seq_len=a.max_seq_len,
               doc_stride=a.doc_stride)  # fmt: skip


def _embed_options(a: argparse.Namespace) -> dict[str, Any]:
    # Arrays, not lists: --normalize and -o work on them; the JSON writer turns them into lists.
    pooling = "mean" if a.pooling is None else a.pooling
    return {"pooling": None if pooling == "none" else pooling, "truncation": a.truncation,
            "return_tensors": True}  # fmt: skip


def _embedding(result: Any, args: argparse.Namespace) -> Any:
    """One input's [1, D] (or [1, L, D]) array -> [D] (or [L, D]), L2-normalised if asked."""
    import numpy as np

    vectors = result[0]
    if args.normalize:
        norms = np.linalg.norm(vectors.astype(np.float64), axis=-1, keepdims=True)
        # A zero vector stays zero rather than becoming NaN.
        vectors = (vectors / np.where(norms > 0, norms, 1.0)).astype(vectors.dtype)
    return vectors


def _unwrapped_when_one(result: Any, n: int) -> list[Any]:
    """For pipelines that return a list of one input's result as that result (fill-mask, qa)."""
    return [result] if n == 1 else list(result)


def _text_pair(text: str, pair: str | None) -> Any:
    return text if pair is None else {"text": text, "text_pair": pair}


def _question_and_context(question: str, context: str | None) -> Any:
    return {"question": question, "context": context}


_MODEL_ID = "a directory or a Hugging Face model id"
COMMANDS = [
    Command("fill-mask", "the most likely tokens for each [MASK]", "fill-mask", _fill_mask_args,
            lambda a: _given(top_k=a.top_k, targets=a.targets), per_item=_unwrapped_when_one),
    Command("embed", "sentence (or token) vectors from the encoder", "feature-extraction", _embed_args,
            _embed_options, shape=_embedding, compact=True, truncation_hint=True),
    Command("classify", "label each text or text pair (a sequence-classification model)",
            "text-classification", _classify_args, _classify_options, fields=("text", "text_pair"),
            combine=_text_pair, truncation_hint=True,
            needs_model=f"a sequence-classification checkpoint ({_MODEL_ID})"),
    Command("zero-shot", "score each text against --labels (an NLI model)", "zero-shot-classification",
            _zero_shot_args,
            lambda a: {"candidate_labels": a.labels, "multi_label": a.multi_label}
            | _given(hypothesis_template=a.hypothesis_template),
            needs_model=f"an NLI checkpoint with an 'entailment' label ({_MODEL_ID})"),
    Command("ner", "label each token or entity (a token-classification model)", "token-classification",
            _ner_args, _ner_options, needs_model=f"a token-classification checkpoint ({_MODEL_ID})"),
    Command("qa", "answer questions from a context (a question-answering model)", "question-answering",
            _qa_args, _qa_options, per_item=_unwrapped_when_one, fields=("question", "context"),
            pair_required=True, combine=_question_and_context, positional_texts=False,
            needs_model=f"a question-answering checkpoint ({_MODEL_ID})"),
    Command("tokenize", "tokens, ids and character offsets (loads only the tokenizer)", None,
            _tokenize_args, lambda a: {}),
]
COMMANDS_BY_NAME = {c.name: c for c in COMMANDS}


def _io_options(command: Command) -> _Parser:
    parent = _Parser(add_help=False)
    if command.positional_texts:
        parent.add_argument("texts", nargs="*", metavar="TEXT", help="input texts (else -i FILE or stdin)")
    group = parent.add_argument_group("input and output")
    group.add_argument("-i", "--input", metavar="FILE",
                       help="read inputs from FILE, one per line ('-' for stdin; blank lines skipped)")
    field, pair = command.fields
    if command.pair_required:
        group.add_argument("--field", metavar="NAME", help=f"JSON lines: the field holding the {field} "
                                                          f"(default: {field})")
    else:
        group.add_argument("--field", metavar="NAME",
                           help="read every line as a JSON object and take its NAME field as the input")
    if pair is not None:
        group.add_argument("--pair-field", metavar="NAME",
                           help=f"JSON lines: the field holding the {pair}" + (
                               f" (default: {pair})" if command.pair_required
                               else f"; the first text is --field (default: {field})"))
    group.add_argument("--jsonl", action="store_true",
                       help="one line of JSON per input (the default of this command)" if command.compact
                       else "one line of JSON per input, even for a single argument")
    group.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    if command.name == "embed":
        output_help = ("FILE.npy: one [N, D] matrix (numpy.save, the computing dtype; the row of an input "
                       "that failed is NaN; held in memory until the end). FILE.jsonl: JSON lines as for "
                       "any command. Any other PATH is a directory of float32 .npy shards with an index of "
                       "line numbers (resumable; what `search --index DIR` reads)")
    else:
        output_help = "write JSON lines to FILE instead of stdout"
    group.add_argument("-o", "--output", metavar="FILE.jsonl" if command.name != "embed" else "PATH",
                       help=output_help + ". In a file every line is {\"line\": N, \"result\": ...} or "
                       "{\"line\": N, \"error\": ...}, in input order, appended batch by batch; an existing "
                       "FILE is replaced unless --resume")
    group.add_argument("--resume", action="store_true",
                       help="with -o: keep the results already in the output (checked line by line against "
                            "the input) and run the rest; a torn or half-written last batch is redone")
    group.add_argument("--id-field", metavar="NAME",
                       help="with --field: copy each JSON line's NAME field into its output record as \"id\"")
    group.add_argument("--workers", type=_positive_int, default=None,
                       help="worker processes sharing the memory-mapped weights, 1 BLAS thread each by "
                            "default; same output, same order. 1: this process only (default: one worker "
                            f"per core for an input file of at least {AUTO_WORKERS_MIN_BATCHES} batches, "
                            "the faster split measured on 2 cores; else 1)")
    group.add_argument("--threads", type=_positive_int, default=None,
                       help="BLAS threads per process (default: the cores shared out among the workers; "
                            "with one worker, the BLAS's own default)")
    what = "inputs per forward pass" if command.task else "lines per write"
    _add_pipeline_option(group, "--batch-size", type=_positive_int,
                         default_text=lambda: str(_pipeline_batch_size()),
                         help=f"{what} (default: {PIPELINE_DEFAULT})")
    return parent


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = _Parser(
        prog=PROG,
        description="DistilmBERT in pure NumPy: predictions, embeddings and numerical verification "
                    "from the command line. Output is JSON.",
        epilog="Inputs: TEXT arguments, -i FILE (one per line, '-' for stdin), or lines on stdin. "
               "Exit status: 0 ok, 1 some inputs failed (or the model could not run), 2 usage error, "
               "3 verify checked nothing against a tolerance. "
               f"Run '{PROG} COMMAND --help' for a command's options.",
        parents=[_traceback_option(main=True)],
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    after = _traceback_option(main=False)
    for command in COMMANDS:
        model = _model_options(dtype=command.task is not None, needs=command.needs_model)
        p = sub.add_parser(command.name, help=command.help, description=command.help,
                           parents=[model, _io_options(command), after], formatter_class=_HelpFormatter)
        command.add_arguments(p)
    p = sub.add_parser(
        "verify",
        help="float32 vs float64 per layer, and vs transformers when installed",
        description="Run the model in float32 and float64 on the texts and print the largest "
                    "differences per layer (embeddings, each block, logits); when torch and "
                    "transformers are installed, also float32 vs transformers float32 and float64 vs "
                    "transformers float64, checked against the project's tolerances. Exit status 0 "
                    "only when every comparison met its tolerance, 1 when one exceeds it, 3 when "
                    "nothing was compared with transformers (not installed, or --no-transformers).",
        parents=[_model_options(dtype=False), after],
    )
    p.add_argument("texts", nargs="*", metavar="TEXT",
                   help="texts to run (default: \"Hello I'm a [MASK] model.\")")
    p.add_argument("-i", "--input", metavar="FILE", help="read texts from FILE, one per line ('-': stdin)")
    p.add_argument("--json", action="store_true", help="print the measurements as JSON instead of tables")
    p.add_argument("--no-transformers", action="store_true", help="skip the comparison with transformers")
    _add_similarity_parser(sub, after)
    _add_search_parser(sub, after)
    finetune.add_parser(sub, [after])
    from numpy_distilbert.distill_cli import add_distill_parser  # light: argparse only

    add_distill_parser(sub, after, _positive_int)
    return parser


def _version() -> str:
    from numpy_distilbert import __version__

    return __version__


# ------------------------------------------------------------------- inputs
@dataclass
class Item:
    """One input: where it came from (for messages), and its value or why it is unusable."""

    where: str  # "line 3" / "argument 2"
    number: int
    value: Any = None
    problem: str | None = None
    id: Any = None  # the --id-field value of a JSON line

    def record(self) -> Any:
        from numpy_distilbert.jobs import InputRecord

        return InputRecord(self.number, self.value, self.id, self.problem)


def _open_input(path: str) -> tuple[BinaryIO, str, int | None]:
    """(binary stream, name for messages, number of non-blank lines if cheaply known).

    Lines are decoded one by one (`_lines`), so that one line of bad UTF-8 is one bad input,
    not the end of the file. The file is opened once: a pipe, a FIFO or /dev/stdin can be
    read only once, so only a regular file is counted (for the progress bar) and rewound.
    """
    if path == "-":
        if sys.stdin is None:  # started with `<&-`
            raise UsageError("-i -: standard input is closed")
        return sys.stdin.buffer, "stdin", None
    try:
        stream = open(path, "rb")  # closed by the caller, after the last line
    except OSError as exc:
        raise UsageError(f"cannot read input file {path}: {exc.strerror or exc}") from None
    try:
        return stream, path, _count_if_regular(stream)
    except OSError as exc:
        stream.close()
        raise UsageError(f"cannot read input file {path}: {exc.strerror or exc}") from None


def _count_if_regular(stream: BinaryIO) -> int | None:
    """Non-blank lines of a regular file, the stream rewound; None for anything else."""
    if not stat.S_ISREG(os.fstat(stream.fileno()).st_mode):
        return None
    total = sum(1 for line in stream if line.strip())
    stream.seek(0)
    return total


def _lines(stream: BinaryIO, name: str) -> Iterator[tuple[int, str | None, str | None]]:
    """(line number, text, problem) for each non-blank line; a read error ends the run (RunError)."""
    for number, raw in enumerate(_raw_lines(stream, name), 1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield number, None, f"not valid UTF-8 (byte {exc.start + 1}: {exc.reason})"
            continue
        text = text.rstrip("\r\n")
        if number == 1:
            text = text.removeprefix("\ufeff")  # a byte-order mark some editors write
        if text.strip():
            yield number, text, None


def _raw_lines(stream: BinaryIO, name: str) -> Iterator[bytes]:
    try:
        yield from stream
    except OSError as exc:
        raise RunError(f"cannot read {name}: {exc.strerror or exc}") from None


def _items(args: argparse.Namespace, command: Command) -> tuple[Iterable[Item], int | None, bool]:
    """The inputs, their count if known, and whether to print the single result indented."""
    texts = getattr(args, "texts", None) or []
    pretty_one = not args.jsonl and not command.compact
    field, pair_field = _json_fields(args, command)
    if not command.positional_texts:  # qa: --question and --context
        given = (args.question is not None, args.context is not None)
        if any(given):
            if not all(given):
                raise UsageError("qa needs both --question and --context (or JSON lines on -i FILE / stdin)")
            if args.input:
                raise UsageError("give either --question/--context or -i FILE, not both")
            if args.field or args.pair_field:
                raise UsageError("--field and --pair-field name the fields of JSON lines, not of "
                                 "--question/--context")
            item = Item("the arguments", 1, command.combine(args.question, args.context))
            return [item], 1, pretty_one
    if getattr(args, "text_pair", None) is not None and pair_field is not None:
        raise UsageError("give either --text-pair or --pair-field, not both")
    split_into_words = getattr(args, "is_split_into_words", False)
    if split_into_words and field is None:
        raise UsageError("--is-split-into-words reads lists of words from JSON lines: give --field NAME too")
    if getattr(args, "id_field", None) is not None and field is None:
        raise UsageError("--id-field names a field of JSON lines: give --field NAME too")
    if texts:
        if args.input:
            raise UsageError("give either TEXT arguments or -i FILE, not both")
        if field is not None:
            raise UsageError("--field and --pair-field read JSON lines (-i FILE or stdin); TEXT arguments "
                             "are plain text")
        items = [Item(f"argument {i}", i, command.combine(t, None)) for i, t in enumerate(texts, 1)]
        return items, len(items), len(items) == 1 and pretty_one
    if args.input is None:
        if sys.stdin is None or sys.stdin.isatty():
            what = "TEXT arguments" if command.positional_texts else "--question and --context"
            raise UsageError(f"no input: give {what}, -i FILE, or pipe lines on stdin")
        args.input = "-"
    stream, name, total = _open_input(args.input)
    where = f"{name} line"

    id_field = getattr(args, "id_field", None)

    def parse(text: str) -> tuple[Any, Any, str | None]:
        if field is None:
            return command.combine(text, None), None, None
        texts, problem = _json_fields_of(text, field, pair_field, words=split_into_words)
        if texts is None:
            return None, None, problem
        ident, problem = (None, None) if id_field is None else _json_id_of(text, id_field)
        return (None, None, problem) if problem else (command.combine(*texts), ident, None)

    def generate() -> Iterator[Item]:
        try:
            warned = False
            for number, text, problem in _lines(stream, name):
                value = ident = None
                if problem is None and text is not None:
                    if field is None and not warned and _is_json_object(text):
                        warned = True  # once: read as text, as asked, but say what --field is for
                        report(f"{where} {number} is a JSON object, read as plain text; pass --field NAME "
                               f"to take the input from its NAME field", kind="warning")
                    value, ident, problem = parse(text)
                yield Item(f"{where} {number}", number, value, problem, ident)
        finally:
            if stream is not sys.stdin.buffer:
                stream.close()

    return generate(), total, False


def _is_json_object(text: str) -> bool:
    stripped = text.strip()
    if not (stripped.startswith("{") and stripped.endswith("}")):
        return False
    try:
        return isinstance(json.loads(stripped), dict)
    except (ValueError, RecursionError):
        return False


def _json_fields(args: argparse.Namespace, command: Command) -> tuple[str | None, str | None]:
    """(field, pair field) to read from JSON lines; (None, None): the lines are plain text."""
    field, pair_field = getattr(args, "field", None), getattr(args, "pair_field", None)
    default_field, default_pair = command.fields
    if command.pair_required:
        return field or default_field, pair_field or default_pair
    if pair_field is not None:
        return field or default_field, pair_field
    return field, None


_JSON_TYPES = {dict: "an object", list: "an array", int: "a number", float: "a number", bool: "true/false",
               type(None): "null"}  # fmt: skip


def _json_fields_of(
    text: str, field: str, pair_field: str | None, words: bool = False
) -> tuple[tuple[Any, str | None] | None, str | None]:
    """One JSON line -> (its `field` text, its `pair_field` text or None), or the reason it has none.

    With `words`, `field` holds a list of strings (pre-split words) instead of a string.
    """
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON ({exc.msg} at column {exc.colno})"
    except RecursionError:
        return None, "JSON nested too deeply to read"
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        return None, f"not usable JSON ({_one_line(str(exc).split(';')[0])})"
    names = (field,) if pair_field is None else (field, pair_field)
    if not isinstance(record, dict):
        wanted = ", ".join(f"{name!r}: ..." for name in names)
        return None, f"expected a JSON object {{{wanted}}}, got {_JSON_TYPES.get(type(record), 'a string')}"
    for name in names:
        if name not in record:
            return None, f"the JSON object has no {name!r} field"
        value = record[name]
        if words and name == field:
            if not isinstance(value, list) or not all(isinstance(word, str) for word in value):
                return None, f"field {name!r} must be a list of strings (--is-split-into-words)"
        elif not isinstance(value, str):
            return None, f"field {name!r} must be a string, got {_JSON_TYPES.get(type(value), '?')}"
    return (record[field], None if pair_field is None else record[pair_field]), None


def _json_id_of(text: str, id_field: str) -> tuple[Any, str | None]:
    """(the --id-field value of a JSON line, None), or (None, why it has none). A line that got here
    parsed already, as an object."""
    value = json.loads(text).get(id_field)
    if value is None:
        return None, f"the JSON object has no {id_field!r} field (--id-field)"
    if isinstance(value, (dict, list)):
        kind = _JSON_TYPES[type(value)]
        return None, f"field {id_field!r} (--id-field) must be a string or a number, got {kind}"
    if isinstance(value, float) and value - value != 0:  # NaN or infinity: strict JSON cannot write it back
        return None, f"field {id_field!r} (--id-field) is not a finite number"
    return value, None


def _where(items: Iterable[Item], prefix: str) -> Callable[[int], str]:
    """How messages name an input by its number: "argument 2" for arguments, else "<prefix> N"."""
    named = {item.number: item.where for item in items} if isinstance(items, list) else {}
    return lambda number: named.get(number) or f"{prefix} {number}"


# ------------------------------------------------------------------- running
def _load_pipeline(command: Command, args: argparse.Namespace) -> Any:
    from numpy_distilbert.hub import ModelNotFoundError
    from numpy_distilbert.pipelines import pipeline

    batch_size = {} if args.batch_size is None else {"batch_size": args.batch_size}
    try:
        return pipeline(str(command.task), model=args.model, dtype=args.dtype, revision=args.revision,
                        **batch_size)
    except ModelNotFoundError as exc:
        raise UsageError(exc) from None
    except Exception as exc:
        _show_traceback(exc)
        raise RunError(f"cannot load the {command.task} model: {_one_line(exc)}") from None


def _tokenizer_dir(model: str | None, revision: str | None) -> Any:
    """Where `tokenize` finds its files: only the tokenizer's, never weights or config.json."""
    from numpy_distilbert.hub import ModelNotFoundError, resolve_tokenizer

    try:
        return resolve_tokenizer(model, revision=revision)
    except ModelNotFoundError as exc:
        raise UsageError(exc) from None


def _load_tokenizer(args: argparse.Namespace) -> Any:
    from numpy_distilbert._tokenizer_package import wordpiece_tokenizer_class

    path = _tokenizer_dir(args.model, args.revision)
    try:
        return wordpiece_tokenizer_class().from_pretrained(path)
    except Exception as exc:
        _show_traceback(exc)
        raise RunError(f"cannot load the tokenizer from {path}: {_one_line(exc)}") from None


def _tokenize_runner(tok: Any, no_special: bool) -> Callable[[list[Any]], list[Any]]:
    def run(texts: list[Any]) -> list[Any]:
        results = []
        for text in texts:
            enc = tok(text, add_special_tokens=not no_special, return_offsets_mapping=True)
            results.append({
                "tokens": enc.tokens(0),
                "input_ids": list(enc["input_ids"]),
                "offsets": [list(o) for o in enc["offset_mapping"]],
            })
        return results

    return run


def _encodable(text: str) -> bool:
    """Whether stdout's encoding can hold `text` (PYTHONIOENCODING=ascii cannot hold 'é')."""
    try:
        text.encode(getattr(sys.stdout, "encoding", None) or "utf-8")
    except UnicodeEncodeError:
        return False
    except LookupError:
        return True  # an encoding Python does not know: let the stream's own error say so
    return True


def _json_text(result: Any, pretty: bool) -> str:
    """Strict JSON (ValueError on NaN or infinity), escaped to ASCII when stdout needs it."""
    indent = 2 if pretty else None
    text = json.dumps(result, ensure_ascii=False, indent=indent, allow_nan=False)
    if not _encodable(text):
        text = json.dumps(result, ensure_ascii=True, indent=indent, allow_nan=False)
    return text


def _emit(text: str) -> None:
    """Write to stdout; a failure other than a vanished reader becomes OutputError."""
    try:
        if not _encodable(text):  # a text report (verify), not JSON: escape what does not fit
            encoding = sys.stdout.encoding
            text = text.encode(encoding, "backslashreplace").decode(encoding)
        sys.stdout.write(text)
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise OutputError(f"cannot write the output: {exc.strerror or exc}") from None


def _flush_stdout() -> None:
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise OutputError(f"cannot write the output: {exc.strerror or exc}") from None


def _write(result: Any, pretty: bool) -> None:
    _emit(_json_text(result, pretty) + "\n")


def _json_or_problem(result: Any, pretty: bool) -> tuple[str | None, str | None]:
    """(JSON text, None), or (None, why the result cannot be written as JSON)."""
    try:
        return _json_text(result, pretty), None
    except ValueError as exc:  # NaN or infinity: strict JSON has no spelling for them
        return None, f"the result cannot be written as JSON: {_one_line(exc)}"


class JsonLines:
    """Where results go by default: JSON on stdout, one line per input (or one indented result).

    Each line is the bare result (or {"error": ..., "line": N} for a failed input), as before jobs
    had files; with `numbered` (--id-field) it is the whole output record.
    """

    def __init__(self, pretty: bool, numbered: bool = False) -> None:
        self.pretty, self.numbered = pretty, numbered

    def problem(self, result: Any) -> str | None:
        return None

    def write(self, records: list[dict[str, Any]]) -> None:
        for record in records:
            if self.numbered:
                _emit(_json_text(record, pretty=self.pretty) + "\n")
            elif "error" in record:
                if not self.pretty:  # keep output lines aligned with input lines
                    _write({"error": record["error"], "line": record["line"]}, pretty=False)
            else:
                _emit(_json_text(record["result"], self.pretty) + "\n")
        _flush_stdout()

    def close(self) -> None:
        pass


class NpyMatrix:
    """`embed -o FILE.npy`: every input's vector as one row of an [N, D] matrix (NaN for a failure).

    The rows wait in memory until the end (a directory of shards is the corpus-sized output)."""

    def __init__(self, path: str, dtype: str) -> None:
        self.path, self.dtype = path, dtype
        self.rows: list[Any] = []  # [D] arrays, None for an input that failed
        self.width: int | None = None

    def problem(self, result: Any) -> str | None:
        from numpy_distilbert.shards import vector_problem

        return vector_problem(result, self.width, "a matrix", "a matrix of other lengths")

    def write(self, records: list[dict[str, Any]]) -> None:
        import numpy as np

        for record in records:
            if "result" in record:
                self.width = len(record["result"])
                self.rows.append(np.asarray(record["result"], dtype=self.dtype))
            else:
                self.rows.append(None)

    def close(self) -> None:
        import numpy as np

        done = [r for r in self.rows if r is not None]
        if not done:
            raise RunError(f"no vector to write to {self.path}: every input failed")
        missing = np.full_like(done[0], np.nan)
        matrix = np.stack([missing if r is None else r for r in self.rows])  # [N, D]
        try:
            with open(self.path, "wb") as stream:  # np.save to a path would append ".npy" to it
                np.save(stream, matrix, allow_pickle=False)
        except OSError as exc:
            raise OutputError(f"cannot write {self.path}: {exc.strerror or exc}") from None


def run_inputs(
    run: Callable[[list[Any]], list[Any]],
    items: Iterable[Item],
    total: int | None,
    pretty: bool,
    batch_size: int,
    progress: Progress,
    sink: Any = None,
) -> int:
    """Run `run` over the inputs in batches of `batch_size` in this process, writing one result per
    input to `sink` (default: JSON on stdout). Returns the exit status."""
    from numpy_distilbert.jobs import InProcess

    records = (item.record() for item in items)
    sink = JsonLines(pretty) if sink is None else sink
    executor = InProcess(run, on_error=_show_traceback)
    return _run_job(executor, records, _where(items, "line"), sink, batch_size, progress)


def _run_job(executor: Any, records: Iterable[Any], where: Callable[[int], str], sink: Any, batch_size: int,
             progress: Progress) -> int:
    """Batches of records through `executor`, their output records written in order to `sink`.

    A sink that can resume (a file or shard directory) first gives the lines it holds: those must be
    the input's first records, and are skipped. Returns the exit status."""
    from numpy_distilbert.jobs import JobError, ResumeError, batches, skip_finished

    failures = 0
    try:
        if hasattr(sink, "finished_lines"):
            records = skip_finished(records, sink.finished_lines(), str(getattr(sink, "path", "")),
                                    "the input")
        for outputs in executor.map(batches(records, batch_size)):
            for record in outputs:
                problem = sink.problem(record["result"]) if "result" in record else None
                if problem is not None:
                    record.pop("result")
                    record["error"] = problem
            sink.write(outputs)
            for record in outputs:
                if "error" in record:
                    failures += 1
                    report(f"{where(record['line'])}: {record['error']}")
            progress.update(len(outputs))
        progress.close()
        sink.close()
    except ResumeError as exc:
        raise UsageError(_one_line(exc)) from None
    except JobError as exc:
        raise OutputError(_one_line(exc)) from None
    finally:
        progress.close()
        executor.close()
    return EXIT_FAILED if failures else EXIT_OK


def _pipeline_runner(
    command: Command, args: argparse.Namespace, pipe: Any
) -> Callable[[list[Any]], list[Any]]:
    options = command.options(args)

    def run(values: list[Any]) -> list[Any]:
        try:
            result = pipe(values, **options)
        except Exception as exc:
            if len(values) == 1 and command.truncation_hint and not args.truncation:
                _raise_if_too_long(pipe, values[0], options.get("text_pair"), exc)
            raise
        return [command.shape(r, args) for r in command.per_item(result, len(values))]

    return run


def _raise_if_too_long(pipe: Any, value: Any, text_pair: str | None, exc: Exception) -> None:
    """A failed input that is longer than the model takes: say so, and name --truncation."""
    text, pair = (value["text"], value.get("text_pair")) if isinstance(value, dict) else (value, text_pair)
    try:
        length = len(pipe.encode(text, text_pair=pair))
    except Exception:
        return  # not a length problem: the original error stands
    if length > pipe.max_length:
        raise ValueError(
            f"the input is {length} tokens long, more than the model's {pipe.max_length}; "
            f"pass --truncation to cut long inputs"
        ) from exc


def _job_runner(command: Command, args: argparse.Namespace) -> Callable[[list[Any]], list[Any]]:
    """The loaded model (or tokenizer) of a command, as a batch function: inputs -> results."""
    if command.task is None:  # tokenize: the tokenizer only
        return _tokenize_runner(_load_tokenizer(args), args.no_special_tokens)
    if command.name == "embed" and args.pooling is None and _is_sentence_model(args):
        return _sentence_runner(_load_sentence_model(args), args.normalize)
    return _pipeline_runner(command, args, _load_pipeline(command, args))


def _model_dir(command: Command, args: argparse.Namespace) -> Any:
    """The directory the command's files are read from (for the model-changed checks)."""
    if command.task is None:
        return _tokenizer_dir(args.model, args.revision)
    from numpy_distilbert.hub import ModelNotFoundError, resolve_model

    try:
        return resolve_model(args.model, revision=args.revision)
    except ModelNotFoundError as exc:
        raise UsageError(exc) from None


# Options that say how a job runs, not what it computes: a resumed job may change them.
RUN_CONTROL_OPTIONS = frozenset({"command", "texts", "input", "output", "resume", "workers", "threads",
                                 "no_progress", "traceback", "jsonl", "argv"})


def _job_description(command: Command, args: argparse.Namespace, model_dir: Any,
                     signature: dict[str, Any], batch_size: int) -> dict[str, Any]:
    """What an output file or shard directory was made by: checked on --resume."""
    from numpy_distilbert.jobs import JOB_FORMAT

    options = {k: v for k, v in sorted(vars(args).items()) if k not in RUN_CONTROL_OPTIONS}
    return {"format": JOB_FORMAT, "command": command.name, "options": options, "batch_size": batch_size,
            "model": {"directory": str(Path(model_dir).resolve()), "files": signature}}


def _output_kind(command: Command, path: str | None) -> str:
    """"stdout", "jsonl", "npy" (embed: one matrix) or "shards" (embed: a directory)."""
    if path is None:
        return "stdout"
    if command.name != "embed":
        return "jsonl"
    suffix = Path(path).suffix.lower()
    return {".npy": "npy", ".jsonl": "jsonl", ".json": "jsonl"}.get(suffix, "shards")


def _check_job_options(command: Command, args: argparse.Namespace, kind: str) -> None:
    if args.resume and kind in ("stdout", "npy"):
        what = "-o FILE.jsonl or -o DIR" if command.name == "embed" else "-o FILE.jsonl"
        raise UsageError(f"--resume continues an output file: give {what}"
                         + (" (a .npy matrix is written whole at the end)" if kind == "npy" else ""))
    if kind in ("npy", "shards") and args.pooling == "none":
        raise UsageError("-o writes one vector per input: --pooling none gives one per token")
    if getattr(args, "shard_rows", None) is not None and kind != "shards":
        raise UsageError("--shard-rows sets the size of the shards of -o DIR")


def _run_command(command: Command, args: argparse.Namespace) -> int:
    from numpy_distilbert.jobs import JobError, ResumeError, model_signature

    if command.needs_model and not args.model:  # before any loading (or downloading) of the default model
        raise UsageError(
            f"{command.name} needs --model: {command.needs_model}; "
            f"the default model has no {command.task} head"
        )
    kind = _output_kind(command, args.output)
    _check_job_options(command, args, kind)
    items, total, pretty = _items(args, command)
    where = _where(items, f"{'stdin' if args.input == '-' else args.input} line")
    model_dir = _model_dir(command, args)
    signature = model_signature(model_dir)
    batch_size = args.batch_size or _pipeline_batch_size()
    description = _job_description(command, args, model_dir, signature, batch_size)
    args.workers = _workers(args, total, batch_size, pretty)
    executor = _executor(command, args, model_dir, signature)
    try:
        sink = _sink(kind, command, args, pretty, description, batch_size)
    except ResumeError as exc:
        executor.close()
        raise UsageError(_one_line(exc)) from None
    except JobError as exc:
        executor.close()
        raise OutputError(_one_line(exc)) from None
    except BaseException:
        executor.close()
        raise
    on_terminal = sys.stderr is not None and sys.stderr.isatty()
    enabled = not args.no_progress and on_terminal and (total is None or total > batch_size)
    progress = Progress(command.name, total, enabled)
    return _run_job(executor, (item.record() for item in items), where, sink, batch_size, progress)


def _sink(kind: str, command: Command, args: argparse.Namespace, pretty: bool, description: dict[str, Any],
          batch_size: int) -> Any:
    if kind == "stdout":
        return JsonLines(pretty, numbered=args.id_field is not None)
    if kind == "npy":
        return NpyMatrix(args.output, args.dtype)
    if kind == "jsonl":
        from numpy_distilbert.jobs import JsonLinesOutput

        return JsonLinesOutput(args.output, description, batch_size, args.resume)
    from numpy_distilbert.shards import DEFAULT_SHARD_ROWS, ShardWriter

    return ShardWriter(args.output, description, batch_size, args.shard_rows or DEFAULT_SHARD_ROWS,
                       args.resume, warn=lambda message: report(message, kind="warning"))


def _workers(args: argparse.Namespace, total: int | None, batch_size: int, pretty: bool) -> int:
    """--workers, or when left out: one per core for a long input file, else 1 (this process)."""
    from numpy_distilbert.jobs import available_cores

    if args.workers is not None:
        return int(args.workers)
    if pretty or total is None or total < AUTO_WORKERS_MIN_BATCHES * batch_size:
        return 1
    return available_cores()


def _executor(command: Command, args: argparse.Namespace, model_dir: Any, signature: dict[str, Any]) -> Any:
    """This process (one worker), or a pool of worker processes each loading the model itself."""
    from numpy_distilbert.jobs import InProcess, WorkerPool, blas_thread_environment, threads_per_worker

    if args.workers == 1:
        return InProcess(_job_runner(command, args), model_dir, signature, on_error=_show_traceback)
    threads = threads_per_worker(args.workers, args.threads)
    package_root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, **blas_thread_environment(threads),
           "PYTHONPATH": os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)}
    worker = [sys.executable, "-c", "import sys; from numpy_distilbert.cli import serve_worker; "
                                    "sys.exit(serve_worker())"]
    hello = {"argv": args.argv, "signature": signature, "tracebacks": _tracebacks}
    try:
        return WorkerPool(worker, hello, args.workers, env=env)
    except Exception as exc:
        raise RunError(f"cannot start {args.workers} workers: {_one_line(exc)}") from None


def serve_worker() -> int:
    """A worker process of `--workers N`: loads the command's model from the job's own command line,
    then answers batches on stdin/stdout (see `jobs.serve_worker`)."""
    from numpy_distilbert.jobs import serve_worker as serve

    handler = _ReportHandler(logging.WARNING)
    for name in LOGGERS:
        logging.getLogger(name).addHandler(handler)
    warnings.showwarning = _show_warning

    def load(hello: dict[str, Any]) -> tuple[Callable[[list[Any]], list[Any]], Any]:
        global _tracebacks
        _tracebacks = bool(hello.get("tracebacks"))
        return job_runner(hello["argv"])

    return serve(load, on_error=_show_traceback)


def job_runner(argv: list[str]) -> tuple[Callable[[list[Any]], list[Any]], Any]:
    """(batch function, model directory) of a command line such as ["classify", "-m", DIR, "--top-k",
    "2"]: the loaded model with the command's options, mapping a list of inputs to one result each,
    exactly as the CLI runs it. `jobs.run_records(run, records)` turns it into output records."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit:  # the usage error is on stderr already
        raise ValueError(f"not a valid command line: {' '.join(argv)}") from None
    command = COMMANDS_BY_NAME.get(args.command)
    if command is None:
        raise ValueError(f"{args.command!r} is not a command that runs over inputs")
    try:
        return _job_runner(command, args), _model_dir(command, args)
    except (UsageError, RunError) as exc:
        raise RuntimeError(_one_line(exc)) from None


def _run_verify(args: argparse.Namespace) -> int:
    from numpy_distilbert import verify

    texts = list(args.texts)
    if texts and args.input:
        raise UsageError("give either TEXT arguments or -i FILE, not both")
    if args.input:
        stream, name, _ = _open_input(args.input)
        try:
            for number, text, problem in _lines(stream, name):
                if problem is not None:
                    raise UsageError(f"{name} line {number}: {problem}")
                texts.append(text)
        finally:
            if stream is not sys.stdin.buffer:
                stream.close()
        if not texts:
            raise UsageError(f"{args.input} holds no text")
    if not texts:
        texts = [verify.DEFAULT_TEXT]
    from numpy_distilbert.hub import ModelNotFoundError, resolve_model

    try:
        path = resolve_model(args.model, revision=args.revision)
    except ModelNotFoundError as exc:
        raise UsageError(exc) from None
    try:
        result = verify.run_verification(path, texts, with_transformers=not args.no_transformers)
    except Exception as exc:
        _show_traceback(exc)
        raise RunError(f"verify failed: {_one_line(exc)}") from None
    try:
        text = _json_text(result, pretty=True) + "\n" if args.json else verify.format_report(result)
    except ValueError as exc:
        raise RunError(f"verify measured non-finite differences: {_one_line(exc)}") from None
    _emit(text)
    _flush_stdout()  # the report first: a reader gone away ends the run here, quietly
    if result["passed"] is None:
        report(verify.not_checked_reason(result), kind="warning")
        return EXIT_NOT_CHECKED
    return EXIT_OK if result["passed"] else EXIT_FAILED


# ------------------------------------------------------- sentence embeddings
# `similarity` and `search` embed with `SentenceTransformer`: a sentence-transformers directory's
# own pooling and normalisation, or mean pooling for a plain model (as sentence-transformers).
DEFAULT_TOP_K = 10
SEARCH_BLOCK_ROWS = 65536  # index rows read from disk at a time (65,536 x 384 float32: 100 MB)
INDEX_FORMAT = 1


def _add_similarity_parser(sub: Any, after: _Parser) -> None:
    p = sub.add_parser(
        "similarity",
        help="rank the lines of a file by similarity to a query (sentence embeddings)",
        description="Embed --query and every line of -i FILE (or stdin; blank lines skipped) and print "
                    "the lines best first as JSON: [{\"line\": N, \"text\": ..., \"score\": ...}]. The score "
                    "is the model's similarity function (cosine unless its "
                    "config_sentence_transformers.json names another).",
        parents=[_model_options(), after],
    )
    p.add_argument("-q", "--query", required=True, help="the text to compare every line with")
    _sentence_io_arguments(p)


def _add_search_parser(sub: Any, after: _Parser) -> None:
    p = sub.add_parser(
        "search",
        help="semantic search: embed a corpus once into an index, then find each query's best lines",
        description="Embed the lines of --corpus once into --index PATH (built when missing: PATH is a "
                    "float32 [N, D] .npy of unit vectors, with PATH.lines.npy, the corpus line of each row, "
                    "and PATH.json, what it was built from), then print, for every query, its --top-k lines "
                    "by cosine as one JSON line: {\"query\": ..., \"results\": [{\"line\", \"text\", "
                    "\"score\"}]}. The index is memory-mapped and read in blocks, never loaded whole. An "
                    "index built from another corpus or model is refused: delete it to rebuild.",
        parents=[_model_options(), after],
    )
    p.add_argument("queries", nargs="*", metavar="QUERY", help="queries (else -i FILE or stdin)")
    p.add_argument("--corpus", metavar="FILE", help="the texts to search, one per line (with --index DIR: "
                                                     "optional, adds each result's text)")
    p.add_argument("--index", required=True, metavar="PATH.npy|DIR",
                   help="the index file (built if missing), or a directory of shards written by "
                        "`embed -o DIR`, searched by cosine with the model and options that embedded it")
    p.add_argument("--block-rows", type=_positive_int, default=SEARCH_BLOCK_ROWS,
                   help=f"index rows read at a time (default: {SEARCH_BLOCK_ROWS})")
    _sentence_io_arguments(p)


def _sentence_io_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-i", "--input", metavar="FILE", help="read lines from FILE ('-' for stdin)")
    p.add_argument("--top-k", type=_non_negative_int, default=DEFAULT_TOP_K,
                   help=f"how many lines to print, best first (0: all; default: {DEFAULT_TOP_K})")
    p.add_argument("--batch-size", type=_positive_int, default=None,
                   help="texts per forward pass (default: 32)")
    p.add_argument("--jsonl", action="store_true", help="one line of JSON per result")


def _is_sentence_model(args: argparse.Namespace) -> bool:
    from numpy_distilbert.hub import ModelNotFoundError, resolve_model
    from numpy_distilbert.sentence_transformers import has_sentence_transformers_config

    try:
        return has_sentence_transformers_config(resolve_model(args.model, revision=args.revision))
    except ModelNotFoundError as exc:
        raise UsageError(exc) from None


def _load_sentence_model(args: argparse.Namespace) -> Any:
    from numpy_distilbert.hub import DEFAULT_MODEL_ID, ModelNotFoundError, resolve_model
    from numpy_distilbert.sentence_transformers import SentenceTransformer

    try:
        path = resolve_model(args.model or DEFAULT_MODEL_ID, revision=args.revision)
    except ModelNotFoundError as exc:
        raise UsageError(exc) from None
    try:
        return SentenceTransformer(path, dtype=args.dtype)
    except Exception as exc:
        _show_traceback(exc)
        raise RunError(f"cannot load the sentence embedding model from {path}: {_one_line(exc)}") from None


def _sentence_runner(model: Any, normalize: bool) -> Callable[[list[Any]], list[Any]]:
    def run(texts: list[Any]) -> list[Any]:
        return list(model.encode(texts, batch_size=len(texts), normalize_embeddings=normalize))

    return run


def _text_lines(path: str) -> Iterator[tuple[int, str]]:
    """(line number, text) of every usable line; a line that is not UTF-8 is reported and skipped."""
    stream, name, _ = _open_input(path)
    try:
        for number, text, problem in _lines(stream, name):
            if problem is not None or text is None:
                report(f"{name} line {number}: {problem}; skipped", kind="warning")
                continue
            yield number, text
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()


def _input_path(args: argparse.Namespace) -> str:
    if args.input is not None:
        return str(args.input)
    if sys.stdin is None or sys.stdin.isatty():
        raise UsageError("no input: give -i FILE, or pipe lines on stdin")
    return "-"


def _embed_in_chunks(model: Any, texts: list[str], batch_size: int) -> Any:
    """texts -> unit vectors [N, D] (cosine = dot product)."""
    return model.encode(texts, batch_size=batch_size, normalize_embeddings=True)


def _match(line: int, text: str, score: float) -> dict[str, Any]:
    return {"line": int(line), "text": text, "score": float(score)}


def _write_matches(matches: list[dict[str, Any]], jsonl: bool) -> None:
    if jsonl:
        for match in matches:
            _write(match, pretty=False)
    else:
        _write(matches, pretty=True)


def _run_similarity(args: argparse.Namespace) -> int:
    """`similarity -q QUERY -i FILE`: every line scored against the query, best first."""
    import numpy as np

    path = _input_path(args)
    numbered = list(_text_lines(path))
    if not numbered:
        raise UsageError(f"{'stdin' if path == '-' else path} holds no text to compare with the query")
    model = _load_sentence_model(args)
    batch_size = args.batch_size or _pipeline_batch_size()
    try:
        query = model.encode([args.query], batch_size=1)
        lines = model.encode([text for _, text in numbered], batch_size=batch_size)
        scores = model.similarity(query, lines)[0]  # [N]
    except Exception as exc:
        _show_traceback(exc)
        raise RunError(f"cannot embed the texts: {_one_line(exc)}") from None
    order = np.lexsort((np.arange(len(scores)), -scores))  # best first; ties in file order
    if args.top_k:
        order = order[: args.top_k]
    _write_matches([_match(numbered[i][0], numbered[i][1], scores[i]) for i in order], args.jsonl)
    return EXIT_OK


def _file_sha256(path: str) -> str:
    from numpy_distilbert.weights import file_sha256

    try:
        return file_sha256(path)
    except OSError as exc:
        raise UsageError(f"cannot read corpus file {path}: {exc.strerror or exc}") from None


def _index_files(index: str) -> tuple[str, str]:
    """(line numbers .npy, metadata .json) beside the index."""
    return index + ".lines.npy", index + ".json"


def _index_description(model: Any, corpus_sha256: str) -> dict[str, Any]:
    """What an index is valid for: the corpus's bytes and the model that embedded them."""
    pooling = None if model.pooling is None else list(model.pooling.modes)
    return {"format": INDEX_FORMAT, "corpus_sha256": corpus_sha256, "model": str(model.path.resolve()),
            "dtype": str(model.dtype), "max_seq_length": model.max_seq_length, "pooling": pooling,
            "dim": model.get_sentence_embedding_dimension()}  # fmt: skip


def _build_index(model: Any, args: argparse.Namespace, description: dict[str, Any]) -> None:
    """Embed the corpus into a memory-mapped [N, D] .npy, written beside and renamed into place."""
    import numpy as np

    numbers = [number for number, _ in _text_lines(args.corpus)]
    if not numbers:
        raise UsageError(f"{args.corpus} holds no text to index")
    lines_path, meta_path = _index_files(args.index)
    partial = args.index + ".partial"
    batch_size = args.batch_size or _pipeline_batch_size()
    chunk_size = batch_size * 32  # texts embedded per step: bounded memory for any corpus size
    try:
        matrix = np.lib.format.open_memmap(partial, mode="w+", dtype=model.dtype,
                                           shape=(len(numbers), description["dim"]))
        row, chunk = 0, []
        for _, text in _text_lines(args.corpus):
            chunk.append(text)
            if len(chunk) == chunk_size:
                matrix[row : row + len(chunk)] = _embed_in_chunks(model, chunk, batch_size)
                row, chunk = row + len(chunk), []
        if chunk:
            matrix[row : row + len(chunk)] = _embed_in_chunks(model, chunk, batch_size)
            row += len(chunk)
        if row != len(numbers):
            raise RunError(f"{args.corpus} changed while it was being indexed")
        matrix.flush()
        del matrix
        with open(lines_path, "wb") as stream:
            np.save(stream, np.asarray(numbers, dtype=np.int64), allow_pickle=False)
        with open(meta_path, "w", encoding="utf-8") as stream:
            json.dump(description | {"rows": len(numbers)}, stream, indent=2)
        os.replace(partial, args.index)  # last: an index file is only ever complete
    except OSError as exc:
        raise OutputError(f"cannot write the index {args.index}: {exc.strerror or exc}") from None
    finally:
        if os.path.exists(partial):
            os.remove(partial)


def _open_index(args: argparse.Namespace, description: dict[str, Any]) -> tuple[Any, Any]:
    """The index (memory-mapped [N, D]) and its line numbers [N], checked against `description`."""
    import numpy as np

    lines_path, meta_path = _index_files(args.index)
    try:
        with open(meta_path, encoding="utf-8") as stream:
            stored = json.load(stream)
        vectors = np.load(args.index, mmap_mode="r", allow_pickle=False)
        numbers = np.load(lines_path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise UsageError(f"index {args.index} (with {lines_path} and {meta_path}) cannot be read: "
                         f"{_one_line(exc)}; delete it to rebuild") from None
    if not isinstance(stored, dict):
        raise UsageError(f"{meta_path} is not an index description (a JSON object); delete it to rebuild")
    changed = [key for key, value in description.items() if stored.get(key) != value]
    if changed:
        what = "the corpus has changed" if "corpus_sha256" in changed else f"{', '.join(changed)} differ"
        raise UsageError(f"index {args.index} was built for something else ({what}); delete {args.index} "
                         f"to rebuild it, or pass another --index")
    rows = stored.get("rows")
    if vectors.ndim != 2 or vectors.shape != (rows, description["dim"]) or numbers.shape != (rows,) or (
        str(vectors.dtype) != description["dtype"] or numbers.dtype != np.int64
    ):
        raise UsageError(f"index {args.index}: its arrays do not match {meta_path}; delete it to rebuild")
    return vectors, numbers


def _run_search(args: argparse.Namespace) -> int:
    """`search --corpus FILE --index PATH QUERY...`: top-k lines per query from the index."""
    from numpy_distilbert.sentence_transformers import top_k_scores

    if args.queries and args.input:
        raise UsageError("give either QUERY arguments or -i FILE, not both")
    queries = list(args.queries) or [text for _, text in _text_lines(_input_path(args))]
    if not queries:
        raise UsageError("no query to search for")
    if os.path.isdir(args.index):
        return _search_shards(args, queries)
    if args.corpus is None:
        raise UsageError("--corpus FILE is needed to build or check an index file (or give --index DIR, "
                         "a directory of shards from `embed -o DIR`)")
    corpus_sha256 = _file_sha256(args.corpus)
    model = _load_sentence_model(args)
    description = _index_description(model, corpus_sha256)
    if not os.path.exists(args.index):
        _build_index(model, args, description)
    vectors, numbers = _open_index(args, description)
    k = args.top_k or len(vectors)
    batch_size = args.batch_size or _pipeline_batch_size()
    for start in range(0, len(queries), batch_size):
        batch = queries[start : start + batch_size]
        rows, scores = top_k_scores(vectors, _embed_in_chunks(model, batch, batch_size), k, args.block_rows)
        wanted = {int(numbers[r]) for r in rows.ravel()}
        texts = {number: text for number, text in _text_lines(args.corpus) if number in wanted}
        for query, query_rows, query_scores in zip(batch, rows, scores, strict=True):
            results = [_match(numbers[r], texts[int(numbers[r])], s) for r, s in zip(query_rows, query_scores,
                                                                                        strict=True)]
            _write({"query": query, "results": results}, pretty=False)
    return EXIT_OK


def _search_shards(args: argparse.Namespace, queries: list[str]) -> int:
    """`search --index DIR`: the queries embedded as the shards were, then top-k cosine over the
    memory-mapped shards, block by block."""
    import numpy as np

    from numpy_distilbert.jobs import ModelChangedError, check_model_unchanged
    from numpy_distilbert.shards import open_shards, row_lines, top_k_cosine

    try:
        shards = open_shards(args.index)
    except ValueError as exc:
        raise UsageError(_one_line(exc)) from None
    stored = shards.description
    if not isinstance(stored, dict) or stored.get("command") != "embed" or not isinstance(
            stored.get("options"), dict) or not isinstance(stored.get("model"), dict):
        raise UsageError(f"{args.index} was not written by `embed -o DIR`")
    if shards.rows == 0:
        raise UsageError(f"{args.index} holds no vectors")
    model_dir = Path(stored["model"]["directory"])
    if args.model is not None and Path(_model_dir(COMMANDS_BY_NAME["embed"], args)).resolve() != model_dir:
        raise UsageError(f"{args.index} was embedded with {model_dir}, not {args.model}: queries must be "
                         f"embedded by the same model (leave out --model to use it)")
    try:
        check_model_unchanged(model_dir, stored["model"]["files"])
    except ModelChangedError as exc:
        raise UsageError(f"{args.index}: {_one_line(exc)}") from None
    embed_args = argparse.Namespace(**(stored["options"] | {"model": str(model_dir), "revision": None}))
    run = _job_runner(COMMANDS_BY_NAME["embed"], embed_args)
    k = args.top_k or shards.rows
    batch_size = args.batch_size or _pipeline_batch_size()
    for start in range(0, len(queries), batch_size):
        batch = queries[start : start + batch_size]
        try:
            vectors = np.stack([np.asarray(v, dtype=np.float32) for v in run(batch)])  # [Q, D]
        except Exception as exc:
            _show_traceback(exc)
            raise RunError(f"cannot embed the queries: {_one_line(exc)}") from None
        rows, scores = top_k_cosine(shards.vectors, vectors, k, args.block_rows)
        lines = row_lines(shards, rows)  # [Q, k]
        wanted = {int(n) for n in lines.ravel()}
        texts = {} if args.corpus is None else {
            n: text for n, text in _text_lines(args.corpus) if n in wanted}
        for query, query_lines, query_scores in zip(batch, lines, scores, strict=True):
            results = []
            for line, score in zip(query_lines, query_scores, strict=True):
                match: dict[str, Any] = {"line": int(line), "score": float(score)}
                if args.corpus is not None:
                    match["text"] = texts.get(int(line))
                results.append(match)
            _write({"query": query, "results": results}, pretty=False)
    return EXIT_OK


SENTENCE_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "similarity": _run_similarity,
    "search": _run_search,
}


def _run_finetune(args: argparse.Namespace) -> int:
    """`finetune`: bad data or options are usage errors (2); a model that cannot train, a run error (1)."""
    from numpy_distilbert.config import ConfigError
    from numpy_distilbert.hub import ModelNotFoundError
    from numpy_distilbert.weights import CheckpointError

    def log(line: str) -> None:
        _clear_progress()
        _to_stderr(line + "\n")

    try:
        summary = finetune.run(args, log=log)
    except (finetune.DataError, ModelNotFoundError) as exc:
        raise UsageError(exc) from None
    except (CheckpointError, ConfigError) as exc:
        _show_traceback(exc)
        raise RunError(f"cannot load the model to fine-tune: {_one_line(exc)}") from None
    except ValueError as exc:  # an option out of range (learning rate, epochs...)
        _show_traceback(exc)
        raise UsageError(exc) from None
    except (OSError, FloatingPointError) as exc:
        _show_traceback(exc)
        raise RunError(f"finetune failed: {_one_line(exc)}") from None
    _write(summary, pretty=True)
    return EXIT_OK


def _run_distill(args: argparse.Namespace) -> int:
    """`distill`: bad options, files or a run in OUT started otherwise are usage errors (2); a
    teacher that cannot be used, a run error (1)."""
    from numpy_distilbert.config import ConfigError
    from numpy_distilbert.distill_cli import run_distill
    from numpy_distilbert.hub import ModelNotFoundError
    from numpy_distilbert.weights import CheckpointError

    def show(text: str, redraw: bool) -> None:
        global _progress_line
        if redraw:
            _to_stderr(f"\r{text}\033[K")
            _progress_line = True
        else:
            _clear_progress()
            _to_stderr(text + "\n")

    try:
        summary = run_distill(args, show)
    except (CheckpointError, ConfigError) as exc:
        _show_traceback(exc)
        raise RunError(_one_line(exc)) from None
    except (ModelNotFoundError, ValueError) as exc:  # DistillUsageError, bad layers, other options
        raise UsageError(_one_line(exc)) from None
    finally:
        _clear_progress()
    _write(summary, pretty=True)
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Entry point of `numpy-distilbert` and `python -m numpy_distilbert`. Returns the exit status."""
    global _tracebacks
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # what a worker process parses again
    _set_blas_threads(args)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    # Warnings as one line each while the command runs; a caller's own handler comes back after
    # (main may be called in-process, e.g. by tests or a script).
    saved = warnings.showwarning, _tracebacks
    warnings.showwarning = _show_warning
    _tracebacks = _traceback_wanted(args.traceback)
    handler = _ReportHandler(logging.WARNING)
    for name in LOGGERS:
        logging.getLogger(name).addHandler(handler)
    try:
        return _main(args)
    finally:
        warnings.showwarning, _tracebacks = saved
        for name in LOGGERS:
            logging.getLogger(name).removeHandler(handler)


def _set_blas_threads(args: argparse.Namespace) -> None:
    """--threads for this process: BLAS reads its thread count once, when numpy is first imported."""
    threads = getattr(args, "threads", None)
    if threads is None:
        return  # (workers get theirs in their own environment, overriding this process's)
    if "numpy" in sys.modules:
        report("--threads has no effect here: numpy was imported before the command ran", kind="warning")
        return
    from numpy_distilbert.jobs import blas_thread_environment

    os.environ.update(blas_thread_environment(threads))


def _main(args: argparse.Namespace) -> int:
    if sys.stdout is None:  # started with `>&-`: say so before any work is done
        report("standard output is closed: there is nowhere to write the results")
        return EXIT_FAILED
    try:
        if args.command == "verify":
            status = _run_verify(args)
        elif args.command in SENTENCE_COMMANDS:
            status = SENTENCE_COMMANDS[args.command](args)
        elif args.command == "finetune":
            status = _run_finetune(args)
        elif args.command == "distill":
            status = _run_distill(args)
        else:
            status = _run_command(COMMANDS_BY_NAME[args.command], args)
        _flush_stdout()  # inside the try: a failed write must not surface at interpreter exit
        return status
    except UsageError as exc:
        report(_one_line(exc))
        return EXIT_USAGE
    except OutputError as exc:
        report(_one_line(exc))
        _discard_stdout()
        return EXIT_FAILED
    except RunError as exc:
        report(_one_line(exc))
        return EXIT_FAILED
    except KeyboardInterrupt:
        report("interrupted")
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): stop quietly, as Unix tools do.
        _discard_stdout()
        return EXIT_FAILED
    except Exception as exc:  # a bug: one line (the traceback with --traceback), a failed run's status
        _show_traceback(exc)
        hint = "" if _tracebacks else f"; rerun with --traceback (or {TRACEBACK_ENV}=1) to see where"
        report(f"internal error ({type(exc).__name__}): {_one_line(exc)}{hint}")
        return EXIT_FAILED


def _discard_stdout() -> None:
    """Point stdout at /dev/null, so that Python's flush at exit finds nothing to fail on.

    (The handling the Python documentation recommends for SIGPIPE / BrokenPipeError.)
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


if __name__ == "__main__":
    sys.exit(main())
