"""Training examples from the tabletop world: kinds, shapes, determinism, action clips and .npz round trip."""
import numpy as np
import pytest

from vljepa_ros.world import dataset, tabletop
from vljepa_ros.errors import InvalidClipError
from vljepa_ros.stream.clips import make_action_clip
from vljepa_ros.world.types import WorldDataError


@pytest.fixture(scope="module")
def examples():
    return dataset.generate_examples(seed=3, count=60, frames_per_clip=8, image_size=64)


def test_examples_have_the_requested_count_shapes_and_kinds(examples):
    assert len(examples) == 60
    assert {e.kind for e in examples} == {"caption", "qa", "action"}
    for e in examples:
        assert e.frames.shape == (8, 64, 64, 3) and e.frames.dtype == np.uint8
        assert e.query and e.answer


def test_queries_and_answers_match_their_kind(examples):
    bank = set(tabletop.label_bank())
    corpus = set(dataset.text_corpus())
    for e in examples:
        assert e.query in corpus and e.answer in corpus
        if e.kind == "caption":
            assert e.query == dataset.CAPTION_QUERY
        elif e.kind == "action":
            assert e.query == dataset.ACTION_QUERY and e.answer in bank
            # first half one state, second half another
            assert all(np.array_equal(e.frames[0], f) for f in e.frames[:4])
            assert all(np.array_equal(e.frames[4], f) for f in e.frames[4:])
        else:
            assert e.query not in (dataset.CAPTION_QUERY, dataset.ACTION_QUERY)


def test_generation_is_deterministic_per_seed(examples):
    again = dataset.generate_examples(seed=3, count=60, frames_per_clip=8, image_size=64)
    assert [(e.query, e.answer, e.kind) for e in again] == [(e.query, e.answer, e.kind) for e in examples]
    assert all(np.array_equal(a.frames, b.frames) for a, b in zip(again, examples))
    other = dataset.generate_examples(seed=4, count=10, frames_per_clip=8, image_size=64)
    assert not all(np.array_equal(a.frames, b.frames) for a, b in zip(other, examples))


def test_make_action_clip_halves():
    before = np.zeros((4, 4, 3), np.uint8)
    after = np.full((4, 4, 3), 255, np.uint8)
    clip = make_action_clip(before, after, 5)
    assert clip.shape == (5, 4, 4, 3)
    assert (clip[:2] == 0).all() and (clip[2:] == 255).all()
    with pytest.raises(InvalidClipError):
        make_action_clip(before, after[:2], 4)


def test_save_and_load_round_trip(tmp_path, examples):
    path = tmp_path / "examples.npz"
    dataset.save_examples(path, examples[:10])
    loaded = dataset.load_examples(path)
    assert len(loaded) == 10
    for a, b in zip(loaded, examples[:10]):
        assert np.array_equal(a.frames, b.frames) and (a.query, a.answer, a.kind) == (b.query, b.answer, b.kind)
    with pytest.raises(WorldDataError, match="does not exist"):
        dataset.load_examples(tmp_path / "missing.npz")


def test_examples_carry_hard_negatives_and_caption_classes(tmp_path):
    """Action examples: their item's 3 distractors. Caption examples: their segment's confusable labels as
    negatives and the label they paraphrase as answer_class. Both survive a save; old files still load."""
    actions = dataset.generate_examples(seed=5, count=6, frames_per_clip=4, image_size=32,
                                        kind_weights={"action": 1.0})
    for example in actions:
        assert len(example.negatives) == 3 and example.answer not in example.negatives
        assert example.answer_class == ""
    captions = dataset.generate_examples(seed=5, count=4, frames_per_clip=4, image_size=32,
                                         kind_weights={"caption": 1.0})
    bank = set(tabletop.label_bank())
    for example in captions:
        assert example.answer_class in bank and example.answer in tabletop.action_captions(
            *tabletop_key(example.answer_class))
        assert example.negatives == tuple(tabletop.confusable_labels(*tabletop_key(example.answer_class)))
    path = tmp_path / "mixed.npz"
    dataset.save_examples(path, actions + captions)
    loaded = dataset.load_examples(path)
    assert [(e.negatives, e.answer_class) for e in loaded] == [(e.negatives, e.answer_class) for e in actions + captions]
    # files saved before hard negatives and answer classes existed still load, with neither
    with np.load(path) as data:
        np.savez_compressed(tmp_path / "old.npz",
                            **{k: data[k] for k in data.files if k not in ("negatives", "answer_classes")})
    assert all(e.negatives == () and e.answer_class == "" for e in dataset.load_examples(tmp_path / "old.npz"))


def tabletop_key(label: str) -> tuple:
    return next(key for key in tabletop.all_action_keys() if tabletop.action_label(*key) == label)


def test_seed_convention():
    assert not dataset.is_held_out_seed(0) and not dataset.is_held_out_seed(dataset.HELD_OUT_SEED_START - 1)
    assert dataset.is_held_out_seed(dataset.DEMO_SEED)


def test_kind_weights_select_kinds():
    only_actions = dataset.generate_examples(seed=5, count=6, frames_per_clip=4, image_size=32,
                                             kind_weights={"action": 1.0})
    assert {e.kind for e in only_actions} == {"action"}
    with pytest.raises(WorldDataError, match="unknown example kinds"):
        dataset.generate_examples(seed=5, count=2, frames_per_clip=4, image_size=32, kind_weights={"video": 1.0})


def test_streams_without_qa_or_action_items_fall_back_to_captions():
    stream = tabletop.generate_stream(seed=9, num_episodes=1, image_size=32)
    stream.action_items = []
    for segment in stream.segments:
        segment.qa_pairs = []
    examples = dataset.examples_from_stream(stream, np.random.default_rng(0), 12, frames_per_clip=4)
    assert {e.kind for e in examples} == {"caption"}
    stream.segments = []
    with pytest.raises(WorldDataError, match="no ground-truth segments"):
        dataset.examples_from_stream(stream, np.random.default_rng(0), 1, frames_per_clip=4)


def test_streaming_clips_end_inside_their_segment_and_reach_back_across_its_start():
    stream = tabletop.generate_stream(seed=9, num_episodes=1, image_size=32)
    assert stream.frame_count < 256
    stream.frames = np.broadcast_to(np.arange(stream.frame_count, dtype=np.uint8)[:, None, None, None],
                                    stream.frames.shape).copy()  # each frame holds its own index
    segment_at = {i: s for s in stream.segments for i in range(s.start_index, s.end_index)}
    examples = dataset.examples_from_stream(stream, np.random.default_rng(3), 200, frames_per_clip=8,
                                            kind_weights={"caption": 1.0}, streaming_share=1.0)
    crossing = 0
    for example in examples:
        indices = example.frames[:, 0, 0, 0].astype(int)
        last_segment = segment_at[indices[-1]]
        assert example.answer in last_segment.captions  # the clip's last frame is the truth
        assert np.all(np.diff(indices) == 1) or indices[0] == 0  # consecutive, or padded at the stream's start
        crossing += int(segment_at[indices[0]] is not last_segment)
    assert crossing > 0  # boundaries are seen as a live stream shows them
    inside = dataset.examples_from_stream(stream, np.random.default_rng(3), 50, frames_per_clip=8,
                                          kind_weights={"caption": 1.0})
    for example in inside:
        indices = example.frames[:, 0, 0, 0].astype(int)
        assert segment_at[indices.min()] is segment_at[indices.max()]
        assert example.answer in segment_at[indices.max()].captions
    with pytest.raises(WorldDataError, match="streaming_share"):
        dataset.examples_from_stream(stream, np.random.default_rng(0), 1, frames_per_clip=4, streaming_share=1.5)


def test_streaming_share_zero_draws_what_the_option_drew_before_it_existed():
    stream = tabletop.generate_stream(seed=9, num_episodes=1, image_size=32)
    default = dataset.examples_from_stream(stream, np.random.default_rng(1), 30, frames_per_clip=4)
    zero = dataset.examples_from_stream(stream, np.random.default_rng(1), 30, frames_per_clip=4, streaming_share=0.0)
    half = dataset.examples_from_stream(stream, np.random.default_rng(1), 30, frames_per_clip=4, streaming_share=0.5)
    assert [e.answer for e in zero] == [e.answer for e in default]
    assert all(np.array_equal(a.frames, b.frames) for a, b in zip(zero, default))
    assert not all(np.array_equal(a.frames, b.frames) for a, b in zip(half, default))
