"""The annotation format (CSV + items YAML) and the groundtruth.json reader: exact round trips and
errors that name the file and line."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vljepa_ros.paths import find_share_file
from vljepa_ros.world.annotation_writer import write_annotations, write_bag_annotations
from vljepa_ros.world.annotations import (AnnotationError, read_annotations, read_groundtruth_json,
                                          read_segment_csv, with_ground_truth)
from vljepa_ros.world.bag_io import read_stream_bag

FIRST_NS = 1_767_225_600_000_000_000
STAMPS = FIRST_NS + np.arange(100, dtype=np.int64) * 100_000_000  # 10 s at 10 Hz
HEADER = "# time_base: relative\nstart_s,end_s,label,caption\n"
DEMO = Path(__file__).resolve().parents[1] / "data" / "demo_tabletop"


@pytest.fixture(scope="module")
def demo_stream():
    return read_stream_bag(DEMO)


def write(tmp_path: Path, text: str, name: str = "labels.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def segment_fields(segment):
    return (segment.start_index, segment.end_index, segment.start_ns, segment.end_ns, segment.label,
            segment.captions, segment.qa_pairs)


def test_rows_map_to_frames_with_gaps_and_captions(tmp_path):
    path = write(tmp_path, HEADER + "0.0,2.5,pick up the cube,the robot lifts the cube\n"
                 "# a comment line\n\n4.0,10.0,\"push it, left\"\n")
    truth = read_segment_csv(path, STAMPS)
    assert [(s.start_index, s.end_index) for s in truth.segments] == [(0, 25), (40, 100)]
    assert truth.segments[0].captions == ["pick up the cube", "the robot lifts the cube"]
    assert truth.label_bank == ["pick up the cube", "push it, left"]
    assert truth.segments[1].start_ns == FIRST_NS + 4_000_000_000


def test_absolute_time_base(tmp_path):
    path = write(tmp_path, "# time_base: absolute\nstart_s,end_s,label\n1767225601.5,1767225602.0,wave\n")
    (segment,) = read_segment_csv(path, STAMPS).segments
    assert (segment.start_index, segment.end_index) == (15, 20)


@pytest.mark.parametrize("body, message", [
    ("0.0,2.0,a\n1.5,3.0,b\n", r"labels.csv:4: segment 'b' overlaps 'a' on line 3"),
    ("2.0,2.0,a\n", r"labels.csv:3: end .* must be after start"),
    ("3.0,1.0,a\n", r"labels.csv:3: end .* must be after start"),
    ("0.0,12.0,a\n", r"labels.csv:3: 0.000-12.000 s .* outside the bag, which spans 0-10.000 s"),
    ("-1.0,1.0,a\n", r"labels.csv:3: .*outside the bag"),
    ("0.0,1.0,  \n", r"labels.csv:3: empty label"),
    ("0.0,abc,a\n", r"labels.csv:3 \(end_s\): 'abc' is not a number"),
    ("0.0,nan,a\n", r"labels.csv:3 \(end_s\): 'nan' is not a finite number"),
    ("0.0\n", r"labels.csv:3: expected at least start_s,end_s,label"),
    ("0.01,0.05,a\n", r"labels.csv:3: segment 'a' covers no frame"),
])
def test_bad_rows_name_the_line(tmp_path, body, message):
    with pytest.raises(AnnotationError, match=message):
        read_segment_csv(write(tmp_path, HEADER + body), STAMPS)


@pytest.mark.parametrize("text, message", [
    ("start_s,end_s,label\n0,1,a\n", r"labels.csv:1: no time base"),
    ("# time_base: bagtime\nstart_s,end_s,label\n0,1,a\n", r"labels.csv:2: unknown time base 'bagtime'"),
    ("# time_base: relative\nbegin,end,label\n0,1,a\n", r"labels.csv:2: the first row must name the columns"),
    ("# time_base: relative\nstart_s,end_s,label\n", r"no annotations"),
    ("# time_base: relative\n# label_bank: bank.txt\nstart_s,end_s,label\n0,1,zebra\n",
     r"labels.csv:4: label 'zebra' is not in the label bank"),
])
def test_bad_headers(tmp_path, text, message):
    (tmp_path / "bank.txt").write_text("wave\n")
    with pytest.raises(AnnotationError, match=message):
        read_segment_csv(write(tmp_path, text), STAMPS)


def test_items_attach_questions_and_build_action_items(tmp_path):
    csv_path = write(tmp_path, HEADER + "0.0,5.0,a\n5.0,10.0,b\n")
    items = write(tmp_path, "time_base: relative\nquestions:\n  - {start_s: 1.0, end_s: 4.0, question: 'Q?', answer: A}\n"
                  "actions:\n  - {before_s: 0.0, after_s: 4.95, action: a, distractors: [b, c, d], answer_index: 1}\n",
                  "items.yaml")
    truth = read_annotations(csv_path, STAMPS, items)
    assert truth.segments[0].qa_pairs == [("Q?", "A")]
    (item,) = truth.action_items
    assert (item.before_index, item.after_index, item.candidates, item.answer_index) == (0, 49, ["b", "a", "c", "d"], 1)


@pytest.mark.parametrize("body, message", [
    ("questions:\n  - {start_s: 4.0, end_s: 6.0, question: 'Q?', answer: A}\n",
     r"items.yaml:3 \(questions\[0\]\): the span 4.000-6.000 s lies inside no single annotated segment"),
    ("questions:\n  - {start_s: 1.0, end_s: 2.0, question: '', answer: A}\n", r"items.yaml:3 .*'question' must be"),
    ("actions:\n  - {before_s: 0.0, after_s: 1.0, action: a, distractors: [b, c]}\n",
     r"items.yaml:3 \(actions\[0\]\): need 3 distinct distractors"),
    ("actions:\n  - {before_s: 0.0, after_s: 1.0, action: a, distractors: [b, c, a]}\n", r"need 3 distinct"),
    ("actions:\n  - x\n  - {before_s: 2.0, after_s: 1.0, action: a, distractors: [b, c, d]}\n",
     r"items.yaml:3 \(actions\[0\]\): each entry must be a mapping"),
    ("actions:\n  - {before_s: 2.0, after_s: 1.0, action: a, distractors: [b, c, d]}\n",
     r"items.yaml:3 \(actions\[0\]\): end .* must be after start"),
    ("actions:\n  - {before_s: 2.0, after_s: 20.0, action: a, distractors: [b, c, d]}\n", r"outside the bag"),
    ("extra: 1\n", r"unknown keys \['extra'\]"),
])
def test_bad_items_name_the_line(tmp_path, body, message):
    csv_path = write(tmp_path, HEADER + "0.0,5.0,a\n5.0,10.0,b\n")
    items = write(tmp_path, "time_base: relative\n" + body, "items.yaml")
    with pytest.raises(AnnotationError, match=message):
        read_annotations(csv_path, STAMPS, items)


def test_items_need_a_time_base(tmp_path):
    csv_path = write(tmp_path, HEADER + "0.0,5.0,a\n")
    with pytest.raises(AnnotationError, match="no time base"):
        read_annotations(csv_path, STAMPS, write(tmp_path, "actions: []\n", "items.yaml"))


@pytest.mark.parametrize("time_base", ["relative", "absolute"])
def test_writer_round_trips_the_demo_ground_truth_exactly(tmp_path, demo_stream, time_base):
    written = write_annotations(tmp_path / "demo.csv", demo_stream.segments, demo_stream.stamps_ns,
                                tmp_path / "items.yaml", demo_stream.action_items, demo_stream.label_bank, time_base)
    truth = read_annotations(written[0], demo_stream.stamps_ns, tmp_path / "items.yaml")
    labelled = with_ground_truth(demo_stream, truth)
    assert [segment_fields(s) for s in labelled.segments] == [segment_fields(s) for s in demo_stream.segments]
    assert [i.to_dict() for i in labelled.action_items] == [i.to_dict() for i in demo_stream.action_items]
    assert labelled.label_bank == demo_stream.label_bank


def test_shipped_demo_annotations_are_current(tmp_path):
    """data/demo_tabletop/annotations is exactly what the writer derives from groundtruth.json."""
    for path in write_bag_annotations(DEMO, tmp_path):
        assert path.read_text() == (DEMO / "annotations" / path.name).read_text(), path.name


def test_groundtruth_json_reader_matches_the_bag_reader(demo_stream):
    truth = read_groundtruth_json(DEMO / "groundtruth.json")
    assert [segment_fields(s) for s in truth.segments] == [segment_fields(s) for s in demo_stream.segments]
    assert truth.label_bank == demo_stream.label_bank and not truth.allows_gaps


def test_groundtruth_json_errors_name_the_entry(tmp_path):
    data = json.loads((DEMO / "groundtruth.json").read_text())
    del data["segments"][3]["label"]
    path = write(tmp_path, json.dumps(data), "groundtruth.json")
    with pytest.raises(AnnotationError, match=r"groundtruth.json: segments\[3\] is malformed"):
        read_groundtruth_json(path)
    with pytest.raises(AnnotationError, match=r"groundtruth.json:2: not valid JSON"):
        read_groundtruth_json(write(tmp_path, '{\n "segments": [,]}', "groundtruth.json"))


def test_ground_truth_that_does_not_fit_the_bag_is_rejected(tmp_path, demo_stream):
    path = write(tmp_path, HEADER + "0.0,5.0,not in the bank\n")
    (tmp_path / "bank.txt").write_text("x\n")
    truth = read_segment_csv(path, demo_stream.stamps_ns)
    truth.label_bank = ["something else"]
    with pytest.raises(AnnotationError, match="does not fit bag"):
        with_ground_truth(demo_stream, truth, path)
