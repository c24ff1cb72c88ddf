"""`vljepa-ros annotate` writes a draft the annotation reader accepts, and `eval --labels` evaluates against it."""
from __future__ import annotations

import json

import pytest

from vljepa_ros.cli import main
from vljepa_ros.world.annotations import read_segment_csv, with_ground_truth
from vljepa_ros.world.bag_io import read_stream_bag, write_stream_bag
from vljepa_ros.world.tabletop import generate_stream

@pytest.fixture(scope="module")
def bag(tmp_path_factory):
    return write_stream_bag(tmp_path_factory.mktemp("bag") / "bag", generate_stream(1_000_002, 1, image_size=32))

@pytest.mark.parametrize("method", ["ward", "online"])
def test_annotate_draft_reads_back_and_tiles_the_bag(tiny_model_dir, bag, tmp_path, method):
    out = tmp_path / "draft.csv"
    assert main(["annotate", "--bag", str(bag), "--out", str(out), "--model", str(tiny_model_dir),
                 "--method", method, "--segment-seconds", "2"]) == 0
    text = out.read_text()
    assert "DRAFT by vljepa-ros annotate" in text and "retrieval over captions.txt" in text  # no prefix decoder
    stream = read_stream_bag(bag)
    truth = read_segment_csv(out, stream.stamps_ns)
    labelled = with_ground_truth(stream, truth, out)
    labelled.allows_gaps = False
    labelled.validate()  # the draft tiles every frame
    assert all(segment.label for segment in truth.segments)
    assert all(a.label != b.label for a, b in zip(truth.segments, truth.segments[1:]))  # equal runs merged

def test_eval_with_labels_uses_the_annotation(tiny_model_dir, bag, tmp_path):
    draft = tmp_path / "draft.csv"
    assert main(["annotate", "--bag", str(bag), "--out", str(draft), "--model", str(tiny_model_dir)]) == 0
    out = tmp_path / "eval.json"
    assert main(["eval", "--model", str(tiny_model_dir), "--bag", str(bag), "--labels", str(draft),
                 "--json", str(out), "--no-plots"]) == 0
    report = json.loads(out.read_text())
    truth = read_segment_csv(draft, read_stream_bag(bag).stamps_ns)
    assert report["data_source"]["labels"] == str(draft)
    assert report["stream"]["segments"] == len(truth.segments)
    assert report["stream"]["label_bank_size"] == len(truth.label_bank) and report["stream"]["action_items"] == 0
    assert report["uniform_1hz_cider_d"] is not None and report["boundary_f1_2s"] is not None

def test_eval_labels_without_a_bag_is_refused(tiny_model_dir, tmp_path):
    with pytest.raises(SystemExit, match="--labels"):
        main(["eval", "--model", str(tiny_model_dir), "--labels", str(tmp_path / "x.csv"), "--no-plots"])
