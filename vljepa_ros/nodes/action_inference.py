"""Action-inference node: inverse dynamics between world states (WorldPrediction-WM style).

Given an initial and a final world state, the predictor embeds a before/after clip with the action
query, and candidate action texts are ranked by cosine similarity to it.

- Service `rank_actions` (vljepa_ros/RankActions): states as images, or as stamps looked up in the
  node's history of camera frames; returns the candidates ranked with scores.
- Streaming: every `stream_period_s`, publishes `action_hypotheses` (vljepa_ros/ActionHypotheses)
  for the pair (t - horizon_s, t) at the newest frame t, over the candidate bank.
- Subscribes `image_in` / `image_in/compressed` (sensor-data QoS) to keep the frame history.
Image callbacks only store the serialized message: a frame is deserialised and decoded when a ranking
looks it up, never on arrival (at 640x480 30 Hz most frames are never looked at). Streaming inference
runs on a worker thread (the timer only wakes it), so it never
blocks image reception. The executor is single-threaded: a node that only keeps a history must cost little
(a second executor thread cost 7% of a core at 640x480 30 Hz, measured), so a `rank_actions` call holds
the history up for its duration; the frames meanwhile wait in the subscription's queue (`image_queue_depth`,
1 s at 30 Hz) and any beyond it are counted in frames_lost_in_transport.

Requests are bounded: at most MAX_CANDIDATES candidates of at most MAX_CANDIDATE_CHARS characters
each per `rank_actions` call; a larger request is refused with the limit in its `message`, and so is
an initial state stamped after the final one. Refused requests, rejected frames, camera frames lost
in transport (nodes/camera_losses.py) and history resets (clock jumped back) are counted on
/diagnostics, at WARN while they rise.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import CompressedImage, Image

from vljepa_ros.errors import VLJepaError
from vljepa_ros.msg import ActionHypotheses
from vljepa_ros.nodes.camera_losses import CameraLosses, SerializedFrame
from vljepa_ros.nodes.common import (MODEL_PARAMETERS, BackgroundLoader, OUTPUT_QOS, Diagnostics, sensor_qos,
                                     LatencyStats, LossCounters, ParameterSpec, check_text_file, RateMeter, create_engine_from,
                                     declare_parameters, image_msg_to_rgb, ns_to_stamp,
                                     parameter_values, raw_parameter_values, run_node, stamp_to_ns)
from vljepa_ros.srv import RankActions
from vljepa_ros.paths import bank_file, read_text_lines, resolve_model_dir
from vljepa_ros.runtime.base import InferenceEngine
from vljepa_ros.stream.action_scoring import RankedAction, rank_actions
from vljepa_ros.stream.history import FrameHistory
from vljepa_ros.stream.keep_latest import KeepLatestWorker
from vljepa_ros.stream.clips import ACTION_QUERY, make_action_clip

MAX_CANDIDATES = 256  # per rank_actions call: each is a text encoding; a call's cost stays bounded
MAX_CANDIDATE_CHARS = 512  # per candidate (the Y-encoder truncates long texts anyway)

PARAMETERS = (
    *MODEL_PARAMETERS,
    ParameterSpec("query", ACTION_QUERY, "query the predictor answers for a before/after clip"),
    ParameterSpec("candidates_file", "", "candidate actions for streaming, one per line "
                  "(empty: the model's banks/actions.txt)"),
    ParameterSpec("stream_period_s", 2.0, "publish hypotheses this often (0: service only)", min_value=0.0, max_value=3600.0),
    ParameterSpec("horizon_s", 2.0, "streaming compares the frame horizon_s before the newest with the newest",
                  min_value=0.05, max_value=3600.0),
    ParameterSpec("history_s", 30.0, "camera history kept for stamp look-ups", min_value=0.1, max_value=3600.0,
                  read_only=True),
    ParameterSpec("history_tolerance_s", 0.25, "a requested stamp must be this close to a stored frame",
                  min_value=0.0, max_value=60.0),
    ParameterSpec("time_jump_reset_s", 1.0, "a frame stamped this much older than the newest is a jump of the clock "
                  "(bag loop, /clock reset): the history is cleared and starts over from it (0: never)",
                  min_value=0.0, max_value=3600.0, read_only=True),
    ParameterSpec("image_queue_depth", 30, "camera frames the best-effort subscriptions hold while a rank_actions call "
                  "runs (sensor-data QoS holds 5): 1 s at 30 Hz", min_value=1, max_value=10000, read_only=True),
    ParameterSpec("temperature", 0.07, "softmax temperature of the published probabilities", min_value=1e-4, max_value=100.0),
    ParameterSpec("expected_rate_hz", 0.0, "the camera's frame rate, if known: frames lost in transport are counted "
                  "against it (0: estimated from the stamps)", min_value=0.0, max_value=10000.0, read_only=True),
)


class ActionInferenceNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("action_inference_node", **kwargs)
        declare_parameters(self, PARAMETERS, extra_check=self._check_parameter)
        self.values = raw_parameter_values(self, PARAMETERS)  # checked when the model is loaded
        self.engine: InferenceEngine | None = None
        self.candidates: list[str] = []
        self._text_cache: dict[str, np.ndarray] = {}
        self.history = FrameHistory(max_age_s=self.values["history_s"], max_frames=100_000,
                                    max_backward_jump_s=self.values["time_jump_reset_s"])
        self._history_lock = threading.Lock()
        self._inference_lock = threading.Lock()  # one model call at a time (service vs streaming)
        self.images_received = 0
        self.requests_served = 0
        self.model_load_failures = 0  # loads that failed; a working model was kept, if there was one
        self.stream_skipped = 0
        self.stream_rate = RateMeter()
        self.latency = LatencyStats()
        self.losses = LossCounters(self)
        self.losses.define("requests_refused", "rank_actions requests refused (the response says why)",
                           f"send 1-{MAX_CANDIDATES} candidates of at most {MAX_CANDIDATE_CHARS} characters, decodable "
                           "images, or stamps within history_tolerance_s of the camera history")
        self.losses.define("images_rejected", "camera frames that could not be decoded when looked up",
                           "publish a supported encoding (rgb8, bgr8, rgba8, bgra8, mono8, mono16) or a valid JPEG/PNG")
        self.camera = CameraLosses(self, self.losses, self.values["expected_rate_hz"], self.values["time_jump_reset_s"])
        self.losses.define("history_resets_time_jump", "the clock jumped back (bag loop, /clock reset): the frame "
                           "history was cleared and starts over", "expected on a bag loop; time_jump_reset_s sets "
                           "the threshold")
        self.diagnostics = Diagnostics(self, self._diagnostic_values, losses=self.losses)
        self.publisher = self.create_publisher(ActionHypotheses, "action_hypotheses", OUTPUT_QOS)
        self.loader = BackgroundLoader(self, self._on_loaded, self._on_load_failed)
        self.load_model()
        images = MutuallyExclusiveCallbackGroup()
        for kind, topic in ((Image, "image_in"), (CompressedImage, "image_in/compressed")):
            self.camera.subscribe(kind, topic, self._on_image, sensor_qos(self.values["image_queue_depth"]),
                                  serialized=True, callback_group=images)
        self.create_service(RankActions, "rank_actions", self._on_rank_actions,
                            callback_group=MutuallyExclusiveCallbackGroup())
        self._stream_worker: KeepLatestWorker[None] = KeepLatestWorker(
            lambda _: self._stream_once(), name="action-stream", on_error=self._on_stream_error)
        self._stream_group = MutuallyExclusiveCallbackGroup()
        self._stream_timer = None
        self._restart_stream_timer()
        self.add_post_set_parameters_callback(self._after_set_parameters)

    # -- configuration ------------------------------------------------------------------------
    def _check_parameter(self, parameter: Parameter) -> str | None:
        if parameter.name == "candidates_file":
            problem = check_text_file("candidates_file", str(parameter.value), "candidate action")
            if problem:
                return problem
        return None

    def _after_set_parameters(self, parameters: list[Parameter]) -> None:
        self.values = raw_parameter_values(self, PARAMETERS)
        names = {parameter.name for parameter in parameters}
        if names & ({spec.name for spec in MODEL_PARAMETERS} | {"candidates_file"}):
            self.load_model()
        if "stream_period_s" in names:
            self._restart_stream_timer()

    def _restart_stream_timer(self) -> None:
        if self._stream_timer is not None:
            self.destroy_timer(self._stream_timer)
            self._stream_timer = None
        if self.values["stream_period_s"] > 0:
            self._stream_timer = self.create_timer(self.values["stream_period_s"], self._on_stream_timer,
                                                   callback_group=self._stream_group)

    def load_model(self) -> None:
        """(Re)load the engine and the candidate bank off the executor; on failure the node keeps
        running (service calls answer why) and reports it."""
        try:
            values = parameter_values(self, PARAMETERS)
        except ValueError as error:
            self._on_load_failed(error)
            return
        self.diagnostics.warn("loading the model")
        self.loader.start(lambda: self._load(values))

    @staticmethod
    def _load(values: dict) -> tuple:
        """Runs on the loader thread."""
        engine = create_engine_from(values)
        path = Path(values["candidates_file"] or bank_file(resolve_model_dir(values["model_dir"]), "actions"))
        candidates = read_text_lines(path) if path.is_file() else []
        return engine, candidates

    def _on_loaded(self, loaded: tuple) -> None:
        engine, candidates = loaded
        with self._inference_lock:
            self.engine, self.candidates, self._text_cache = engine, candidates, {}
        self.get_logger().info(f"model {engine.model_id} on {engine.backend}; {len(candidates)} streaming candidates")
        if not candidates and self.values["stream_period_s"] > 0:
            self.diagnostics.warn("no candidate bank: streaming publishes nothing (the service still works)")
        else:
            self.diagnostics.ok("running")

    def _on_load_failed(self, error: Exception) -> None:
        """A working model is never thrown away for one that failed to load: it keeps serving."""
        self.model_load_failures += 1
        if self.engine is not None:
            message = f"kept model {self.engine.model_id}: the new settings failed to load: {error}"
            self.get_logger().error(message)
            self.diagnostics.warn(message)
            return
        self.get_logger().error(f"model not loaded: {error}")
        self.diagnostics.error(f"model not loaded: {error}")

    # -- inputs -------------------------------------------------------------------------------
    def _on_image(self, frame: SerializedFrame) -> None:
        """Executor thread: keep the serialized frame; it is decoded only if a ranking looks it up."""
        self.images_received += 1
        with self._history_lock:
            jumped = self.history.add(frame.stamp_ns, frame)
        if jumped:
            self.losses.count("history_resets_time_jump", 1, f"new stamp {frame.stamp_ns / 1e9:.3f} s")

    def _lookup(self, stamp_ns: int) -> tuple[int, np.ndarray]:
        with self._history_lock:
            found_ns, frame = self.history.nearest(stamp_ns, self.values["history_tolerance_s"])
        try:
            return found_ns, image_msg_to_rgb(frame.message())
        except VLJepaError as error:
            self.losses.count("images_rejected", 1, str(error))
            raise

    # -- inference ----------------------------------------------------------------------------
    def rank(self, initial: np.ndarray, final: np.ndarray, candidates: list[str]) -> list[RankedAction]:
        """Rank `candidates` for the change initial -> final (RGB frames of any size)."""
        engine = self.engine
        if engine is None:
            state = "still loading" if self.loader.loading else "not loaded (see the node's log and /diagnostics)"
            raise VLJepaError(f"the model is {state}")
        started = time.monotonic()
        with self._inference_lock:
            clip = make_action_clip(initial, final, engine.frames_per_clip)
            state = engine.encode_clip(clip, self.values["query"])
            missing = [text for text in dict.fromkeys(candidates) if text not in self._text_cache]
            if missing:
                self._text_cache.update(zip(missing, engine.encode_texts(missing)))
            texts = np.stack([self._text_cache[text] for text in candidates])
        ranking = rank_actions(state, texts, candidates, temperature=self.values["temperature"])
        self.latency.add(time.monotonic() - started)
        return ranking

    def _hypotheses(self, ranking: list[RankedAction], initial_ns: int, final_ns: int) -> ActionHypotheses:
        message = ActionHypotheses()
        message.header.stamp = self.get_clock().now().to_msg()
        message.initial_stamp = ns_to_stamp(initial_ns)
        message.final_stamp = ns_to_stamp(final_ns)
        message.model_id = self.engine.model_id if self.engine else ""
        message.actions = [item.text for item in ranking]
        message.scores = [item.score for item in ranking]
        message.probabilities = [item.probability for item in ranking]
        return message

    def _on_rank_actions(self, request: RankActions.Request, response: RankActions.Response):
        try:
            check_request_bounds(list(request.candidates))
            if request.use_stamps:
                check_state_order(stamp_to_ns(request.initial_stamp), stamp_to_ns(request.final_stamp), "initial_stamp")
                initial_ns, initial = self._lookup(stamp_to_ns(request.initial_stamp))
                final_ns, final = self._lookup(stamp_to_ns(request.final_stamp))
            else:
                initial, final = image_msg_to_rgb(request.initial_image), image_msg_to_rgb(request.final_image)
                initial_ns = stamp_to_ns(request.initial_image.header.stamp)
                final_ns = stamp_to_ns(request.final_image.header.stamp)
                check_state_order(initial_ns, final_ns, "initial_image.header.stamp")
            ranking = self.rank(initial, final, list(request.candidates))
        except (VLJepaError, LookupError) as error:
            response.success, response.message = False, str(error)
            self.losses.count("requests_refused", 1, str(error))
            return response
        response.success = True
        response.message = f"ranked {len(ranking)} candidates"
        response.hypotheses = self._hypotheses(ranking, initial_ns, final_ns)
        response.candidate_indices = [item.index for item in ranking]
        self.requests_served += 1
        return response

    def _on_stream_timer(self) -> None:
        if self.engine is not None and self.candidates:
            self._stream_worker.submit(None)  # replaces a tick still waiting for the worker (counted)

    def _stream_once(self) -> None:
        """Worker thread: rank the candidate bank for (newest - horizon_s, newest) and publish."""
        with self._history_lock:
            newest = self.history.available_range_ns()
        if newest is None:
            return
        final_ns = newest[1]
        try:
            initial_ns, initial = self._lookup(final_ns - int(self.values["horizon_s"] * 1e9))
            _, final = self._lookup(final_ns)
        except LookupError:
            self.stream_skipped += 1  # not enough history yet for the horizon
            return
        ranking = self.rank(initial, final, self.candidates)
        self.publisher.publish(self._hypotheses(ranking, initial_ns, final_ns))
        self.stream_rate.tick()

    def _on_stream_error(self, _: None, error: Exception) -> None:
        self.get_logger().error(f"streaming inference failed: {error}", throttle_duration_sec=5.0)
        self.diagnostics.error(f"streaming inference failed: {error}")

    def close(self) -> None:
        """Stop the streaming worker and the loader before the node is destroyed."""
        self._stream_worker.stop(1.0)
        self.loader.close()

    def _diagnostic_values(self) -> dict:
        return {
            "rate_hz": self.stream_rate.rate_hz(),
            "latency_p50_ms": self.latency.percentile_ms(50),
            "latency_p95_ms": self.latency.percentile_ms(95),
            "images_received": self.images_received,
            "newest_stamp_ns": self.camera.newest_stamp_ns(),
            "frames_late_or_duplicate": self.camera.not_newer(),  # received, not newer than the newest: no gap
            **self.camera.values(),
            "history_frames": len(self.history),
            "requests_served": self.requests_served,
            "model_load_failures": self.model_load_failures,
            **self.losses.values(),
            "requests_failed": self.losses["requests_refused"],  # the earlier name
            "drops": self.losses["images_rejected"],
            "stream_waiting_for_history": self.stream_skipped,
            "stream_rankings_skipped": self._stream_worker.dropped,
            "backend": self.engine.backend if self.engine else "",
            "model_id": self.engine.model_id if self.engine else "",
        }


def check_request_bounds(candidates: list[str]) -> None:
    """Refuse (VLJepaError saying which limit) a request without candidates or beyond the bounds."""
    if not candidates:
        raise VLJepaError("no candidate actions given: send at least one in `candidates`")
    if len(candidates) > MAX_CANDIDATES:
        raise VLJepaError(f"{len(candidates)} candidates: at most {MAX_CANDIDATES} per rank_actions call "
                          "(split the list over several calls)")
    too_long = [index for index, text in enumerate(candidates) if len(text) > MAX_CANDIDATE_CHARS]
    if too_long:
        raise VLJepaError(f"candidate {too_long[0]} has {len(candidates[too_long[0]])} characters: at most "
                          f"{MAX_CANDIDATE_CHARS} per candidate ({len(too_long)} candidate(s) too long)")


def check_state_order(initial_ns: int, final_ns: int, what: str) -> None:
    """Refuse a request whose initial state comes after its final one: inverse dynamics asks which
    action led from the first state to the second, so the order is the question. Equal stamps (or
    images without stamps, both 0) are allowed."""
    if initial_ns > final_ns:
        raise VLJepaError(f"{what} ({initial_ns / 1e9:.3f} s) is after the final state's ({final_ns / 1e9:.3f} s): "
                          "the initial state must not come after the final one (swap them)")


def main(args: list[str] | None = None) -> int:
    return run_node(ActionInferenceNode, args, PARAMETERS)


if __name__ == "__main__":
    raise SystemExit(main())
