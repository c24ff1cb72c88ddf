"""Training and evaluation examples (clip, query, answer) drawn from tabletop streams.

Seeds split the data: training uses seeds below HELD_OUT_SEED_START, evaluation and the demo bag use seeds at or
above it. Episodes are seeded by (seed, episode index), so two different seeds never share an episode.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from vljepa_ros.stream.clips import ACTION_QUERY, CAPTION_QUERY, make_action_clip
from vljepa_ros.world import tabletop
from vljepa_ros.world.types import EXAMPLE_KINDS, HELD_OUT_SEED_START, Example, WorldDataError, WorldStream

DEMO_SEED = HELD_OUT_SEED_START  # data/demo_tabletop
DEFAULT_KIND_WEIGHTS = {"caption": 0.5, "qa": 0.25, "action": 0.25}
_EPISODES_PER_CHUNK = 8
_EXAMPLES_PER_SEGMENT = 2  # examples drawn per segment of a chunk: many scenes, few clips each
_NEGATIVES_SEPARATOR = "\n"  # joins an example's negatives in a saved .npz; texts are single lines


def is_held_out_seed(seed: int) -> bool:
    return seed >= HELD_OUT_SEED_START


def sample_clip_indices(rng: np.random.Generator, start: int, end: int, frames_per_clip: int) -> np.ndarray:
    """frames_per_clip consecutive frame indices inside [start, end); spread uniformly when the span is shorter."""
    length = end - start
    if length >= frames_per_clip:
        first = start + int(rng.integers(0, length - frames_per_clip + 1))
        return np.arange(first, first + frames_per_clip)
    return np.round(np.linspace(start, end - 1, frames_per_clip)).astype(np.int64)


def streaming_clip_indices(rng: np.random.Generator, start: int, end: int, frames_per_clip: int) -> np.ndarray:
    """The frames_per_clip consecutive indices ending at a random frame of [start, end): the clip the perception
    node cuts at that moment, earlier segments' frames included (the stream's first frame repeats before it)."""
    last = int(rng.integers(start, end))
    return np.maximum(np.arange(last - frames_per_clip + 1, last + 1), 0)


def examples_from_stream(
    stream: WorldStream,
    rng: np.random.Generator,
    count: int,
    frames_per_clip: int,
    kind_weights: dict[str, float] = DEFAULT_KIND_WEIGHTS,
    streaming_share: float = 0.0,
) -> list[Example]:
    """`count` examples from one stream, each kind drawn with `kind_weights`, segments drawn uniformly.

    A `streaming_share` of the caption and Q&A clips end inside their segment (streaming_clip_indices) instead
    of lying inside it: what a live stream shows around a boundary, where the ground truth is the segment of
    the clip's last frame; segments shorter than a clip are otherwise only ever seen with repeated frames.
    """
    if not 0.0 <= streaming_share <= 1.0:
        raise WorldDataError(f"streaming_share must be in [0, 1], got {streaming_share}")
    unknown = set(kind_weights) - set(EXAMPLE_KINDS)
    if unknown:
        raise WorldDataError(f"unknown example kinds {sorted(unknown)}; expected a subset of {EXAMPLE_KINDS}")
    if not stream.segments:
        raise WorldDataError(f"stream {stream.name!r} has no ground-truth segments to draw examples from")
    kinds = list(kind_weights)
    probabilities = np.array([kind_weights[k] for k in kinds], dtype=np.float64)
    probabilities /= probabilities.sum()
    examples: list[Example] = []
    for _ in range(count):
        kind = kinds[int(rng.choice(len(kinds), p=probabilities))]
        segment_index = int(rng.integers(len(stream.segments)))
        segment = stream.segments[segment_index]
        if kind == "action" and stream.action_items:
            # tabletop streams have one item per segment; other worlds may have fewer, so draw one at random
            aligned = len(stream.action_items) == len(stream.segments)
            item = stream.action_items[segment_index if aligned else int(rng.integers(len(stream.action_items)))]
            clip = make_action_clip(stream.frames[item.before_index], stream.frames[item.after_index], frames_per_clip)
            distractors = tuple(text for text in item.candidates if text != item.action)
            examples.append(Example(clip, ACTION_QUERY, item.action, kind, negatives=distractors))
            continue
        # no draw at share 0, so streams drawn before the option existed draw the same examples
        streaming = streaming_share > 0 and rng.random() < streaming_share
        cut = streaming_clip_indices if streaming else sample_clip_indices
        clip = stream.frames[cut(rng, segment.start_index, segment.end_index, frames_per_clip)]
        if kind != "qa" or not segment.qa_pairs:  # worlds without Q&A or action items fall back to captions
            caption = segment.captions[int(rng.integers(len(segment.captions)))]
            examples.append(Example(clip, CAPTION_QUERY, caption, "caption", negatives=segment.confusable_labels,
                                    answer_class=segment.label))
        else:
            question, answer = segment.qa_pairs[int(rng.integers(len(segment.qa_pairs)))]
            examples.append(Example(clip, question, answer, "qa"))
    return examples


def generate_examples(
    seed: int,
    count: int,
    frames_per_clip: int,
    image_size: int = tabletop.DEFAULT_IMAGE_SIZE,
    fps: float = tabletop.DEFAULT_FPS,
    kind_weights: dict[str, float] = DEFAULT_KIND_WEIGHTS,
) -> list[Example]:
    """`count` examples from the tabletop episodes of `seed`, rendered in chunks to bound memory.

    Use seeds below HELD_OUT_SEED_START for training and seeds at or above it for evaluation.
    """
    return list(iter_examples(seed, count, frames_per_clip, image_size, fps, kind_weights))


def iter_examples(
    seed: int,
    count: int,
    frames_per_clip: int,
    image_size: int = tabletop.DEFAULT_IMAGE_SIZE,
    fps: float = tabletop.DEFAULT_FPS,
    kind_weights: dict[str, float] = DEFAULT_KIND_WEIGHTS,
) -> Iterator[Example]:
    """generate_examples one chunk of episodes at a time (the same examples), for data sets beyond memory."""
    if count < 0 or frames_per_clip < 2:
        raise WorldDataError(f"need count >= 0 and frames_per_clip >= 2, got count={count}, frames_per_clip={frames_per_clip}")
    unknown = set(kind_weights) - set(EXAMPLE_KINDS)
    if unknown:  # checked before any rendering
        raise WorldDataError(f"unknown example kinds {sorted(unknown)}; expected a subset of {EXAMPLE_KINDS}")
    rng = np.random.default_rng([seed, 0xDA7A])
    produced = 0
    first_episode = 0
    while produced < count:
        stream = tabletop.generate_stream(seed, _EPISODES_PER_CHUNK, fps=fps, image_size=image_size,
                                          first_episode=first_episode)
        first_episode += _EPISODES_PER_CHUNK
        wanted = min(count - produced, _EXAMPLES_PER_SEGMENT * len(stream.segments))
        produced += wanted
        yield from examples_from_stream(stream, rng, wanted, frames_per_clip, kind_weights)


def save_examples(path: str | Path, examples: list[Example]) -> None:
    """One compressed .npz: frames (N,T,H,W,3) uint8 and the texts as unicode arrays (no pickle)."""
    if not examples:
        raise WorldDataError("no examples to save")
    shapes = {e.frames.shape for e in examples}
    if len(shapes) != 1:
        raise WorldDataError(f"all clips must share one shape to be saved together, got {sorted(shapes)}")
    np.savez_compressed(
        Path(path),
        frames=np.stack([e.frames for e in examples]).astype(np.uint8),
        queries=np.array([e.query for e in examples]),
        answers=np.array([e.answer for e in examples]),
        kinds=np.array([e.kind for e in examples]),
        negatives=np.array([_NEGATIVES_SEPARATOR.join(e.negatives) for e in examples]),
        answer_classes=np.array([getattr(e, "answer_class", "") for e in examples]),
    )


def load_examples(path: str | Path) -> list[Example]:
    path = Path(path)
    if not path.is_file():
        raise WorldDataError(f"examples file {path} does not exist")
    with np.load(path, allow_pickle=False) as data:
        missing = {"frames", "queries", "answers", "kinds"} - set(data.files)
        if missing:
            raise WorldDataError(f"examples file {path} lacks arrays {sorted(missing)}")
        frames = data["frames"]
        # files written before hard negatives (or answer classes) existed lack those arrays
        negatives = data["negatives"] if "negatives" in data.files else np.full(len(frames), "")
        classes = data["answer_classes"] if "answer_classes" in data.files else np.full(len(frames), "")
        return [
            Example(frames[i], str(q), str(a), str(k), negatives=tuple(filter(None, str(n).split(_NEGATIVES_SEPARATOR))),
                    answer_class=str(c))
            for i, (q, a, k, n, c) in enumerate(zip(data["queries"], data["answers"], data["kinds"], negatives, classes))
        ]


def text_corpus() -> list[str]:
    """Every query and answer text the examples can contain (for building a word tokenizer)."""
    return sorted(set(tabletop.world_texts()) | {CAPTION_QUERY, ACTION_QUERY})
