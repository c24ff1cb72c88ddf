"""A first-draft annotation of a bag from the model itself, for a person to correct (`vljepa-ros annotate`).

The bag's frames go through the same offline path as `eval` (embed_stream: the perception node's clips);
the embedding stream is segmented as selective decoding does (Ward under temporal connectivity, or the
monitor node's online shift detector); each segment's mean embedding is decoded to text (the model's
generative prefix decoder when it has one, else the nearest caption of its caption bank); runs of
segments with the same text are merged. The draft is written in the annotation format
(vljepa_ros/world/annotations.py), tiling the bag: boundaries fall on the first frame after the
midpoint between the two clips either side.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vljepa_ros.errors import EmptyLabelBankError
from vljepa_ros.evaluation.embedding import embed_stream
from vljepa_ros.evaluation.selective_decoding import online_plan, ward_plan
from vljepa_ros.paths import bank_file, read_text_lines
from vljepa_ros.stream.clip_assembler import DEFAULT_STRIDE_FRAMES
from vljepa_ros.stream.clips import CAPTION_QUERY
from vljepa_ros.stream.shift_detector import DetectorSettings
from vljepa_ros.world.annotations import BagTimes
from vljepa_ros.world.types import Segment, WorldStream

METHODS = ("ward", "online")
DECODERS = ("auto", "prefix", "retrieval")
DEFAULT_SEGMENT_SECONDS = 3.0  # Ward: one segment per 3 s on average (the tabletop's actions last 2-4 s)
UNDECODED = "(no text decoded)"  # a generated text can be empty; an annotation label cannot


@dataclass
class DraftSettings:
    method: str = "ward"
    segment_seconds: float = DEFAULT_SEGMENT_SECONDS  # ward only
    online_threshold: float = DetectorSettings.shift_threshold  # online only: the monitor node's default
    decoder: str = "auto"
    stride_frames: int = DEFAULT_STRIDE_FRAMES
    batch_size: int = 16


def text_decoder(model_dir: Path, engine, choice: str) -> tuple[str, Callable[[np.ndarray], list[str]]]:
    """(name, decode(embeddings (S, D)) -> S texts) for the model in `model_dir`."""
    from vljepa_ros.model.y_decoder import RetrievalDecoder, load_decoder

    if choice in ("auto", "prefix"):
        decoder = load_decoder(model_dir)
        if decoder is not None:
            return "prefix", lambda embeddings: decoder.generate(np.asarray(embeddings, dtype=np.float32))
        if choice == "prefix":
            raise EmptyLabelBankError(f"{model_dir / 'decoder'} does not exist: this model has no generative decoder "
                                      "(train one with `vljepa-ros train-decoder`, or use --decoder retrieval)")
    bank = next((bank_file(model_dir, name) for name in ("captions", "labels") if bank_file(model_dir, name).is_file()),
                None)
    texts = read_text_lines(bank) if bank else []
    if not texts:
        raise EmptyLabelBankError(f"{model_dir / 'banks'} has no captions.txt or labels.txt to decode with")
    retrieval = RetrievalDecoder(texts, np.asarray(engine.encode_texts(texts), dtype=np.float32))
    return f"retrieval over {bank.name}", lambda embeddings: [retrieval.decode(row).text for row in embeddings]


def segment_steps(embeddings: np.ndarray, first_ns: np.ndarray, last_ns: np.ndarray, duration_s: float,
                  settings: DraftSettings) -> tuple[list[tuple[int, int]], np.ndarray]:
    """([start, end) step spans tiling the stream, mean embedding of each)."""
    if settings.method == "ward":
        count = int(np.clip(round(duration_s / settings.segment_seconds), 1, len(embeddings)))
        plan = ward_plan(embeddings, count)
    else:
        plan = online_plan(embeddings, first_ns, last_ns, settings.online_threshold, DetectorSettings())
    return list(plan.spans), plan.embeddings


def draft_segments(stream: WorldStream, clip_last_ns: np.ndarray, spans: list[tuple[int, int]],
                   texts: list[str]) -> list[Segment]:
    """Segments tiling the bag, one per run of equal texts."""
    bag = BagTimes(stream.stamps_ns)
    merged: list[list] = []
    for (start, end), text in zip(spans, texts):
        text = text.strip() or UNDECODED
        if merged and merged[-1][2] == text:
            merged[-1][1] = end
        else:
            merged.append([start, end, text])
    boundaries = [bag.first_ns]
    for start, _, _ in merged[1:]:
        midpoint = (int(clip_last_ns[start - 1]) + int(clip_last_ns[start])) // 2
        boundaries.append(int(stream.stamps_ns[min(bag.first_frame_from(midpoint), stream.frame_count - 1)]))
    boundaries.append(bag.end_ns)
    segments = []
    for (_, _, text), start_ns, end_ns in zip(merged, boundaries, boundaries[1:]):
        if end_ns > start_ns:  # two boundaries on one frame: the shorter segment vanishes
            segments.append(Segment(bag.first_frame_from(start_ns), bag.first_frame_from(end_ns), start_ns, end_ns,
                                    text, [text]))
    return segments


def annotate_stream(engine, stream: WorldStream, model_dir: Path, settings: DraftSettings) -> tuple[list[Segment], str]:
    """(draft segments, decoder name) for a stream's frames."""
    if settings.method not in METHODS:
        raise ValueError(f"unknown segmentation method {settings.method!r}; use one of {', '.join(METHODS)}")
    clips = embed_stream(engine, stream, CAPTION_QUERY, stride_frames=settings.stride_frames,
                         batch_size=settings.batch_size)
    if len(clips) == 0:
        raise ValueError(f"bag {stream.name!r} is shorter than one clip ({clips.frames_per_clip} frames)")
    spans, means = segment_steps(clips.embeddings, clips.first_stamps_ns, clips.last_stamps_ns, stream.duration_s,
                                 settings)
    decoder_name, decode = text_decoder(model_dir, engine, settings.decoder)
    return draft_segments(stream, clips.last_stamps_ns, spans, decode(means)), decoder_name
