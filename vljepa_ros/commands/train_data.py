"""The training data of `vljepa-ros train --data`: one source, or several mixed with weights.

    --data tabletop                              examples generated on the fly (training seeds)
    --data data/mw.npz                           a .npz of `make-data --examples` (or `--from-bag`)
    --data data/shards                           WebDataset shards of `make-data --shards`
    --data tabletop=0.5 data/mw.npz=0.5          a weighted mixture (world/training_source.MixtureSource)

A single source without a weight is used exactly as before mixtures existed (same RNG order). Each source
brings its texts: the tokenizer corpus (queries + answers, for a model built from scratch), the answers
bank (banks/answers.txt: the union of every source's answers) and deployment banks (banks/labels.txt,
captions.txt, actions.txt): tabletop's own banks, and for .npz / shard sources the examples' texts
(labels and captions: the caption examples' answers; actions: the action examples' answers and
distractors). Shards record no kinds in texts.json, so they add to the answers bank only.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field

DEPLOYMENT_BANKS = ("labels", "captions", "actions")


@dataclass
class DataSource:
    """One --data entry, loaded: the example source and the texts it contributes."""

    spec: str
    weight: float | None
    source: object
    corpus: list[str]  # in the order single-source training has always used (tokenizer training input)
    answers: set[str]
    banks: dict[str, set[str]] = field(default_factory=lambda: {name: set() for name in DEPLOYMENT_BANKS})


def kind_weights_arg(text: str) -> dict[str, float]:
    """argparse type of --kind-weights: "caption=0.5,qa=0.25,action=0.25"."""
    from vljepa_ros.world.types import EXAMPLE_KINDS

    weights = {}
    for part in text.split(","):
        kind, _, value = part.partition("=")
        try:
            weights[kind.strip()] = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{part!r} is not KIND=WEIGHT") from None
    unknown = set(weights) - set(EXAMPLE_KINDS)
    if unknown or not weights or min(weights.values()) < 0 or sum(weights.values()) <= 0:
        raise argparse.ArgumentTypeError(f"kind weights need kinds from {list(EXAMPLE_KINDS)} with non-negative "
                                         f"weights and a positive sum, got {text!r}")
    return weights


def split_spec(text: str) -> tuple[str, float | None]:
    """"data/mw.npz=0.4" -> ("data/mw.npz", 0.4); without a numeric "=W" suffix the weight is None."""
    spec, separator, value = text.rpartition("=")
    if not separator:
        return text, None
    try:
        weight = float(value)
    except ValueError:
        return text, None  # a path that happens to contain "="
    if not spec or not weight > 0:
        raise SystemExit(f"--data {text!r}: a source's weight must be a positive number (SOURCE=WEIGHT)")
    return spec, weight


def _tabletop(args: argparse.Namespace, config, weight: float | None) -> DataSource:
    from vljepa_ros.world import dataset, tabletop
    from vljepa_ros.world.training_source import TabletopSource

    source = TabletopSource(config.frames_per_clip, config.image_size, seed=args.seed, kind_weights=args.kind_weights)
    corpus = dataset.text_corpus()
    queries = set(tabletop.QUESTIONS.values()) | {dataset.CAPTION_QUERY, dataset.ACTION_QUERY}
    banks = {name: set(texts) for name, texts in tabletop.deployment_banks().items()}
    return DataSource("tabletop", weight, source, corpus, set(corpus) - queries, banks)


def _examples_file(args: argparse.Namespace, spec: str, weight: float | None) -> DataSource:
    from vljepa_ros.model.training import ListSource
    from vljepa_ros.world import dataset

    examples = dataset.load_examples(spec)
    answers = {e.answer for e in examples}
    banks = {"labels": {e.answer for e in examples if e.kind == "caption"},
             "actions": {text for e in examples if e.kind == "action" for text in (e.answer, *e.negatives)}}
    banks["captions"] = set(banks["labels"])
    corpus = sorted(answers) + sorted({e.query for e in examples})
    return DataSource(spec, weight, ListSource(examples, seed=args.seed), corpus, answers, banks)


def _shards(args: argparse.Namespace, spec: str, weight: float | None) -> DataSource:
    from vljepa_ros.world import shards

    urls = shards.shard_urls(spec)
    answers, queries = shards.shard_texts(urls)
    source = shards.ShardSource(urls, seed=args.seed, workers=args.data_workers)
    return DataSource(spec, weight, source, answers + queries, set(answers))


def load_one(args: argparse.Namespace, config, text: str) -> DataSource:
    from vljepa_ros.world import shards

    spec, weight = split_spec(text)
    if spec == "tabletop":
        return _tabletop(args, config, weight)
    if shards.is_shard_spec(spec):
        return _shards(args, spec, weight)
    return _examples_file(args, spec, weight)


@dataclass
class TrainingData:
    source: object
    corpus: list[str]  # texts the tokenizer of a from-scratch model is built on
    answers: list[str]  # banks/answers.txt
    banks: dict[str, list[str]]  # deployment banks (empty when no source knows any)
    parts: list[DataSource]


def load_data(args: argparse.Namespace, config) -> TrainingData:
    """The --data sources (one, or a weighted mixture) and their texts."""
    from vljepa_ros.world.training_source import MixtureSource

    texts = list(args.data)
    if not any(split_spec(text)[0] == "tabletop" for text in texts) and args.kind_weights:
        raise SystemExit("--kind-weights applies to the tabletop source; an examples file has its mix already")
    parts = [load_one(args, config, text) for text in texts]
    specs = [part.spec for part in parts]
    if len(set(specs)) != len(specs):
        raise SystemExit(f"--data names a source twice: {specs}")
    if len(parts) == 1:
        source, corpus = parts[0].source, parts[0].corpus
    else:
        if any(part.weight is None for part in parts):
            raise SystemExit("--data with several sources needs a weight on each: SOURCE=WEIGHT ...")
        source = MixtureSource([part.source for part in parts], [part.weight for part in parts], seed=args.seed)
        corpus = sorted(set().union(*(part.corpus for part in parts)))
    answers = sorted(set().union(*(part.answers for part in parts)))
    banks = {name: sorted(set().union(*(part.banks[name] for part in parts))) for name in DEPLOYMENT_BANKS}
    return TrainingData(source, corpus, answers, {k: v for k, v in banks.items() if v}, parts)
