"""Write ground truth in the annotation format of annotations.py (CSV + items YAML + label bank).

Used to derive the demo bag's example annotation from its groundtruth.json (exact: times are written
as decimal seconds of whole nanoseconds) and by `vljepa-ros annotate` for its draft.
"""
from __future__ import annotations

import csv
import decimal
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import yaml

from vljepa_ros.world.annotations import NS_PER_S, TIME_BASES, AnnotationError
from vljepa_ros.world.types import ActionItem, Segment

FORMAT_LINE = "# vljepa-ros annotations v1: start_s,end_s,label[,caption...]; a segment covers [start_s, end_s)"
TIME_BASE_NOTES = {"relative": "seconds from the bag's first frame", "absolute": "header stamps in seconds"}


def exact_seconds(stamp_ns: int, first_ns: int, time_base: str) -> decimal.Decimal:
    offset = stamp_ns - first_ns if time_base == "relative" else stamp_ns
    return decimal.Decimal(int(offset)) / NS_PER_S  # exact: 19 significant digits fit decimal's default 28


def format_seconds(stamp_ns: int, first_ns: int, time_base: str) -> str:
    """Exact decimal seconds ('2.9', '1767225602.9'), never exponent notation."""
    text = format(exact_seconds(stamp_ns, first_ns, time_base).normalize(), "f")
    return text if "." in text else text + ".0"


class _ExactDumper(yaml.SafeDumper):
    """Writes Decimal seconds as plain YAML floats with every digit (a Python float would round stamps)."""


_ExactDumper.add_representer(
    decimal.Decimal,
    lambda dumper, value: dumper.represent_scalar("tag:yaml.org,2002:float", format_seconds(int(value * NS_PER_S), 0,
                                                                                             "absolute")))


def segment_csv_text(segments: Sequence[Segment], first_ns: int, time_base: str = "relative",
                     label_bank_file: str | None = None, comments: Sequence[str] = ()) -> str:
    if time_base not in TIME_BASES:
        raise AnnotationError(f"unknown time base {time_base!r}; use one of {', '.join(TIME_BASES)}")
    lines = [FORMAT_LINE, *(f"# {comment}" for comment in comments),
             f"# time_base: {time_base}   ({TIME_BASE_NOTES[time_base]})"]
    if label_bank_file:
        lines.append(f"# label_bank: {label_bank_file}")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    extra = max((len(s.captions[1:]) for s in segments), default=0)
    writer.writerow(["start_s", "end_s", "label", *(["caption"] * extra)])
    for segment in segments:
        captions = [text for text in segment.captions if text != segment.label]
        writer.writerow([format_seconds(segment.start_ns, first_ns, time_base),
                         format_seconds(segment.end_ns, first_ns, time_base), segment.label, *captions])
    return "\n".join(lines) + "\n" + buffer.getvalue()


def items_yaml_text(segments: Sequence[Segment], action_items: Sequence[ActionItem], stamps_ns: np.ndarray,
                    time_base: str = "relative") -> str:
    first_ns = int(stamps_ns[0])

    def seconds(stamp_ns: int) -> decimal.Decimal:
        return exact_seconds(int(stamp_ns), first_ns, time_base)

    data = {
        "time_base": time_base,
        "questions": [{"start_s": seconds(s.start_ns), "end_s": seconds(s.end_ns), "question": q, "answer": a}
                      for s in segments for q, a in s.qa_pairs],
        "actions": [{"before_s": seconds(stamps_ns[item.before_index]), "after_s": seconds(stamps_ns[item.after_index]),
                     "action": item.action,
                     "distractors": [c for c in item.candidates if c != item.action],
                     "answer_index": item.answer_index} for item in action_items],
    }
    header = "# vljepa-ros annotation items v1: questions true over a span, inverse-dynamics actions\n"
    return header + yaml.dump(data, Dumper=_ExactDumper, sort_keys=False, allow_unicode=True, width=200,
                              default_flow_style=None)


def write_annotations(csv_path: str | Path, segments: Sequence[Segment], stamps_ns: np.ndarray,
                      items_path: str | Path | None = None, action_items: Sequence[ActionItem] = (),
                      label_bank: Sequence[str] | None = None, time_base: str = "relative",
                      comments: Sequence[str] = ()) -> list[Path]:
    """Write the CSV (+ items YAML, + a label bank file beside the CSV); returns the paths written."""
    csv_path = Path(csv_path)
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    written = []
    bank_name = None
    if label_bank is not None:
        bank_path = csv_path.with_name(csv_path.stem + "_labels.txt")
        bank_path.write_text("".join(f"{label}\n" for label in label_bank), encoding="utf-8")
        bank_name = bank_path.name
        written.append(bank_path)
    csv_path.write_text(segment_csv_text(segments, int(stamps_ns[0]), time_base, bank_name, comments), encoding="utf-8")
    written.insert(0, csv_path)
    if items_path is not None:
        Path(items_path).write_text(items_yaml_text(segments, action_items, stamps_ns, time_base), encoding="utf-8")
        written.append(Path(items_path))
    return written


def write_bag_annotations(bag: str | Path, out_dir: str | Path, time_base: str = "relative") -> list[Path]:
    """<out_dir>/<bag name>.csv, _labels.txt and _items.yaml from a bag's groundtruth.json (exact)."""
    from vljepa_ros.world.bag_io import read_stream_bag

    stream = read_stream_bag(bag)
    if not stream.segments:
        raise AnnotationError(f"bag {bag} has no groundtruth.json to derive annotations from")
    out_dir, name = Path(out_dir), Path(bag).name
    return write_annotations(out_dir / f"{name}.csv", stream.segments, stream.stamps_ns, out_dir / f"{name}_items.yaml",
                             stream.action_items, stream.label_bank, time_base,
                             comments=[f"derived from {name}/groundtruth.json by vljepa_ros.world.annotation_writer"])


if __name__ == "__main__":  # python -m vljepa_ros.world.annotation_writer BAG OUT_DIR [relative|absolute]
    import sys

    for written in write_bag_annotations(*sys.argv[1:4]):
        print(f"wrote {written}")
