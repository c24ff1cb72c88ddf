"""Ground truth a person writes for their own bag: a segment CSV plus an optional YAML/JSON of items.

The CSV (one annotation per line; '#' lines are comments, except the header keys below):

    # time_base: relative        <- required: "relative" (seconds from the bag's first frame) or
    #                               "absolute" (header stamps in seconds, e.g. 1767225612.5)
    # label_bank: labels.txt     <- optional: every class the model should choose from, one per line,
    #                               relative to the CSV; default: the CSV's distinct labels
    start_s,end_s,label,caption,caption
    0.0,2.9,the red triangle disappears,the red triangle vanishes from the table
    2.9,5.4,reach for the blue triangle,the robot reaches for the blue triangle

A segment covers the frames stamped in [start_s, end_s); segments may leave gaps (unlabelled time,
left out of every metric) but not overlap. Extra columns are reference captions (paraphrases) of the
segment; the label is always its first caption.

The items file (YAML, or JSON, which YAML reads too) holds questions true over a span that lies
inside one segment, and inverse-dynamics items (which action turns the `before` frame into the
`after` frame, among the action and three distractors):

    time_base: relative
    questions:
      - {start_s: 0.0, end_s: 2.9, question: 'What is the robot doing?', answer: staying still}
    actions:
      - {before_s: 0.0, after_s: 2.8, action: the red triangle disappears,
         distractors: [the red triangle appears, the blue triangle disappears, the yellow triangle disappears],
         answer_index: 2}   # optional: where the action sits among the candidates (default 0)

Every problem is an AnnotationError naming the file and line.
"""
from __future__ import annotations

import csv
import decimal
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from vljepa_ros.errors import VLJepaError
from vljepa_ros.world.types import ActionItem, Segment, WorldStream

TIME_BASES = ("relative", "absolute")
CSV_COLUMNS = ("start_s", "end_s", "label")
ACTION_CANDIDATES = 4  # the action plus 3 distractors, as WorldPrediction-WM and the generated worlds
NS_PER_S = 1_000_000_000


class _ExactLoader(yaml.SafeLoader):
    """Reads YAML floats as Decimal, so absolute stamps (1767225602.123456789) keep every nanosecond."""


def _exact_float(loader: yaml.SafeLoader, node: yaml.ScalarNode):
    try:
        return decimal.Decimal(loader.construct_scalar(node).replace("_", ""))
    except decimal.InvalidOperation:  # .inf, .nan: let the time checks reject them by value
        return loader.construct_yaml_float(node)


_ExactLoader.add_constructor("tag:yaml.org,2002:float", _exact_float)


class AnnotationError(VLJepaError):
    """An annotation file is malformed or disagrees with its bag; the message names the file and line."""


@dataclass
class GroundTruth:
    """What the evaluation needs to know about a stream, whichever file it came from."""

    segments: list[Segment]
    action_items: list[ActionItem]
    label_bank: list[str]
    allows_gaps: bool = True


@dataclass
class BagTimes:
    """Frame stamps of the bag the annotations describe; times are checked against its extent."""

    stamps_ns: np.ndarray

    @property
    def first_ns(self) -> int:
        return int(self.stamps_ns[0])

    @property
    def end_ns(self) -> int:
        """Where the last frame's span ends: its stamp plus one (median) frame period."""
        period = int(np.median(np.diff(self.stamps_ns))) if len(self.stamps_ns) > 1 else NS_PER_S // 10
        return int(self.stamps_ns[-1]) + period

    def frame_at_or_before(self, stamp_ns: int) -> int:
        return int(np.searchsorted(self.stamps_ns, stamp_ns, side="right")) - 1

    def first_frame_from(self, stamp_ns: int) -> int:
        return int(np.searchsorted(self.stamps_ns, stamp_ns, side="left"))


def parse_seconds(text, where: str) -> decimal.Decimal:
    if isinstance(text, bool) or text is None:
        raise AnnotationError(f"{where}: missing or not a number of seconds ({text!r})")
    try:
        value = text if isinstance(text, decimal.Decimal) else decimal.Decimal(str(text).strip())
    except decimal.InvalidOperation:
        raise AnnotationError(f"{where}: {text!r} is not a number of seconds") from None
    if not value.is_finite():
        raise AnnotationError(f"{where}: {text!r} is not a finite number of seconds")
    return value


def to_stamp_ns(seconds: decimal.Decimal, time_base: str, bag: BagTimes) -> int:
    """Exact (decimal) seconds -> a header stamp in ns, in the bag's clock."""
    offset = int((seconds * NS_PER_S).to_integral_value(rounding=decimal.ROUND_HALF_EVEN))
    return bag.first_ns + offset if time_base == "relative" else offset


def check_time_base(value: str | None, where: str) -> str:
    if value is None:
        raise AnnotationError(f"{where}: no time base; add '# time_base: relative' (seconds from the bag's first "
                              "frame) or '# time_base: absolute' (header stamps in seconds)")
    if value not in TIME_BASES:
        raise AnnotationError(f"{where}: unknown time base {value!r}; use one of {', '.join(TIME_BASES)}")
    return value


def check_span(start_ns: int, end_ns: int, bag: BagTimes, where: str) -> None:
    if end_ns <= start_ns:
        raise AnnotationError(f"{where}: end ({end_ns / NS_PER_S:.3f}) must be after start ({start_ns / NS_PER_S:.3f})")
    if start_ns < bag.first_ns or end_ns > bag.end_ns:
        raise AnnotationError(
            f"{where}: {(start_ns - bag.first_ns) / NS_PER_S:.3f}-{(end_ns - bag.first_ns) / NS_PER_S:.3f} s (from the "
            f"first frame) is outside the bag, which spans 0-{(bag.end_ns - bag.first_ns) / NS_PER_S:.3f} s")


# ---- the segment CSV --------------------------------------------------------------------------------


@dataclass
class CsvRow:
    line: int
    start_ns: int
    end_ns: int
    label: str
    captions: list[str]


def _header_key(line: str) -> tuple[str, str] | None:
    """'# key: value' -> (key, value) for the keys the format defines; None for ordinary comments."""
    body = line.lstrip("#").strip()
    key, _, value = body.partition(":")
    key = key.strip().lower()
    value = value.strip()
    if key == "time_base" and value:
        value = value.split()[0]  # the writer adds a note in parentheses after the value
    return (key, value) if key in ("time_base", "label_bank") and value else None


def _parse_row(cells: list[str], where: str, time_base: str, bag: BagTimes, line: int) -> CsvRow:
    if len(cells) < len(CSV_COLUMNS):
        raise AnnotationError(f"{where}: expected at least start_s,end_s,label, got {len(cells)} column(s)")
    start_ns = to_stamp_ns(parse_seconds(cells[0], f"{where} (start_s)"), time_base, bag)
    end_ns = to_stamp_ns(parse_seconds(cells[1], f"{where} (end_s)"), time_base, bag)
    label = cells[2].strip()
    if not label:
        raise AnnotationError(f"{where}: empty label")
    check_span(start_ns, end_ns, bag, where)
    captions = [label] + [text.strip() for text in cells[3:] if text.strip() and text.strip() != label]
    return CsvRow(line, start_ns, end_ns, label, captions)


def read_csv_rows(path: Path, bag: BagTimes) -> tuple[list[CsvRow], dict[str, str]]:
    """Rows in time order and the header keys; raises on any malformed line or overlap."""
    if not path.is_file():
        raise AnnotationError(f"annotation file {path} does not exist")
    header: dict[str, str] = {}
    rows: list[CsvRow] = []
    columns_seen = False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        where = f"{path}:{number}"
        if not line.strip():
            continue
        if line.lstrip().startswith("#"):
            key_value = _header_key(line)
            if key_value:
                header[key_value[0]] = key_value[1]
            continue
        cells = next(csv.reader([line]))
        if not columns_seen:
            if tuple(cell.strip() for cell in cells[:3]) != CSV_COLUMNS:
                raise AnnotationError(f"{where}: the first row must name the columns start_s,end_s,label[,caption...]; "
                                      f"got {line!r}")
            columns_seen = True
            check_time_base(header.get("time_base"), where)
            continue
        rows.append(_parse_row(cells, where, header["time_base"], bag, number))
    if not columns_seen:
        raise AnnotationError(f"{path}: no 'start_s,end_s,label' header row")
    if not rows:
        raise AnnotationError(f"{path}: no annotations (only the header)")
    rows.sort(key=lambda row: row.start_ns)
    for previous, row in zip(rows, rows[1:]):
        if row.start_ns < previous.end_ns:
            raise AnnotationError(f"{path}:{row.line}: segment {row.label!r} overlaps {previous.label!r} on line "
                                  f"{previous.line} (starts {(previous.end_ns - row.start_ns) / NS_PER_S:.3f} s early)")
    return rows, header


def _label_bank(path: Path, header: dict[str, str], rows: list[CsvRow]) -> list[str]:
    if "label_bank" not in header:
        return list(dict.fromkeys(row.label for row in rows))
    bank_path = path.parent / header["label_bank"]
    if not bank_path.is_file():
        raise AnnotationError(f"{path}: label_bank file {bank_path} does not exist")
    bank = [text.strip() for text in bank_path.read_text(encoding="utf-8").splitlines() if text.strip()]
    known = set(bank)
    for row in rows:
        if row.label not in known:
            raise AnnotationError(f"{path}:{row.line}: label {row.label!r} is not in the label bank {bank_path}")
    return bank


def read_segment_csv(path: str | Path, stamps_ns: np.ndarray) -> GroundTruth:
    """Segments (frame indices from the bag's stamps) and the label bank of an annotation CSV."""
    path, bag = Path(path), BagTimes(np.asarray(stamps_ns, dtype=np.int64))
    rows, header = read_csv_rows(path, bag)
    segments = []
    for row in rows:
        start_index, end_index = bag.first_frame_from(row.start_ns), bag.first_frame_from(row.end_ns)
        if end_index <= start_index:
            raise AnnotationError(f"{path}:{row.line}: segment {row.label!r} covers no frame of the bag")
        segments.append(Segment(start_index, end_index, row.start_ns, row.end_ns, row.label, row.captions))
    return GroundTruth(segments, [], _label_bank(path, header, rows))


# ---- the items file ---------------------------------------------------------------------------------


def _item_lines(root: yaml.Node | None, key: str) -> list[int]:
    """1-based line of each entry of the top-level list `key` (for error messages)."""
    if not isinstance(root, yaml.MappingNode):
        return []
    for key_node, value_node in root.value:
        if key_node.value == key and isinstance(value_node, yaml.SequenceNode):
            return [item.start_mark.line + 1 for item in value_node.value]
    return []


def _load_items_file(path: Path) -> tuple[dict, yaml.Node | None]:
    if not path.is_file():
        raise AnnotationError(f"items file {path} does not exist")
    text = path.read_text(encoding="utf-8")
    try:
        root, data = yaml.compose(text), yaml.load(text, Loader=_ExactLoader)
    except yaml.YAMLError as error:
        raise AnnotationError(f"{path}: not valid YAML/JSON: {error}") from error
    if not isinstance(data, dict):
        raise AnnotationError(f"{path}: expected a mapping with time_base, questions and/or actions")
    unknown = sorted(set(data) - {"time_base", "questions", "actions"})
    if unknown:
        raise AnnotationError(f"{path}: unknown keys {unknown}; expected time_base, questions, actions")
    return data, root


def _entries(data: dict, key: str, path: Path, root: yaml.Node | None):
    entries = data.get(key) or []
    if not isinstance(entries, list):
        raise AnnotationError(f"{path}: '{key}' must be a list")
    lines = _item_lines(root, key) or [0] * len(entries)
    for index, (entry, line) in enumerate(zip(entries, lines)):
        where = f"{path}:{line} ({key}[{index}])"
        if not isinstance(entry, dict):
            raise AnnotationError(f"{where}: each entry must be a mapping")
        yield entry, where


def _text(entry: dict, key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        raise AnnotationError(f"{where}: '{key}' must be a non-empty text")
    return value.strip()


def _action_item(entry: dict, where: str, time_base: str, bag: BagTimes) -> ActionItem:
    before_ns = to_stamp_ns(parse_seconds(entry.get("before_s"), f"{where} (before_s)"), time_base, bag)
    after_ns = to_stamp_ns(parse_seconds(entry.get("after_s"), f"{where} (after_s)"), time_base, bag)
    check_span(before_ns, after_ns, bag, where)
    action = _text(entry, "action", where)
    distractors = entry.get("distractors")
    if not isinstance(distractors, list) or not all(isinstance(d, str) and d.strip() for d in distractors):
        raise AnnotationError(f"{where}: 'distractors' must be a list of non-empty texts")
    distractors = [d.strip() for d in distractors]
    if len(distractors) != ACTION_CANDIDATES - 1 or len({action, *distractors}) != ACTION_CANDIDATES:
        raise AnnotationError(f"{where}: need {ACTION_CANDIDATES - 1} distinct distractors, all different from the "
                              f"action; got {distractors}")
    answer_index = entry.get("answer_index", 0)
    if not isinstance(answer_index, int) or not 0 <= answer_index < ACTION_CANDIDATES:
        raise AnnotationError(f"{where}: answer_index must be an integer in 0..{ACTION_CANDIDATES - 1}")
    before_index, after_index = bag.frame_at_or_before(before_ns), bag.frame_at_or_before(after_ns)
    if after_index <= before_index:
        raise AnnotationError(f"{where}: before and after fall on the same frame ({before_index})")
    candidates = distractors[:answer_index] + [action] + distractors[answer_index:]
    return ActionItem(before_index, after_index, action, candidates, answer_index)


def _attach_question(entry: dict, where: str, time_base: str, bag: BagTimes, segments: list[Segment]) -> None:
    start_ns = to_stamp_ns(parse_seconds(entry.get("start_s"), f"{where} (start_s)"), time_base, bag)
    end_ns = to_stamp_ns(parse_seconds(entry.get("end_s"), f"{where} (end_s)"), time_base, bag)
    check_span(start_ns, end_ns, bag, where)
    pair = (_text(entry, "question", where), _text(entry, "answer", where))
    for segment in segments:
        if segment.start_ns <= start_ns and end_ns <= segment.end_ns:
            segment.qa_pairs.append(pair)
            return
    raise AnnotationError(f"{where}: the span {(start_ns - bag.first_ns) / NS_PER_S:.3f}-"
                          f"{(end_ns - bag.first_ns) / NS_PER_S:.3f} s lies inside no single annotated segment")


def read_items(path: str | Path, stamps_ns: np.ndarray, segments: list[Segment]) -> list[ActionItem]:
    """Action items of an items file; its questions are added to the segments they lie in."""
    path, bag = Path(path), BagTimes(np.asarray(stamps_ns, dtype=np.int64))
    data, root = _load_items_file(path)
    time_base = check_time_base(data.get("time_base"), str(path))
    for entry, where in _entries(data, "questions", path, root):
        _attach_question(entry, where, time_base, bag, segments)
    return [_action_item(entry, where, time_base, bag) for entry, where in _entries(data, "actions", path, root)]


def read_annotations(csv_path: str | Path, stamps_ns: np.ndarray, items_path: str | Path | None = None) -> GroundTruth:
    """The ground truth of a bag from its annotation CSV (+ items file)."""
    truth = read_segment_csv(csv_path, stamps_ns)
    if items_path is not None:
        truth.action_items = read_items(items_path, stamps_ns, truth.segments)
    return truth


# ---- groundtruth.json (what the generated worlds write beside their bags) -------------------------------


def read_groundtruth_json(path: str | Path) -> GroundTruth:
    """A bag's groundtruth.json as GroundTruth; errors name the file, line or entry at fault."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AnnotationError(f"ground-truth file {path} does not exist") from None
    except json.JSONDecodeError as error:
        raise AnnotationError(f"{path}:{error.lineno}: not valid JSON: {error.msg}") from error
    if not isinstance(data, dict):
        raise AnnotationError(f"{path}: expected a JSON object")
    parsed = {}
    for key, parse in (("segments", Segment.from_dict), ("action_items", ActionItem.from_dict)):
        entries = data.get(key, [])
        parsed[key] = []
        for index, entry in enumerate(entries):
            try:
                parsed[key].append(parse(entry))
            except (KeyError, TypeError, ValueError) as error:
                raise AnnotationError(f"{path}: {key}[{index}] is malformed ({type(error).__name__}: {error})") from error
    bank = data.get("label_bank")
    if not isinstance(bank, list) or not all(isinstance(label, str) and label for label in bank):
        raise AnnotationError(f"{path}: 'label_bank' must be a list of non-empty texts")
    return GroundTruth(parsed["segments"], parsed["action_items"], list(bank), allows_gaps=False)


def with_ground_truth(stream: WorldStream, truth: GroundTruth, source: str | Path = "") -> WorldStream:
    """A copy of `stream` (same frames) carrying `truth`; validated against the frames."""
    labelled = WorldStream(stream.name, stream.seed, stream.fps, stream.frames, stream.stamps_ns, truth.segments,
                           truth.action_items, truth.label_bank, allows_gaps=truth.allows_gaps)
    try:
        labelled.validate()
    except VLJepaError as error:
        raise AnnotationError(f"{source or 'ground truth'} does not fit bag {stream.name!r}: {error}") from error
    return labelled


def read_annotated_bag(bag: str | Path, labels: str | Path | None = None, items: str | Path | None = None,
                       topic: str | None = None) -> WorldStream:
    """A bag's frames with the ground truth of the annotation CSV `labels` (+ `items`) when given, else the
    bag's own groundtruth.json (if it has one): what `eval --bag` and `make-data --from-bag` read."""
    from vljepa_ros.world.bag_io import read_stream_bag

    if labels is None and items is not None:
        raise AnnotationError(f"{items} annotates a segment CSV; give the annotation CSV (--labels) too")
    stream = read_stream_bag(bag, topic=topic)
    if labels is None:
        return stream
    return with_ground_truth(stream, read_annotations(labels, stream.stamps_ns, items), labels)
