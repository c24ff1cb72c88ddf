"""CIDEr-D of decoded captions against reference paraphrases, with coco-caption's scorer.

Scorer: pycocoevalcap 1.2's `pycocoevalcap.cider.cider.Cider`, the coco-caption implementation the
captioning literature reports as "CIDEr" (and the VL-JEPA paper uses): despite its class name it is
CIDEr-D (Vedantam et al., 2015): 1-4-gram TF-IDF vectors, the hypothesis' n-gram weights clipped to
the reference's (min(hyp, ref)), a Gaussian length penalty with sigma = 6, averaged over the
references and scaled by 10. Scores are on that scale (0 to about 10), not multiplied by 100.

IDF is corpus-dependent: it is computed over the references of the evaluated set itself (every
scored item's references; here one item per labelled time step, so a long segment weighs more), as
coco-caption does. Scores are therefore comparable between methods on the same stream, not across
streams.

Tokenization: coco-caption runs the Java PTBTokenizer first; Java is not available here, so both
hypotheses and references go through caption_tokens(): Unicode NFKC, lower-case, punctuation
characters removed, split on whitespace.
"""
from __future__ import annotations

import unicodedata
from collections.abc import Hashable, Iterable, Sequence

import numpy as np

from pycocoevalcap.cider.cider import Cider

TOKENIZATION = ("NFKC, lower-case, Unicode punctuation removed, whitespace split "
                "(a Python stand-in for coco-caption's Java PTBTokenizer)")
SCORER = ("pycocoevalcap 1.2 Cider (coco-caption CIDEr-D: n=1..4, clipped TF-IDF, Gaussian length penalty "
          "sigma=6, x10); IDF over the references of the evaluated steps")


def caption_tokens(text: str) -> str:
    """The text as space-separated tokens, ready for the scorer."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = "".join(char for char in text if not unicodedata.category(char).startswith("P"))
    return " ".join(text.split())


def cider_d(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> tuple[float, list[float]]:
    """(corpus CIDEr-D, per-item scores) of one hypothesis per item against that item's references.

    Items with no reference are skipped (their score is NaN); an empty hypothesis scores 0.
    """
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} reference lists")
    kept = [index for index, refs in enumerate(references) if refs]
    per_item = [float("nan")] * len(hypotheses)
    if not kept:
        return float("nan"), per_item
    # The scorer asserts n-gram document frequencies <= item count; with one item its IDF is log(1) = 0.
    gts = {index: [caption_tokens(ref) for ref in references[index]] for index in kept}
    res = {index: [caption_tokens(hypotheses[index])] for index in kept}
    corpus, scores = Cider().compute_score(gts, res)
    for index, score in zip(gts, scores):
        per_item[index] = float(score)
    return float(corpus), per_item


class StepCaptionScorer:
    """Corpus CIDEr-D of many decodings of one stream: one item per labelled time step.

    The references (hence the IDF) are fixed, so a step's score depends only on its shown text and on
    which segment's references it is scored against; those scores are cached, and the scorer is only
    run (over every step, keeping the IDF exact) when a decoding shows a text a segment has not met yet.
    `prefetch` scores the new texts of many decodings together: each scorer run holds as many new
    (segment, text) pairs as the segment has steps, so a sweep of hundreds of decodings costs a few runs.
    """

    def __init__(self, references: Sequence[Sequence[str]], reference_keys: Sequence[Hashable]) -> None:
        if len(references) != len(reference_keys):
            raise ValueError(f"{len(references)} reference lists but {len(reference_keys)} keys")
        self.references = [list(refs) for refs in references]
        self.keys = list(reference_keys)
        self.labelled = [index for index, refs in enumerate(self.references) if refs]
        self.cache: dict[tuple[Hashable, str], float] = {}

    def prefetch(self, decodings: Iterable[Sequence[str]]) -> None:
        """Cache the score of every (segment, text) pair the decodings (one text per step each) show."""
        unscored: dict[Hashable, set[str]] = {}
        for hypotheses in decodings:
            if len(hypotheses) != len(self.references):
                raise ValueError(f"{len(hypotheses)} hypotheses for {len(self.references)} steps")
            for index in self.labelled:
                if (self.keys[index], hypotheses[index]) not in self.cache:
                    unscored.setdefault(self.keys[index], set()).add(hypotheses[index])
        missing = {key: sorted(texts) for key, texts in unscored.items()}
        steps_of: dict[Hashable, list[int]] = {}
        for index in self.labelled:
            steps_of.setdefault(self.keys[index], []).append(index)
        while any(missing.values()):
            # One run: a step of each segment carries one of the segment's unscored texts ('' where none is left).
            hypotheses, placed = [""] * len(self.references), []
            for key, texts in missing.items():
                for index in steps_of[key][:len(texts)]:
                    hypotheses[index] = texts.pop()
                    placed.append(index)
            _, per_step = cider_d(hypotheses, self.references)
            self.cache.update({(self.keys[index], hypotheses[index]): per_step[index] for index in placed})

    def step_scores(self, texts: Sequence[str]) -> np.ndarray:
        """(steps, texts): the CIDEr-D each text earns when shown at each step; NaN at unlabelled steps.

        The mean of a column over the labelled steps is score() of that text shown everywhere.
        """
        self.prefetch([text] * len(self.references) for text in texts)
        scores = np.full((len(self.references), len(texts)), np.nan)
        for index in self.labelled:
            scores[index] = [self.cache[(self.keys[index], text)] for text in texts]
        return scores

    def score(self, hypotheses: Sequence[str]) -> float:
        """Mean CIDEr-D over the labelled steps (what coco-caption reports for the corpus); NaN if none."""
        if len(hypotheses) != len(self.references):
            raise ValueError(f"{len(hypotheses)} hypotheses for {len(self.references)} steps")
        if not self.labelled:
            return float("nan")
        pairs = [(self.keys[index], hypotheses[index]) for index in self.labelled]
        if any(pair not in self.cache for pair in pairs):
            _, per_step = cider_d(hypotheses, self.references)
            self.cache.update({pair: per_step[index] for pair, index in zip(pairs, self.labelled)})
        return float(np.mean([self.cache[pair] for pair in pairs]))
