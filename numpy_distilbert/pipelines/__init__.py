"""`pipeline(task, model=...)`: transformers-style pipelines on the NumPy model.

    from numpy_distilbert import pipeline
    unmasker = pipeline("fill-mask")                       # the default model id, from the HF cache
    unmasker("Hello I'm a [MASK] model.")

Pipeline classes are imported only when a task is asked for, so `import numpy_distilbert`
stays fast and a task's module is loaded only by those who use it.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import numpy as np

# task -> "module:Class". Aliases are the names transformers also accepts.
SUPPORTED_TASKS: dict[str, str] = {
    "feature-extraction": "numpy_distilbert.pipelines.feature_extraction:FeatureExtractionPipeline",
    "fill-mask": "numpy_distilbert.pipelines.fill_mask:FillMaskPipeline",
    "question-answering": "numpy_distilbert.pipelines.question_answering:QuestionAnsweringPipeline",
    "text-classification": "numpy_distilbert.pipelines.text_classification:TextClassificationPipeline",
    "token-classification": "numpy_distilbert.pipelines.token_classification:TokenClassificationPipeline",
    "zero-shot-classification": "numpy_distilbert.pipelines.zero_shot:ZeroShotClassificationPipeline",
}
TASK_ALIASES: dict[str, str] = {
    "ner": "token-classification",
    "sentiment-analysis": "text-classification",
}
SUPPORTED_TASKS.update({alias: SUPPORTED_TASKS[task] for alias, task in TASK_ALIASES.items()})


def pipeline_class(task: str) -> type[Any]:
    """The pipeline class for `task` (or an alias), imported on demand."""
    if task not in SUPPORTED_TASKS:
        raise KeyError(
            f"unknown task {task!r}; supported tasks: {', '.join(sorted(SUPPORTED_TASKS))}"
        )
    module_name, _, class_name = SUPPORTED_TASKS[task].partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def pipeline(
    task: str,
    model: str | Path | None = None,
    tokenizer: Any = None,
    dtype: Any = np.float32,
    revision: str | None = None,
    mmap: bool = True,
    **options: Any,
) -> Any:
    """Build the pipeline for `task` on `model`: a local directory, or a model id found in the
    Hugging Face cache (downloaded when `huggingface_hub` is installed); None means
    `hub.DEFAULT_MODEL_ID`. `tokenizer` is a loaded tokenizer or a directory (default: the
    model's, or a model id). `mmap=False` copies the weights into memory instead of mapping
    the file (see `DistilBertModel.from_pretrained`). Other keyword arguments become the
    pipeline's default options.
    """
    from numpy_distilbert.hub import resolve_model, resolve_tokenizer

    if not isinstance(task, str):
        raise TypeError(f"task must be a string, got {type(task).__name__}")
    cls = pipeline_class(task)
    path = resolve_model(model, revision=revision)
    if isinstance(tokenizer, (str, Path)) and not Path(tokenizer).expanduser().is_dir():
        tokenizer = resolve_tokenizer(tokenizer, revision=revision)
    return cls.from_pretrained(path, dtype=dtype, tokenizer=tokenizer, mmap=mmap, **options)


__all__ = ["SUPPORTED_TASKS", "TASK_ALIASES", "pipeline", "pipeline_class"]
