"""Familiarity: how much a clip looks like the data the model was trained (or calibrated) on.

VL-JEPA maps any clip to some point of its embedding space, and the nearest bank text always wins:
a street scene still "is" the robot reaching for the green cube. What tells the two apart is the
X-encoder's view of the clip before the predictor squeezes it into the shared space: the mean and the
standard deviation of its visual tokens over space and time (`visual_statistics`, computed inside every
engine's clip graph, 2 x the encoder width values). A Gaussian fitted to those statistics on
in-distribution clips (each value standardised, then the OAS-shrunk covariance: the statistics
outnumber the clips of a small calibration set) gives each clip a Mahalanobis distance;
the distances of held-out in-distribution clips turn it into a conformal p-value:

    familiarity = (1 + #{held-out clips at least as far}) / (1 + #held-out clips)      in (0, 1]

so a clip is `in_distribution` when familiarity >= the stated false-alarm rate (default 5%): about
that share of in-distribution clips is flagged, and a clip farther out than every held-out clip gets
the smallest familiarity there is. Chosen by measurement (README "Knowing when it does not know"):
the predicted embedding's own Mahalanobis distance, its k nearest training neighbours and the best
bank similarity separated real video, noise and blank frames from the worlds far worse.

The statistics live in the model directory as `familiarity.safetensors` (FAMILIARITY_FILE), written
by `vljepa-ros calibrate` and at the end of `vljepa-ros train`. Scoring a clip is one matrix-vector
product (D = 256 for the small model: microseconds; 2048 for the paper preset).
"""
from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vljepa_ros.errors import VLJepaError

FAMILIARITY_FILE = "familiarity.safetensors"
FORMAT_VERSION = "1"
DEFAULT_FALSE_ALARM_RATE = 0.05
# Held-out share of every calibration source: its last clips (clips overlap in time, so a random
# split would put near-copies of the threshold clips into the fit and set the threshold too tight).
DEFAULT_HELD_OUT_SHARE = 0.3
MIN_FIT_CLIPS = 8
MIN_HELD_OUT_CLIPS = 4


class FamiliarityError(VLJepaError):
    """A familiarity file that is missing, corrupt or made for another model."""


def visual_statistics_dim(encoder_width: int) -> int:
    """Length of the per-clip visual statistics: token mean and token standard deviation."""
    return 2 * int(encoder_width)


@dataclass
class ClipFamiliarity:
    """The familiarity of one clip (or the pooled familiarity of a segment)."""
    familiarity: float  # conformal p-value in (0, 1]: higher is more familiar
    threshold: float  # familiarity below this is unfamiliar (the calibrated false-alarm rate)
    distance: float  # Mahalanobis distance per dimension (RMS): for ranking and logs

    @property
    def in_distribution(self) -> bool:
        return self.familiarity >= self.threshold


@dataclass
class FamiliarityModel:
    """Gaussian statistics of in-distribution visual statistics and the held-out distance distribution."""
    mean: np.ndarray  # (F,) float64
    scale: np.ndarray  # (F,) float64: standard deviation of each value; distances are measured in these units
    precision: np.ndarray  # (F, F) float32: inverse of the shrunk covariance of the standardised values
    held_out_distances: np.ndarray  # (N,) sorted ascending
    false_alarm_rate: float = DEFAULT_FALSE_ALARM_RATE
    info: dict = field(default_factory=dict)  # model id, sources, clip counts, when: written into the file

    @property
    def dimension(self) -> int:
        return int(self.mean.shape[0])

    def distances(self, statistics: np.ndarray) -> np.ndarray:
        """(N, F) or (F,) visual statistics -> Mahalanobis distance per dimension, (N,) or scalar."""
        values = np.asarray(statistics, dtype=np.float64)
        single = values.ndim == 1
        values = np.atleast_2d(values)
        if values.shape[1] != self.dimension:
            raise FamiliarityError(f"visual statistics have {values.shape[1]} values, the familiarity "
                                   f"calibration {self.dimension}: it was made for another model; re-run "
                                   f"`vljepa-ros calibrate`")
        centred = ((values - self.mean) / self.scale).astype(np.float32)
        # One BLAS product in float32: the precision is float32 on disk, and at the paper preset's 2048 values
        # it is 16 MB that every clip reads; einsum over float64 took ~25x longer there.
        squared = np.sum((centred @ self.precision) * centred, axis=1, dtype=np.float64)
        result = np.sqrt(np.maximum(squared, 0.0) / self.dimension)
        return result[0] if single else result

    def familiarity_of_distances(self, distances: np.ndarray | float) -> np.ndarray | float:
        """Conformal p-value of each distance against the held-out in-distribution distances."""
        held = self.held_out_distances
        at_least_as_far = held.size - np.searchsorted(held, np.asarray(distances, dtype=np.float64), side="left")
        return (1.0 + at_least_as_far) / (1.0 + held.size)

    def familiarity(self, statistics: np.ndarray) -> np.ndarray | float:
        return self.familiarity_of_distances(self.distances(statistics))

    def score(self, statistics: np.ndarray) -> ClipFamiliarity:
        """The familiarity of one clip's (F,) visual statistics."""
        distance = float(self.distances(statistics))
        return ClipFamiliarity(float(self.familiarity_of_distances(distance)), self.false_alarm_rate, distance)

    # -- file -------------------------------------------------------------------------------
    @property
    def distance_threshold(self) -> float:
        """The distance past which a clip is unfamiliar (for logs and the README; the flag uses familiarity)."""
        return float(np.quantile(self.held_out_distances, 1.0 - self.false_alarm_rate))

    def save(self, path: str | Path) -> Path:
        """Write to `path`: a file, or a model directory (its FAMILIARITY_FILE)."""
        from safetensors.numpy import save_file

        path = Path(path)
        if path.is_dir():
            path = path / FAMILIARITY_FILE
        metadata = {"format": FORMAT_VERSION, "false_alarm_rate": repr(float(self.false_alarm_rate)),
                    "info": json.dumps(self.info, sort_keys=True)}
        save_file({"mean": self.mean.astype(np.float64), "scale": self.scale.astype(np.float64),
                   "precision": self.precision.astype(np.float32),
                   "held_out_distances": self.held_out_distances.astype(np.float64)}, str(path), metadata=metadata)
        return path

    @classmethod
    def load(cls, path: str | Path) -> FamiliarityModel:
        """Load a familiarity file (or the one in a model directory); FamiliarityError says why not."""
        path = Path(path)
        if path.is_dir():
            path = path / FAMILIARITY_FILE
        if not path.is_file():
            raise FamiliarityError(f"no familiarity calibration at {path}: run `vljepa-ros calibrate --model "
                                   f"{path.parent} --data ...`")
        try:
            from safetensors import safe_open

            with safe_open(str(path), framework="numpy") as handle:
                metadata = handle.metadata() or {}
                tensors = {name: handle.get_tensor(name) for name in handle.keys()}
            model = cls(mean=tensors["mean"], scale=tensors["scale"], precision=tensors["precision"].astype(np.float32),
                        held_out_distances=np.sort(tensors["held_out_distances"]),
                        false_alarm_rate=float(metadata["false_alarm_rate"]),
                        info=json.loads(metadata.get("info", "{}")))
        except FamiliarityError:
            raise
        except Exception as error:  # safetensors raises several types for a damaged file
            raise FamiliarityError(f"{path} is not a readable familiarity file ({error}); re-run "
                                   "`vljepa-ros calibrate`") from error
        if metadata.get("format") != FORMAT_VERSION:
            raise FamiliarityError(f"{path} has format {metadata.get('format')!r}, this version reads "
                                   f"{FORMAT_VERSION!r}: re-run `vljepa-ros calibrate`")
        dim = model.mean.shape[0] if model.mean.ndim == 1 else -1
        if model.precision.shape != (dim, dim) or model.scale.shape != (dim,) or not (model.scale > 0).all() \
                or model.held_out_distances.ndim != 1 or not (
                0.0 < model.false_alarm_rate < 1.0) or model.held_out_distances.size == 0:
            raise FamiliarityError(f"{path} is inconsistent: mean {model.mean.shape}, precision "
                                   f"{model.precision.shape}, {model.held_out_distances.size} held-out distances, "
                                   f"false-alarm rate {model.false_alarm_rate}")
        return model


def split_held_out(statistics: np.ndarray, held_out_share: float) -> tuple[np.ndarray, np.ndarray]:
    """(fit, held-out) rows of one source: the held-out part is its last clips, in stream order."""
    count = statistics.shape[0]
    held = int(round(count * held_out_share))
    if count - held < MIN_FIT_CLIPS // 2 or held < 1:
        raise FamiliarityError(f"a calibration source gave only {count} clips; give longer streams")
    return statistics[: count - held], statistics[count - held:]


def fit_familiarity(sources: Sequence[np.ndarray], false_alarm_rate: float = DEFAULT_FALSE_ALARM_RATE,
                    held_out_share: float = DEFAULT_HELD_OUT_SHARE, info: dict | None = None) -> FamiliarityModel:
    """Fit on in-distribution visual statistics, one (N_i, F) array per source in stream order.

    Each source's last `held_out_share` of clips is held out of the fit and sets the threshold, so the
    stated false-alarm rate is measured on clips the Gaussian did not see.
    """
    from sklearn.covariance import OAS

    if not 0.0 < false_alarm_rate < 1.0:
        raise ValueError(f"false_alarm_rate must be in (0, 1), got {false_alarm_rate}")
    if not 0.0 < held_out_share < 1.0:
        raise ValueError(f"held_out_share must be in (0, 1), got {held_out_share}")
    if not sources:
        raise FamiliarityError("no calibration data")
    parts = [split_held_out(np.asarray(s, dtype=np.float64), held_out_share) for s in sources]
    fit = np.concatenate([p[0] for p in parts])
    held = np.concatenate([p[1] for p in parts])
    if fit.shape[0] < MIN_FIT_CLIPS or held.shape[0] < MIN_HELD_OUT_CLIPS:
        raise FamiliarityError(f"calibration needs at least {MIN_FIT_CLIPS + MIN_HELD_OUT_CLIPS} clips, got "
                               f"{fit.shape[0] + held.shape[0]}")
    if not np.isfinite(fit).all() or not np.isfinite(held).all():
        raise FamiliarityError("calibration statistics hold NaN/Inf")
    mean, scale = fit.mean(axis=0), fit.std(axis=0)
    scale = np.where(scale > 1e-8, scale, 1.0)  # a constant value carries no information, and must not divide by 0
    shrunk = OAS(assume_centered=True).fit((fit - mean) / scale)
    # float32, as stored (half the file; 16 MB for the paper preset's 2048 values) and as scored: the held-out
    # distances below are then exactly the distances the loaded file gives.
    precision = shrunk.precision_.astype(np.float32)
    model = FamiliarityModel(mean=mean, scale=scale, precision=precision, held_out_distances=np.zeros(1),
                             false_alarm_rate=float(false_alarm_rate))
    model.held_out_distances = np.sort(model.distances(held))
    model.info = {**(info or {}), "fit_clips": int(fit.shape[0]), "held_out_clips": int(held.shape[0]),
                  "held_out_share": float(held_out_share), "shrinkage": float(shrunk.shrinkage_),
                  "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    return model


NOT_COMPUTED = -1.0  # the messages' value for a familiarity nobody computed (no calibration)


def segment_familiarity(familiarities: Sequence[float]) -> float:
    """A segment's familiarity: the median of its clips' (robust to a stray clip either way); clips without
    one (NOT_COMPUTED, or any negative or NaN value) are left out, and a segment of none gets NOT_COMPUTED."""
    values = np.asarray(familiarities, dtype=np.float64)
    values = values[values >= 0.0]  # NaN compares false: left out too
    return float(np.median(values)) if values.size else NOT_COMPUTED


class UnfamiliarShare:
    """The share of unfamiliar clips over the last `window_s` seconds (for /diagnostics), plus totals.

    `warning()` names the cause and the fix while most of the recent input is unfamiliar."""

    def __init__(self, window_s: float = 10.0, warn_share: float = 0.5, min_clips: int = 3) -> None:
        import threading
        from collections import deque

        self.window_s, self.warn_share, self.min_clips = float(window_s), float(warn_share), int(min_clips)
        self._recent: deque[tuple[float, bool]] = deque()
        self._lock = threading.Lock()  # the inference thread adds, the executor's diagnostics timer reads
        self.clips_scored = 0
        self.clips_unfamiliar = 0

    def add(self, now_s: float, in_distribution: bool) -> None:
        with self._lock:
            self._recent.append((now_s, bool(in_distribution)))
            self.clips_scored += 1
            self.clips_unfamiliar += not in_distribution
            self._expire(now_s)

    def _expire(self, now_s: float) -> None:
        while self._recent and self._recent[0][0] < now_s - self.window_s:
            self._recent.popleft()

    def _count_and_share(self, now_s: float) -> tuple[int, float]:
        with self._lock:
            self._expire(now_s)
            count = len(self._recent)
            return count, (sum(not familiar for _, familiar in self._recent) / count if count else 0.0)

    def share(self, now_s: float) -> float:
        return self._count_and_share(now_s)[1]

    def warning(self, now_s: float) -> str | None:
        count, share = self._count_and_share(now_s)
        if count < self.min_clips or share <= self.warn_share:
            return None
        return (f"{share:.0%} of the clips in the last {self.window_s:g} s are unfamiliar: the camera shows something "
                "the model was not trained on, so labels and captions are withheld; fine-tune it on a bag of this "
                "scene (README: Fine-tune on your bag; train writes the new familiarity calibration)")
