"""zero-shot-classification with an NLI model, as transformers' ZeroShotClassificationPipeline.

Each candidate label becomes a hypothesis (`hypothesis_template.format(label)`, default
"This example is {}.") paired with the input as premise; the NLI head scores every pair.

* `multi_label=False`: the entailment logits of one input's pairs are softmaxed across
  the labels (scores sum to 1);
* `multi_label=True` (or a single label): each label on its own, softmax of its
  entailment logit against its contradiction logit.

    pipe("Angela Merkel ist eine Politikerin.", candidate_labels=["politics", "sport"])
    -> {"sequence": "Angela Merkel ...", "labels": ["politics", "sport"], "scores": [0.9, 0.1]}

The entailment label is the first of `config.label2id` starting with "entail" (any case);
a model without one is refused (transformers would warn and use the last label). The
contradiction label is the one starting with "contradict", else transformers' rule (the
first label, or the last when entailment is the first). Premises too long for the model
are truncated; hypotheses never are.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from numpy_distilbert._checks import comma_list
from numpy_distilbert.heads import DistilBertForSequenceClassification
from numpy_distilbert.pipelines.base import (
    Pipeline,
    check_finite,
    check_texts,
    nth_input,
    run_batched,
    softmax,
)


def parse_labels(labels: Any) -> list[str]:
    """A list of labels, or one string of comma-separated labels."""
    if isinstance(labels, str):
        labels = comma_list(labels)
    if not isinstance(labels, (list, tuple)) or not all(isinstance(label, str) for label in labels):
        raise TypeError("candidate_labels must be a string (comma-separated) or a list of strings")
    return list(labels)


class ZeroShotClassificationPipeline(Pipeline):
    model_class = DistilBertForSequenceClassification
    task = "zero-shot-classification"
    default_options: ClassVar[dict[str, Any]] = {
        "candidate_labels": None,
        "hypothesis_template": "This example is {}.",
        "multi_label": False,
    }

    def _collect_inputs(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[list[Any], bool]:
        """One text (-> a dict) or a list of texts (-> a list of dicts); the candidate labels may
        come as the second positional argument."""
        if len(args) == 2 and "candidate_labels" not in kwargs:
            kwargs["candidate_labels"] = args[1]
            args = args[:1]
        elif len(args) > 1:
            raise TypeError(f"unexpected positional arguments {args[1:]!r}; pass candidate_labels=...")
        return super()._collect_inputs(args, kwargs)

    def _label_ids(self) -> tuple[int, int]:
        """(entailment id, contradiction id) from the model's label2id."""
        label2id = self.model.config.label2id
        entailment = next((i for label, i in label2id.items() if label.lower().startswith("entail")), None)
        if entailment is None:
            raise ValueError(
                f"zero-shot classification needs an NLI model whose config.json label2id has an "
                f"'entailment' label; this one has {sorted(label2id)}"
            )
        contradiction = next(
            (i for label, i in label2id.items() if label.lower().startswith("contradict")), None
        )
        if contradiction is None:
            contradiction = self.model.config.num_labels - 1 if entailment == 0 else 0
        return entailment, contradiction

    def _run(
        self,
        items: list[Any],
        batch_size: int,
        candidate_labels: Any,
        hypothesis_template: str,
        multi_label: bool,
    ) -> list[dict[str, Any]]:
        texts = check_texts(items)
        labels = parse_labels(candidate_labels if candidate_labels is not None else [])
        if not labels:
            raise ValueError("You must include at least one label (candidate_labels=[...]).")
        if not isinstance(hypothesis_template, str):
            raise TypeError("hypothesis_template must be a string with a {} for the label")
        if hypothesis_template.format(labels[0]) == hypothesis_template:
            raise ValueError(
                f"hypothesis_template {hypothesis_template!r} has no place for the label; include {{}} "
                f"where it should go, e.g. 'This example is {{}}.'"
            )
        entailment, contradiction = self._label_ids()
        hypotheses = [hypothesis_template.format(label) for label in labels]
        pairs = [self._encode(text, hypothesis) for text in texts for hypothesis in hypotheses]
        rows = run_batched(
            [ids for ids, _ in pairs], batch_size, self.tokenizer.pad_token_id,
            lambda ids, mask, types: self.model(ids, mask, types).logits,
            token_types=[types for _, types in pairs],
        )  # fmt: skip
        logits = np.asarray(rows, dtype=np.float64).reshape(len(texts), len(labels), -1)  # [S, N, C]
        for i, per_label in enumerate(logits):
            check_finite(per_label, "logits", nth_input(i, len(texts)))  # [N labels, C classes]
        if multi_label or len(labels) == 1:
            # Each label alone: entailment against contradiction.
            scores = softmax(logits[..., [contradiction, entailment]])[..., 1]  # [S, N]
        else:
            # The labels compete: entailment logits across labels.
            scores = softmax(logits[..., entailment])  # [S, N]
        results = []
        for text, row in zip(texts, scores, strict=True):
            order = np.argsort(-row, kind="stable")  # best first; ties keep the labels' order
            results.append({
                "sequence": text,
                "labels": [labels[i] for i in order],
                "scores": [float(row[i]) for i in order],
            })  # fmt: skip
        return results

    def _encode(self, premise: str, hypothesis: str) -> tuple[list[int], list[int]]:
        """[CLS] premise [SEP] hypothesis [SEP] (token types 0, then 1 for BERT), the premise
        truncated when the pair is too long."""
        try:
            return self.encode_with_types(premise, text_pair=hypothesis, truncation="only_first")
        except ValueError:
            # The hypothesis alone leaves no room for truncating the premise (transformers then
            # does not truncate either); an over-long pair fails in the model with a clear message.
            return self.encode_with_types(premise, text_pair=hypothesis)
