"""Run an inference engine over a whole frame stream, clip by clip, exactly as the perception node does.

The node pushes camera frames into a ClipAssembler and encodes every clip it emits; embed_stream
does the same with the same class and parameters, so its output is what the node publishes for the
same frames (the nodes' integration test compares the two). With `reuse` settings whose option is on
(the node's skip_unchanged_clips), a clip whose frames did not change since the last inferred clip is not
encoded and carries that clip's embedding and statistics, as the node republishes it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vljepa_ros.stream.clip_assembler import DEFAULT_SAMPLE_PERIOD_S, DEFAULT_STRIDE_FRAMES, Clip, ClipAssembler
from vljepa_ros.stream.clip_reuse import ClipReuse, ReuseSettings
from vljepa_ros.stream.clips import CAPTION_QUERY


@dataclass
class StreamEmbeddings:
    """One row per clip the assembler emitted, in stream order."""
    embeddings: np.ndarray  # (N, D) float32 unit vectors
    first_stamps_ns: np.ndarray  # (N,) int64: stamp of each clip's first real frame
    last_stamps_ns: np.ndarray  # (N,) int64: stamp of each clip's last frame (the embedding's time)
    frame_counts: np.ndarray  # (N,) real frames per clip (< frames_per_clip only for early clips)
    query: str
    frames_per_clip: int
    stride_frames: int
    sample_period_s: float
    # (N, F) float32 visual statistics of each clip (the familiarity input); None from an engine without them
    statistics: np.ndarray | None = None
    # (N,) bool: the clip was unchanged and carries the last inferred clip's row (None: the option was off)
    reused: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.embeddings.shape[0])

    def frame_indices(self, stamps_ns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(first, last) frame index of every clip in a stream whose frame stamps are `stamps_ns`."""
        stamps_ns = np.asarray(stamps_ns)
        return np.searchsorted(stamps_ns, self.first_stamps_ns), np.searchsorted(stamps_ns, self.last_stamps_ns)


def assemble_clips(frames: np.ndarray, stamps_ns: np.ndarray, frames_per_clip: int,
                   stride_frames: int = DEFAULT_STRIDE_FRAMES, sample_period_s: float = DEFAULT_SAMPLE_PERIOD_S,
                   emit_partial_clips: bool = False):
    """Yield the Clips a ClipAssembler emits for these frames (in order)."""
    assembler = ClipAssembler(frames_per_clip, stride_frames, sample_period_s, emit_partial_clips=emit_partial_clips)
    for frame, stamp_ns in zip(frames, stamps_ns):
        clip = assembler.push(frame, int(stamp_ns))
        if clip is not None:
            yield clip


def embed_stream(engine, stream, query: str = CAPTION_QUERY, frames_per_clip: int | None = None,
                 stride_frames: int = DEFAULT_STRIDE_FRAMES, sample_period_s: float = DEFAULT_SAMPLE_PERIOD_S,
                 emit_partial_clips: bool = False, batch_size: int = 16, progress: bool = False,
                 reuse: ReuseSettings | None = None) -> StreamEmbeddings:
    """embed_frames over a WorldStream's frames and stamps (default query: the perception node's)."""
    return embed_frames(engine, stream.frames, stream.stamps_ns, query, frames_per_clip, stride_frames,
                        sample_period_s, emit_partial_clips, batch_size, progress, reuse)


def embed_frames(engine, frames: np.ndarray, stamps_ns: np.ndarray, query: str,
                 frames_per_clip: int | None = None, stride_frames: int = DEFAULT_STRIDE_FRAMES,
                 sample_period_s: float = DEFAULT_SAMPLE_PERIOD_S, emit_partial_clips: bool = False,
                 batch_size: int = 16, progress: bool = False, reuse: ReuseSettings | None = None) -> StreamEmbeddings:
    """Embed every clip of a frame stream with `engine` (an InferenceEngine: encode_clips(frames, query)).

    frames: uint8 (N, H, W, 3) RGB, stamps_ns: (N,) int64. frames_per_clip defaults to the engine's.
    Clips are encoded in batches for speed; each clip's embedding does not depend on its batch.
    reuse: the perception node's skip_unchanged_clips settings (None or disabled: every clip is encoded).
    """
    frames_per_clip = int(frames_per_clip or engine.frames_per_clip)
    clips: list[Clip] = []
    encoder = _BatchEncoder(engine, query, batch_size)
    checker = ClipReuse.from_settings(reuse) if reuse is not None and reuse.enabled else None
    rows: list[int] = []  # per clip: the row among the encoded clips whose embedding it carries
    reused: list[bool] = []
    clip_iterator = assemble_clips(frames, stamps_ns, frames_per_clip, stride_frames, sample_period_s,
                                   emit_partial_clips)
    if progress:
        from tqdm import tqdm

        clip_iterator = tqdm(clip_iterator, desc="embedding clips", unit="clip", leave=False)
    for clip in clip_iterator:
        clips.append(clip)
        check = checker.check(clip.frames, clip.last_stamp_ns, query) if checker is not None else None
        reused.append(check is not None and check.reuse)
        if reused[-1]:
            rows.append(check.payload)
            continue
        rows.append(encoder.add(clip))
        if check is not None:
            checker.remember(check, rows[-1])
    embeddings, statistics = encoder.finish()
    index = np.array(rows, dtype=np.int64)
    return StreamEmbeddings(
        embeddings=embeddings[index],
        first_stamps_ns=np.array([c.first_stamp_ns for c in clips], dtype=np.int64),
        last_stamps_ns=np.array([c.last_stamp_ns for c in clips], dtype=np.int64),
        frame_counts=np.array([c.frame_count for c in clips], dtype=np.int64),
        query=query, frames_per_clip=frames_per_clip, stride_frames=stride_frames,
        sample_period_s=sample_period_s, statistics=None if statistics is None else statistics[index],
        reused=np.array(reused, dtype=bool) if checker is not None else None)


class _BatchEncoder:
    """Encodes the clips it is given in batches of `batch_size`; add() returns the clip's row."""

    def __init__(self, engine, query: str, batch_size: int) -> None:
        self.engine, self.query, self.batch_size = engine, query, batch_size
        self.with_statistics = hasattr(engine, "encode_clips_with_statistics")
        self.pending: list[Clip] = []
        self.embeddings: list[np.ndarray] = []
        self.statistics: list[np.ndarray] = []
        self.count = 0

    def add(self, clip: Clip) -> int:
        self.pending.append(clip)
        self.count += 1
        if len(self.pending) == self.batch_size:
            self._encode()
        return self.count - 1

    def _encode(self) -> None:
        if not self.pending:
            return
        batch = np.stack([c.frames for c in self.pending])
        self.pending = []
        if self.with_statistics:
            batch_embeddings, batch_statistics = self.engine.encode_clips_with_statistics(batch, self.query)
            self.statistics.append(np.asarray(batch_statistics, dtype=np.float32))
        else:
            batch_embeddings = self.engine.encode_clips(batch, self.query)
        self.embeddings.append(np.asarray(batch_embeddings, dtype=np.float32))

    def finish(self) -> tuple[np.ndarray, np.ndarray | None]:
        """(embeddings (n, D), statistics (n, F) or None for an engine without them) of every clip added."""
        self._encode()
        dimension = int(getattr(self.engine, "dimension", 0))
        embeddings = np.concatenate(self.embeddings) if self.embeddings else np.zeros((0, dimension), np.float32)
        if not self.with_statistics:
            return embeddings, None
        return embeddings, (np.concatenate(self.statistics) if self.statistics
                            else np.zeros((0, self.engine.statistics_dimension), np.float32))
