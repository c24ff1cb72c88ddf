"""World streams through rosbag2 bags (mcap and sqlite3, Image and CompressedImage) and `make-data`."""
import json

import numpy as np
import pytest
from rosbags.rosbag2 import StoragePlugin, Writer

from vljepa_ros.cli import main as cli_main
from vljepa_ros.world import bag_io, dataset, tabletop


@pytest.fixture(scope="module")
def stream():
    return tabletop.generate_stream(seed=11, num_episodes=1, image_size=48)


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
@pytest.mark.parametrize("compressed", [False, True])
def test_round_trip_keeps_frames_stamps_and_ground_truth(tmp_path, stream, storage, compressed):
    path = bag_io.write_stream_bag(tmp_path / "bag", stream, compressed=compressed, storage=storage)
    assert (path / bag_io.GROUNDTRUTH_FILE).is_file()
    assert any(f.suffix == (".mcap" if storage == "mcap" else ".db3") for f in path.iterdir())
    back = bag_io.read_stream_bag(path)
    assert back.frames.shape == stream.frames.shape
    if compressed:  # JPEG: close, not equal
        assert np.abs(back.frames.astype(np.int16) - stream.frames).mean() < 6.0
    else:
        assert np.array_equal(back.frames, stream.frames)
    assert np.array_equal(back.stamps_ns, stream.stamps_ns)
    assert (back.name, back.seed, back.fps) == (stream.name, stream.seed, stream.fps)
    assert back.segments == stream.segments
    assert back.action_items == stream.action_items
    assert back.label_bank == stream.label_bank


def test_iter_bag_images_yields_stamped_rgb(tmp_path, stream):
    path = bag_io.write_stream_bag(tmp_path / "bag", stream, topic="/robot/camera")
    items = list(bag_io.iter_bag_images(path, "/robot/camera"))
    assert [stamp for stamp, _ in items] == stream.stamps_ns.tolist()
    assert np.array_equal(items[5][1], stream.frames[5])


def test_groundtruth_json_indexes_frames_by_stamp(tmp_path, stream):
    path = bag_io.write_stream_bag(tmp_path / "bag", stream)
    truth = json.loads((path / bag_io.GROUNDTRUTH_FILE).read_text())
    assert truth["frame_count"] == stream.frame_count and truth["topic"] == bag_io.DEFAULT_TOPIC
    item = truth["action_items"][0]
    assert item["before_ns"] == stream.stamps_ns[item["before_index"]]
    assert truth["segments"][-1]["end_index"] == stream.frame_count


def _write_raw_bag(path, encoding: str, pixels: np.ndarray, stamps_ns: list[int]) -> None:
    """A bag as another recorder would write it: bgr8/mono8 encodings, row padding, no groundtruth.json."""
    typestore = bag_io._TYPESTORE
    Image = typestore.types["sensor_msgs/msg/Image"]
    with Writer(path, version=8, storage_plugin=StoragePlugin.MCAP) as writer:
        connection = writer.add_connection("/cam", "sensor_msgs/msg/Image", typestore=typestore)
        height, width = pixels.shape[:2]
        channels = 1 if pixels.ndim == 2 else 3
        step = width * channels + 4  # padded rows
        for stamp in stamps_ns:
            rows = np.zeros((height, step), np.uint8)
            rows[:, : width * channels] = pixels.reshape(height, -1)
            message = Image(header=bag_io._header(stamp), height=height, width=width, encoding=encoding,
                            is_bigendian=0, step=step, data=rows.reshape(-1))
            writer.write(connection, stamp, typestore.serialize_cdr(message, "sensor_msgs/msg/Image"))


def test_reads_bgr8_and_mono8_bags_without_ground_truth(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 255, size=(6, 5, 3), dtype=np.uint8)
    stamps = [1_000_000_000 + i * 50_000_000 for i in range(4)]
    _write_raw_bag(tmp_path / "bgr", "bgr8", rgb[:, :, ::-1], stamps)
    back = bag_io.read_stream_bag(tmp_path / "bgr")
    assert np.array_equal(back.frames[0], rgb) and back.segments == [] and back.label_bank == []
    assert back.fps == pytest.approx(20.0)
    _write_raw_bag(tmp_path / "mono", "mono8", rgb[:, :, 0], stamps)
    _, grey = next(bag_io.iter_bag_images(tmp_path / "mono"))
    assert grey.shape == (6, 5, 3) and np.array_equal(grey[:, :, 1], rgb[:, :, 0])


def test_clear_errors(tmp_path, stream):
    path = bag_io.write_stream_bag(tmp_path / "bag", stream)
    with pytest.raises(bag_io.BagError, match="already exists"):
        bag_io.write_stream_bag(path, stream)
    bag_io.write_stream_bag(path, stream, overwrite=True, compressed=True)
    with pytest.raises(bag_io.BagError, match="unknown bag storage"):
        bag_io.write_stream_bag(tmp_path / "other", stream, storage="rosbag1")
    with pytest.raises(bag_io.BagError, match="not in bag"):
        bag_io.read_stream_bag(path, topic="/nope")
    with pytest.raises(bag_io.BagError, match="does not exist"):
        list(bag_io.iter_bag_images(tmp_path / "missing"))


def test_make_data_writes_bag_and_examples(tmp_path, capsys):
    bag, examples = tmp_path / "demo", tmp_path / "train.npz"
    code = cli_main(["make-data", "--world", "tabletop", "--seed", "1000001", "--episodes", "1", "--image-size", "32",
                     "--bag", str(bag), "--compressed", "--storage", "sqlite3",
                     "--examples", str(examples), "--count", "5", "--frames-per-clip", "4"])
    assert code == 0
    stream = bag_io.read_stream_bag(bag)
    assert stream.seed == 1000001 and stream.frames.shape[1:] == (32, 32, 3)
    assert stream.segments == tabletop.generate_stream(1000001, 1, image_size=32).segments
    loaded = dataset.load_examples(examples)
    assert len(loaded) == 5 and loaded[0].frames.shape == (4, 32, 32, 3)
    assert "held-out" in capsys.readouterr().out
