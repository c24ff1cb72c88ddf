"""The tabletop world: deterministic per seed, consistent ground truth, visibly different segments."""
import numpy as np
import pytest

from vljepa_ros.world import tabletop
from vljepa_ros.world.types import WorldDataError


@pytest.fixture(scope="module")
def stream():
    return tabletop.generate_stream(seed=7, num_episodes=3, fps=10.0, image_size=64)


def test_same_seed_gives_identical_stream(stream):
    again = tabletop.generate_stream(seed=7, num_episodes=3, fps=10.0, image_size=64)
    assert np.array_equal(stream.frames, again.frames)
    assert np.array_equal(stream.stamps_ns, again.stamps_ns)
    assert [s.to_dict() for s in stream.segments] == [s.to_dict() for s in again.segments]
    assert [a.to_dict() for a in stream.action_items] == [a.to_dict() for a in again.action_items]


def test_other_seed_gives_other_stream(stream):
    other = tabletop.generate_stream(seed=8, num_episodes=3, fps=10.0, image_size=64)
    n = min(stream.frame_count, other.frame_count)
    assert not np.array_equal(stream.frames[:n], other.frames[:n])


def test_ground_truth_does_not_depend_on_image_size(stream):
    large = tabletop.generate_stream(seed=7, num_episodes=3, fps=10.0, image_size=96)
    assert large.frames.shape[1:] == (96, 96, 3)
    assert [s.to_dict() for s in large.segments] == [s.to_dict() for s in stream.segments]


def test_episodes_can_be_generated_in_chunks(stream):
    tail = tabletop.generate_stream(seed=7, num_episodes=2, fps=10.0, image_size=64, first_episode=1)
    first_episode_frames = sum(s.frame_count for s in stream.segments if s.episode_index == 0)
    assert [s.label for s in tail.segments] == [s.label for s in stream.segments if s.episode_index >= 1]
    assert tail.frame_count == stream.frame_count - first_episode_frames


def test_stream_shapes_and_stamps(stream):
    assert stream.frames.dtype == np.uint8 and stream.frames.shape[1:] == (64, 64, 3)
    assert stream.stamps_ns.dtype == np.int64
    assert np.all(np.diff(stream.stamps_ns) == 100_000_000)  # 10 Hz


def test_segments_tile_the_stream_with_known_labels(stream):
    stream.validate()
    assert stream.segments[0].start_index == 0 and stream.segments[-1].end_index == stream.frame_count
    bank = set(stream.label_bank)
    for previous, current in zip(stream.segments, stream.segments[1:]):
        assert previous.end_index == current.start_index
        assert previous.end_ns == current.start_ns
    for segment in stream.segments:
        assert segment.label in bank
        assert segment.captions[0] == segment.label and len(set(segment.captions)) >= 3
        assert 2.0 <= segment.frame_count / stream.fps <= 5.0
        assert segment.start_ns == stream.stamps_ns[segment.start_index]
        assert segment.qa_pairs and all(q and a for q, a in segment.qa_pairs)
    assert (stream.segment_index_per_frame() >= 0).all()


def test_action_items_have_four_candidates_with_one_answer(stream):
    assert len(stream.action_items) == len(stream.segments)
    for item, segment in zip(stream.action_items, stream.segments):
        assert len(item.candidates) == 4 and len(set(item.candidates)) == 4
        assert item.candidates.count(item.action) == 1
        assert item.candidates[item.answer_index] == item.action == segment.label
        assert all(c in stream.label_bank for c in item.candidates)
        assert segment.start_index <= item.before_index < item.after_index < segment.end_index
    # shuffled: the answer is not always in the same slot
    assert len({item.answer_index for item in stream.action_items}) > 1


def test_confusable_labels_are_the_other_shapes_and_the_action_reversed_or_turned():
    bank = set(tabletop.label_bank())
    for key in tabletop.all_action_keys():
        labels = tabletop.confusable_labels(*key)
        assert set(labels) <= bank and tabletop.action_label(*key) not in labels and len(set(labels)) == len(labels)
    assert tabletop.confusable_labels("pick", "red", "cube") == [
        "pick up the red ball", "pick up the red triangle", "put down the red cube"]
    assert set(tabletop.confusable_labels("move", "blue", "ball", "left")) == {
        "move the blue cube left", "move the blue triangle left", "move the blue ball right",
        "move the blue ball forward", "move the blue ball back", "push the blue ball left"}
    assert "the green cube disappears" in tabletop.confusable_labels("appear", "green", "cube")


def test_segments_carry_their_confusable_labels_through_a_ground_truth_file(stream):
    for segment in stream.segments:
        key = (segment.attributes["verb"], segment.attributes["colour"], segment.attributes["shape"],
               segment.attributes.get("direction"))
        assert segment.confusable_labels == tuple(tabletop.confusable_labels(*key))
    from vljepa_ros.world.types import Segment
    assert all(Segment.from_dict(s.to_dict()) == s for s in stream.segments)
    plain = Segment(0, 2, 0, 2, "a label", ["a label"])  # other worlds' files keep their old keys
    assert "confusable_labels" not in plain.to_dict() and Segment.from_dict(plain.to_dict()) == plain


def test_label_bank_is_complete_and_unique():
    bank = tabletop.label_bank()
    assert len(bank) == len(set(bank)) == 12 * (5 + 2 * 4)
    assert "pick up the red cube" in bank and "push the blue ball left" in bank


def test_frames_differ_across_segments(stream):
    means = [stream.frames[s.start_index : s.end_index].astype(np.float32) for s in stream.segments]
    for segment, frames in zip(stream.segments, means):
        # something moves inside every segment
        assert np.abs(frames[-1] - frames[0]).mean() > 0.5, segment.label
    for a, b in zip(stream.segments, stream.segments[1:]):
        middle_a = stream.frames[(a.start_index + a.end_index) // 2].astype(np.float32)
        middle_b = stream.frames[(b.start_index + b.end_index) // 2].astype(np.float32)
        assert np.abs(middle_a - middle_b).mean() > 0.5


def test_every_verb_occurs_over_a_few_episodes():
    stream = tabletop.generate_stream(seed=1, num_episodes=12, image_size=32)
    assert {s.attributes["verb"] for s in stream.segments} == set(tabletop.VERBS)


def test_validate_rejects_broken_ground_truth(stream):
    broken = tabletop.generate_stream(seed=7, num_episodes=1, image_size=32)
    broken.segments[0].end_index -= 1
    with pytest.raises(WorldDataError, match="tile"):
        broken.validate()
    broken = tabletop.generate_stream(seed=7, num_episodes=1, image_size=32)
    broken.action_items[0].candidates[broken.action_items[0].answer_index - 1] = broken.action_items[0].action
    with pytest.raises(WorldDataError):
        broken.validate()


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="num_episodes"):
        tabletop.generate_stream(seed=0, num_episodes=0)
    with pytest.raises(ValueError, match="image_size"):
        tabletop.generate_stream(seed=0, num_episodes=1, image_size=8)
