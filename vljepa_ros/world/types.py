"""Data types shared by every synthetic world (tabletop, Meta-World) and by the bag reader.

A world produces a WorldStream: frames at a fixed rate plus ground truth that tiles the stream into
segments (one meaning each), inverse-dynamics items and the label bank of every class the world can produce.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vljepa_ros.errors import VLJepaError

EXAMPLE_KINDS = ("caption", "qa", "action")
# Every world splits its seeds the same way: training below, evaluation and the demo bags at or above.
HELD_OUT_SEED_START = 1_000_000
BASE_STAMP_NS = 1_767_225_600 * 10**9  # 2026-01-01T00:00:00Z: plausible wall-clock stamps for generated bags


class WorldDataError(VLJepaError):
    """Ground truth is inconsistent with its frames (segments do not tile the stream, bad candidates, ...)."""


@dataclass
class Segment:
    """A span of frames with one meaning. end_index is exclusive; end_ns is the start stamp of the next span."""

    start_index: int
    end_index: int
    start_ns: int
    end_ns: int
    label: str  # class name from the label bank, e.g. "pick up the red cube"
    captions: list[str]  # paraphrases; captions[0] is the label itself
    qa_pairs: list[tuple[str, str]] = field(default_factory=list)  # (question, short answer) true over the whole span
    attributes: dict[str, str] = field(default_factory=dict)  # structured meaning, e.g. {"verb": "push", "colour": "red"}
    episode_index: int = 0
    # labels of other classes this span is easily mistaken for (the tabletop world's inverse actions, other
    # shapes and directions): training uses them as hard negatives of the span's caption examples
    confusable_labels: tuple[str, ...] = ()

    @property
    def frame_count(self) -> int:
        return self.end_index - self.start_index

    def to_dict(self) -> dict:
        data = {
            "start_index": self.start_index,
            "end_index": self.end_index,
            "start_ns": self.start_ns,
            "end_ns": self.end_ns,
            "label": self.label,
            "captions": list(self.captions),
            "qa_pairs": [list(pair) for pair in self.qa_pairs],
            "attributes": dict(self.attributes),
            "episode_index": self.episode_index,
        }
        if self.confusable_labels:  # only the tabletop world has them; other files stay as they were
            data["confusable_labels"] = list(self.confusable_labels)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> Segment:
        return cls(
            start_index=int(data["start_index"]),
            end_index=int(data["end_index"]),
            start_ns=int(data["start_ns"]),
            end_ns=int(data["end_ns"]),
            label=str(data["label"]),
            captions=[str(text) for text in data["captions"]],
            qa_pairs=[(str(q), str(a)) for q, a in data.get("qa_pairs", [])],
            attributes={str(k): str(v) for k, v in data.get("attributes", {}).items()},
            episode_index=int(data.get("episode_index", 0)),
            confusable_labels=tuple(str(text) for text in data.get("confusable_labels", ())),
        )


@dataclass
class ActionItem:
    """Inverse dynamics as in WorldPrediction-WM: which of 4 candidate actions turns `before` into `after`."""

    before_index: int
    after_index: int
    action: str
    candidates: list[str]  # 4 distinct texts, exactly one equals `action`
    answer_index: int  # candidates[answer_index] == action

    def to_dict(self) -> dict:
        return {
            "before_index": self.before_index,
            "after_index": self.after_index,
            "action": self.action,
            "candidates": list(self.candidates),
            "answer_index": self.answer_index,
        }

    @classmethod
    def from_dict(cls, data: dict) -> ActionItem:
        return cls(
            before_index=int(data["before_index"]),
            after_index=int(data["after_index"]),
            action=str(data["action"]),
            candidates=[str(text) for text in data["candidates"]],
            answer_index=int(data["answer_index"]),
        )


@dataclass
class WorldStream:
    """Frames at a fixed rate with their ground truth. frames: uint8 (N,H,W,3) RGB; stamps_ns: int64 (N,)."""

    name: str
    seed: int
    fps: float
    frames: np.ndarray
    stamps_ns: np.ndarray
    segments: list[Segment]
    action_items: list[ActionItem]
    label_bank: list[str]
    # A person's annotation may leave time unlabelled between segments; generated worlds tile every frame.
    allows_gaps: bool = False

    @property
    def frame_count(self) -> int:
        return int(self.frames.shape[0])

    @property
    def image_size(self) -> tuple[int, int]:
        """(height, width) of every frame."""
        return int(self.frames.shape[1]), int(self.frames.shape[2])

    @property
    def duration_s(self) -> float:
        return self.frame_count / self.fps

    def segment_index_per_frame(self) -> np.ndarray:
        """int (N,) index into `segments` for every frame (-1 where no segment covers it)."""
        owner = np.full(self.frame_count, -1, dtype=np.int64)
        for index, segment in enumerate(self.segments):
            owner[segment.start_index : segment.end_index] = index
        return owner

    def validate(self) -> None:
        """Raise WorldDataError unless the ground truth is consistent with the frames."""
        n = self.frame_count
        if self.frames.ndim != 4 or self.frames.shape[3] != 3 or self.frames.dtype != np.uint8:
            raise WorldDataError(f"frames must be uint8 (N,H,W,3), got {self.frames.dtype} {self.frames.shape}")
        if self.stamps_ns.shape != (n,):
            raise WorldDataError(f"stamps_ns has shape {self.stamps_ns.shape}, expected ({n},)")
        if n > 1 and np.any(np.diff(self.stamps_ns) <= 0):
            raise WorldDataError("stamps_ns must increase strictly")
        if not self.segments:
            return  # a recorded bag without ground truth
        expected_start = 0
        bank = set(self.label_bank)
        for segment in self.segments:
            starts_late = self.allows_gaps and segment.start_index > expected_start
            if (segment.start_index != expected_start and not starts_late) or segment.end_index <= segment.start_index:
                raise WorldDataError(
                    f"segments must tile the stream: segment {segment.label!r} spans "
                    f"[{segment.start_index}, {segment.end_index}) but should start at {expected_start}"
                )
            if segment.label not in bank:
                raise WorldDataError(f"segment label {segment.label!r} is not in the label bank")
            expected_start = segment.end_index
        if expected_start != n and not (self.allows_gaps and expected_start <= n):
            raise WorldDataError(f"segments end at frame {expected_start} but the stream has {n} frames")
        for item in self.action_items:
            if not (0 <= item.before_index < item.after_index < n):
                raise WorldDataError(f"action item indices {item.before_index}->{item.after_index} outside 0..{n - 1}")
            if len(item.candidates) != 4 or len(set(item.candidates)) != 4:
                raise WorldDataError(f"action item needs 4 distinct candidates, got {item.candidates}")
            if item.candidates.count(item.action) != 1 or item.candidates[item.answer_index] != item.action:
                raise WorldDataError(f"action {item.action!r} must appear once at answer_index in {item.candidates}")


@dataclass
class Example:
    """One training pair: a clip, the query asked about it and the answer text the Y-encoder embeds."""

    frames: np.ndarray  # uint8 (T,H,W,3) RGB
    query: str
    answer: str
    kind: str  # "caption" | "qa" | "action"
    negatives: tuple[str, ...] = ()  # answers known to be wrong for this clip: action distractors, confusable labels
    # the class label a caption paraphrases: answers of one class are not each other's negatives ("" = the answer)
    answer_class: str = ""
