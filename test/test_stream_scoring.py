"""rank_actions, LabelBank, FrameHistory and validate_embedding."""
import numpy as np
import pytest

from vljepa_ros.errors import EmptyLabelBankError, InvalidEmbeddingError
from vljepa_ros.stream.action_scoring import rank_actions
from vljepa_ros.stream.embedding_checks import validate_embedding
from vljepa_ros.stream.history import FrameHistory
from vljepa_ros.stream.label_bank import LabelBank

CANDIDATES = ["push the cube", "pick up the ball", "open the drawer", "wave"]
TEXT_EMBEDDINGS = np.eye(4, 6, dtype=np.float32) * 3.0  # not unit: scoring must normalise


def test_rank_actions_orders_by_cosine_with_softmax_probabilities():
    state = np.array([0.1, 0.9, 0.0, 0.4, 0, 0], dtype=np.float32)
    ranked = rank_actions(state, TEXT_EMBEDDINGS, CANDIDATES, temperature=0.07)
    assert [r.text for r in ranked] == ["pick up the ball", "wave", "push the cube", "open the drawer"]
    assert [r.index for r in ranked] == [1, 3, 0, 2]
    unit = state / np.linalg.norm(state)
    assert ranked[0].score == pytest.approx(unit[1], rel=1e-5)
    probabilities = np.array([r.probability for r in ranked])
    assert probabilities.sum() == pytest.approx(1.0) and np.all(np.diff(probabilities) <= 0)
    expected = np.exp(np.array([r.score for r in ranked]) / 0.07)
    np.testing.assert_allclose(probabilities, expected / expected.sum(), rtol=1e-5)


def test_rank_actions_rejects_bad_input():
    with pytest.raises(EmptyLabelBankError):
        rank_actions(np.ones(6), np.zeros((0, 6)), [])
    with pytest.raises(InvalidEmbeddingError, match="NaN"):
        rank_actions(np.full(6, np.nan), TEXT_EMBEDDINGS, CANDIDATES)
    with pytest.raises(InvalidEmbeddingError, match="dimension"):
        rank_actions(np.ones(5), TEXT_EMBEDDINGS, CANDIDATES)
    with pytest.raises(InvalidEmbeddingError, match="4 candidates but 3"):
        rank_actions(np.ones(6), TEXT_EMBEDDINGS[:3], CANDIDATES)


def test_label_bank_top_k_and_from_texts():
    bank = LabelBank.from_texts(CANDIDATES, lambda texts: TEXT_EMBEDDINGS[: len(texts)])
    top = bank.top_k(np.array([0, 0, 1.0, 0.5, 0, 0]), k=2)
    assert [label for label, _ in top] == ["open the drawer", "wave"]
    assert top[0][1] == pytest.approx(1 / np.sqrt(1.25), rel=1e-5)
    assert bank.nearest(TEXT_EMBEDDINGS[::-1]).tolist() == [3, 2, 1, 0]
    with pytest.raises(EmptyLabelBankError):
        LabelBank([], np.zeros((0, 6)))
    with pytest.raises(EmptyLabelBankError):
        LabelBank.from_texts([], lambda texts: np.zeros((0, 6)))
    with pytest.raises(InvalidEmbeddingError):
        bank.top_k(np.ones(5))


def test_frame_history_nearest_tolerance_and_eviction():
    history = FrameHistory(max_age_s=1.0, max_frames=100)
    for index in range(30):  # 10 Hz for 3 s: only the last second survives
        history.add(index * 100_000_000, f"frame{index}")
    assert len(history) == 11 and history.available_range_ns() == (1_900_000_000, 2_900_000_000)
    assert history.nearest(2_430_000_000, tolerance_s=0.05) == (2_400_000_000, "frame24")
    with pytest.raises(LookupError, match="from 1900000000 to 2900000000"):
        history.nearest(1_000_000_000, tolerance_s=0.05)
    capped = FrameHistory(max_age_s=100.0, max_frames=3)
    for stamp in (5, 1, 3, 4):  # out of order inserts stay sorted
        capped.add(stamp, stamp)
    assert capped.available_range_ns() == (3, 5)
    with pytest.raises(LookupError, match="no frames"):
        FrameHistory().nearest(0)


def test_validate_embedding():
    assert validate_embedding([1, 2, 3], 3).dtype == np.float32
    for bad, message in ([[1, np.nan, 2], "NaN"], [[1, 2], "dimension 2, expected 3"], [np.zeros(3), "all zeros"],
                         [np.ones((2, 3)), "1-D"]):
        with pytest.raises(InvalidEmbeddingError, match=message):
            validate_embedding(bad, 3)


def test_require_unit_norm_refuses_other_norms():
    from vljepa_ros.stream.embedding_checks import require_unit_norm

    unit = np.ones(4, np.float32) / 2
    assert require_unit_norm(unit) is unit and require_unit_norm(unit * 1.005) is not None
    for norm in (37.0, 0.5, 1.02):
        with pytest.raises(InvalidEmbeddingError, match="unit vectors"):
            require_unit_norm(unit * norm)
