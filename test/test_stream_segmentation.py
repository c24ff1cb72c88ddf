"""Ward segmentation with temporal connectivity, decode points, and uniform decoding indices."""
import numpy as np
import pytest

from stream_synthetic import piecewise_constant_stream
from vljepa_ros.stream.segmentation import (
    runs_of_labels, segment_decode_points, segment_midpoints, uniform_decode_indices, ward_segments)


def test_ward_finds_planted_boundaries_as_contiguous_segments():
    embeddings, _, _, boundaries = piecewise_constant_stream([12, 30, 7, 20, 15], seed=7)
    segments = ward_segments(embeddings, 5)
    assert segments[0][0] == 0 and segments[-1][1] == len(embeddings)
    assert all(a[1] == b[0] for a, b in zip(segments, segments[1:]))  # contiguous, time order
    assert [start for start, _ in segments[1:]] == boundaries


def test_ward_with_fewer_segments_merges_rather_than_splitting_inside():
    # Two very similar neighbouring segments (shared direction) should merge first.
    embeddings, _, _, boundaries = piecewise_constant_stream([20, 20, 20], seed=8, noise=0.3)
    embeddings[20:40] = embeddings[:20] + 0.01  # segment 2 ~ segment 1
    segments = ward_segments(embeddings, 2)
    assert segments == [(0, 40), (40, 60)]


def test_ward_edge_cases():
    embeddings = np.eye(4, dtype=np.float32)
    assert ward_segments(embeddings, 1) == [(0, 4)]
    assert ward_segments(embeddings, 10) == [(0, 1), (1, 2), (2, 3), (3, 4)]
    assert ward_segments(np.zeros((0, 4)), 3) == []


def test_decode_points_are_midpoints_with_unit_segment_means():
    embeddings = np.array([[1, 0], [1, 0], [1, 0], [0, 2], [0, 2]], dtype=np.float32)
    indices, means = segment_decode_points(embeddings, [(0, 3), (3, 5)])
    assert indices.tolist() == [1, 3]
    np.testing.assert_allclose(means, [[1, 0], [0, 1]])
    assert segment_midpoints([(0, 4), (4, 5), (5, 10)]).tolist() == [1, 4, 7]
    assert runs_of_labels(np.array([3, 3, 1, 1, 1, 3])) == [(0, 2), (2, 5), (5, 6)]


def test_uniform_decode_indices_pick_the_newest_sample_at_each_tick():
    stamps = (np.arange(21) * 0.5e9).astype(np.int64)  # 2 Hz for 10 s
    assert uniform_decode_indices(stamps, 1.0).tolist() == list(range(0, 21, 2))
    assert uniform_decode_indices(stamps, 0.25).tolist() == [0, 8, 16]
    assert uniform_decode_indices(stamps, 4.0).tolist() == list(range(21))  # faster than the data: each once
    irregular = np.array([0, 0.9e9, 2.2e9, 3.1e9], dtype=np.int64)
    assert uniform_decode_indices(irregular, 1.0).tolist() == [0, 1, 2]  # ticks 0,1,2,3 s -> #0, #1, #1 again, #2
    with pytest.raises(ValueError):
        uniform_decode_indices(stamps, 0.0)
