"""OnlineShiftDetector: one event per true boundary, none inside segments, timing rules, bad input."""
import numpy as np
import pytest

from stream_synthetic import piecewise_constant_stream
from vljepa_ros.errors import InvalidEmbeddingError
from vljepa_ros.stream.shift_detector import OnlineShiftDetector, best_split

LENGTHS = [20, 14, 25, 17, 22]


def run(detector, embeddings, start_ns, end_ns):
    events = [detector.update(e, s, t) for e, s, t in zip(embeddings, start_ns, end_ns)]
    return [event for event in events if event is not None], detector.flush()


def test_fires_once_per_true_boundary_and_never_inside_segments():
    embeddings, start_ns, end_ns, boundaries = piecewise_constant_stream(LENGTHS, seed=3)
    # min_interval_s=0: only the rising-edge rule keeps the detector from firing again while the
    # variance window still straddles the boundary.
    detector = OnlineShiftDetector(smoothing_window=3, variance_window=6, threshold=0.2, min_interval_s=0.0, max_segment_s=0.0)
    events, last = run(detector, embeddings, start_ns, end_ns)
    assert [event.trigger for event in events] == ["shift"] * len(boundaries)
    # The segment each event closes ends at (or within one step of) the planted boundary.
    ends = [event.end_index for event in events]
    assert np.all(np.abs(np.array(ends) - boundaries) <= 1), (ends, boundaries)
    # Segments tile the stream and carry the stamps of their first/last embeddings.
    segments = events + [last]
    assert last.trigger == "flush" and last.end_index == len(embeddings)
    assert [s.start_index for s in segments[1:]] == [s.end_index for s in segments[:-1]]
    for segment in segments:
        assert segment.count == segment.end_index - segment.start_index
        assert segment.start_ns == start_ns[segment.start_index] and segment.end_ns == end_ns[segment.end_index - 1]
        assert np.isclose(np.linalg.norm(segment.embedding), 1.0, atol=1e-5)
        assert segment.threshold == 0.2
    assert all(event.shift_score > 0.2 for event in events)


def test_segment_mean_points_at_the_segment_direction():
    embeddings, start_ns, end_ns, boundaries = piecewise_constant_stream([15, 15], seed=5)
    events, last = run(OnlineShiftDetector(3, 6, 0.2, 1.0, max_segment_s=0.0), embeddings, start_ns, end_ns)
    first = events[0]
    truth = embeddings[:15].mean(axis=0)
    assert np.dot(first.embedding, truth / np.linalg.norm(truth)) > 0.99


def test_no_event_on_a_stream_without_changes():
    embeddings, start_ns, end_ns, _ = piecewise_constant_stream([80], seed=1)
    events, last = run(OnlineShiftDetector(3, 6, 0.2, 1.0, max_segment_s=0.0), embeddings, start_ns, end_ns)
    assert events == [] and last.count == 80


def test_min_interval_suppresses_close_shifts():
    embeddings, start_ns, end_ns, _ = piecewise_constant_stream([20, 6, 20], seed=2, fps=2.0)
    detector = OnlineShiftDetector(2, 4, 0.2, min_interval_s=10.0, max_segment_s=0.0)  # the middle segment lasts 3 s
    events, _ = run(detector, embeddings, start_ns, end_ns)
    assert len(events) == 1 and detector.shifts_suppressed == 1
    relaxed, _ = run(OnlineShiftDetector(2, 4, 0.2, min_interval_s=1.0, max_segment_s=0.0), embeddings, start_ns, end_ns)
    assert len(relaxed) == 2


def test_max_segment_closes_long_segments():
    embeddings, start_ns, end_ns, _ = piecewise_constant_stream([38], seed=4, fps=2.0)
    events, last = run(OnlineShiftDetector(3, 6, 0.2, 1.0, max_segment_s=5.0), embeddings, start_ns, end_ns)
    assert [event.trigger for event in events] == ["max_segment"] * 3
    # 5 s from the first embedding's start stamp (0.5 s before its end) to an end stamp: 10 embeddings at 2 Hz.
    assert [event.count for event in events] == [10, 10, 10] and last.count == 8
    assert all(event.end_ns - event.start_ns >= 5_000_000_000 for event in events)


def test_bad_embeddings_raise_and_leave_state_unchanged():
    detector = OnlineShiftDetector(3, 6, 0.2, 1.0, max_segment_s=0.0)
    detector.update(np.ones(8), 0, 1)
    for bad in (np.full(8, np.nan), np.array([1.0] * 7 + [np.inf]), np.ones(9), np.zeros(8)):
        with pytest.raises(InvalidEmbeddingError):
            detector.update(bad, 2, 3)
    assert detector.embeddings_seen == 1 and detector.flush().count == 1


def test_best_split_finds_the_change():
    block = np.concatenate([np.zeros((5, 3)), np.ones((3, 3))])
    assert best_split(block) == 5


def test_bad_parameters_raise():
    with pytest.raises(ValueError):
        OnlineShiftDetector(0, 6, 0.2, 1.0, max_segment_s=0.0)
    with pytest.raises(ValueError):
        OnlineShiftDetector(3, 1, 0.2, 1.0, max_segment_s=0.0)
    with pytest.raises(ValueError):
        OnlineShiftDetector(3, 6, 0.0, 1.0, max_segment_s=0.0)


def test_reused_embeddings_are_treated_like_any_other():
    """perception's skip_unchanged_clips republishes the last inferred embedding for a still scene: runs of
    identical vectors whose stamps advance. They add no variance inside a segment, a change after a run still
    fires at its boundary, and max_segment_s still closes a still segment on time."""
    embeddings, start_ns, end_ns, boundaries = piecewise_constant_stream([24, 24], seed=6)
    held = embeddings[(np.arange(len(embeddings)) // 4) * 4]  # every 4th clip inferred, the 3 after it reused
    events, last = run(OnlineShiftDetector(3, 6, 0.2, 1.0, max_segment_s=0.0), held, start_ns, end_ns)
    assert [event.trigger for event in events] == ["shift"] and abs(events[0].end_index - boundaries[0]) <= 1
    still = np.repeat(embeddings[:1], 38, axis=0)  # one inferred clip, reused for 19 s at 2 Hz
    detector = OnlineShiftDetector(3, 6, 0.2, 1.0, max_segment_s=5.0)
    events, last = run(detector, still, start_ns[:38], end_ns[:38])
    assert [event.count for event in events] == [10, 10, 10] and last.count == 8 and detector.last_score < 1e-9
    assert all(event.trigger == "max_segment" for event in events)
