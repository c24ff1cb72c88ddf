"""Perception node: camera images -> VL-JEPA semantic embeddings.

Lifecycle: configure loads the model (or engine), activate subscribes to the camera and starts
publishing, deactivate stops, cleanup unloads. With `autostart` (default) it configures and
activates itself, so `ros2 run` and launch files need no lifecycle manager.

Subscribes `image_in` (sensor_msgs/Image) and `image_in/compressed` (CompressedImage) with
sensor-data QoS; publishes `embedding` (vljepa_ros/SemanticEmbedding, reliable). Image callbacks
only decode and assemble clips; inference runs on a worker thread that keeps the newest clip
(older waiting clips are counted as drops), so the executor never stalls.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from sensor_msgs.msg import CompressedImage, Image

from vljepa_ros.errors import VLJepaError
from vljepa_ros.msg import SemanticEmbedding
from vljepa_ros.nodes.common import (MODEL_PARAMETERS, BackgroundLoader, OUTPUT_QOS, Diagnostics,
                                     LatencyStats, ParameterSpec, RateMeter, create_engine_from,
                                     declare_parameters, image_msg_to_rgb, ns_to_stamp,
                                     parameter_values, read_text_lines, run_node, sensor_qos, stamp_to_ns,
                                     to_float32_field)
from vljepa_ros.stream.clip_assembler import Clip, ClipAssembler
from vljepa_ros.stream.keep_latest import KeepLatestWorker
from vljepa_ros.stream.label_bank import LabelBank

PARAMETERS = (
    *MODEL_PARAMETERS,
    ParameterSpec("query", "What is happening?", "text query the predictor answers for each clip (changeable at runtime)"),
    ParameterSpec("frames_per_clip", 0, "camera frames per clip (0: the model's clip length); applied on configure",
                  min_value=0, max_value=256),
    ParameterSpec("stride_frames", 4, "emit a clip every N sampled frames; applied on configure", min_value=1, max_value=256),
    ParameterSpec("sample_period_s", 0.0, "subsample the camera to this period (0: every frame); applied on configure",
                  min_value=0.0, max_value=60.0),
    ParameterSpec("label_bank_file", "", "labels for top-k zero-shot classification, one per line "
                  "(empty: the model's banks/labels.txt if present)"),
    ParameterSpec("image_queue_depth", 10, "images the best-effort subscriptions hold while the node is busy "
                  "(sensor-data QoS holds 5); raise it to replay bags fast without losing frames; applied on activate",
                  min_value=1, max_value=10000),
    ParameterSpec("top_k", 3, "labels published with each embedding (0: none)", min_value=0, max_value=100),
    ParameterSpec("autostart", True, "configure and activate on start", read_only=True),
)


STOP_TIMEOUT_S = 1.0  # shutdown waits this long for a clip in inference (SIGINT must end the node in < 2 s)


@dataclass
class PendingClip:
    clip: Clip
    frame_id: str
    received_monotonic_s: float  # when the clip's last frame arrived: latency is measured from here


class PerceptionNode(LifecycleNode):
    def __init__(self, **kwargs) -> None:
        super().__init__("perception_node", **kwargs)
        declare_parameters(self, PARAMETERS, extra_check=self._check_parameter)
        self.engine = None
        self.label_bank: LabelBank | None = None
        self.assembler: ClipAssembler | None = None
        self.worker: KeepLatestWorker[PendingClip] | None = None
        self.publisher = None
        self.subscriptions_: list = []
        self._query = self.get_parameter("query").value
        self._lock = threading.Lock()
        self.state_label = "unconfigured"
        self.activated = False
        self.sequence = 0
        self.images_received = 0
        self.images_rejected = 0
        self.rate = RateMeter()
        self.latency = LatencyStats()  # last frame received -> embedding published
        self.inference_latency = LatencyStats()  # the engine call alone: latency minus it is the node's own cost
        self.diagnostics = Diagnostics(self, self._diagnostic_values)
        self.loader = BackgroundLoader(self, self._on_loaded, self._on_load_failed)
        self.images_while_loading = 0
        self.add_post_set_parameters_callback(self._after_set_parameters)
        if self.get_parameter("autostart").value:
            if self.trigger_configure() == TransitionCallbackReturn.SUCCESS:
                self.trigger_activate()  # the model keeps loading in the background

    # -- parameters ---------------------------------------------------------------------------
    def _check_parameter(self, parameter: Parameter) -> str | None:
        if parameter.name == "query" and not str(parameter.value).strip():
            return "query must not be empty"
        if parameter.name == "label_bank_file" and parameter.value and not Path(parameter.value).is_file():
            return f"label_bank_file {parameter.value!r} does not exist"
        return None

    def _after_set_parameters(self, parameters: list[Parameter]) -> None:
        for parameter in parameters:
            if parameter.name == "query":
                self._query = parameter.value
                self.get_logger().info(f"query is now {parameter.value!r}")

    # -- lifecycle ----------------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Check parameters and start loading the model off the executor (an ONNX export or a
        TensorRT build can take minutes); the node is ready when /diagnostics says so."""
        try:
            values = parameter_values(self, PARAMETERS)
        except ValueError as error:
            self._report_configure_failure(error)
            return TransitionCallbackReturn.FAILURE
        self.publisher = self.create_lifecycle_publisher(SemanticEmbedding, "embedding", OUTPUT_QOS)
        self.state_label = "loading"
        self.diagnostics.warn("loading the model")
        self.loader.start(lambda: self._load(values))
        return TransitionCallbackReturn.SUCCESS

    def _load(self, values: dict) -> tuple:
        """Runs on the loader thread."""
        engine = create_engine_from(values)
        label_bank = self._load_label_bank(values, engine)
        frames_per_clip = values["frames_per_clip"] or engine.frames_per_clip
        assembler = ClipAssembler(frames_per_clip, values["stride_frames"], values["sample_period_s"])
        return engine, label_bank, assembler

    def _on_loaded(self, loaded: tuple) -> None:
        if self.state_label == "unconfigured":  # cleaned up while loading: discard
            return
        with self._lock:
            self.engine, self.label_bank, self.assembler = loaded
        self.state_label = "active" if self.activated else "inactive"
        self.get_logger().info(
            f"model {self.engine.model_id} loaded on {self.engine.backend}/{self.engine.device}: "
            f"{self.assembler.frames_per_clip} frames per clip, stride {self.assembler.stride_frames}, "
            f"label bank {len(self.label_bank) if self.label_bank else 0}")
        self.diagnostics.ok(self.state_label)

    def _on_load_failed(self, error: Exception) -> None:
        # Back to unconfigured, so that configuring again (after fixing a parameter) retries.
        if self.activated:
            self.trigger_deactivate()
        self.trigger_cleanup()
        self._report_configure_failure(error)

    def _report_configure_failure(self, error: Exception) -> None:
        self.get_logger().error(f"configure failed: {error}")
        self.diagnostics.error(f"configure failed: {error}")

    def _load_label_bank(self, values: dict, engine) -> LabelBank | None:
        if values["top_k"] == 0:
            return None
        path = values["label_bank_file"]
        if not path:
            from vljepa_ros.paths import resolve_model_dir
            default = resolve_model_dir(values["model_dir"]) / "banks" / "labels.txt"
            if not default.is_file():
                return None
            path = str(default)
        return LabelBank.from_texts(read_text_lines(path), engine.encode_texts)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.worker = KeepLatestWorker(self._infer, name="perception-inference", on_error=self._on_inference_error)
        image_qos = sensor_qos(int(self.get_parameter("image_queue_depth").value))
        self.subscriptions_ = [
            self.create_subscription(Image, "image_in", self._on_image, image_qos),
            self.create_subscription(CompressedImage, "image_in/compressed", self._on_image, image_qos),
        ]
        self.activated = True
        if self.engine is not None:  # else the loader sets "active" when the model is ready
            self.state_label = "active"
            self.diagnostics.ok("active")
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.activated = False
        self._stop_processing()
        self.state_label = "inactive"
        self.diagnostics.warn("inactive")
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        self.state_label = "unconfigured"
        self.diagnostics.warn("unconfigured")
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_processing()
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def _stop_processing(self) -> None:
        for subscription in self.subscriptions_:
            self.destroy_subscription(subscription)
        self.subscriptions_ = []
        if self.worker is not None:
            self.worker.wait_idle(STOP_TIMEOUT_S)  # let the clip in inference publish
            self.worker.stop(STOP_TIMEOUT_S)
            self.worker = None

    def _release(self) -> None:
        if self.publisher is not None:
            self.destroy_lifecycle_publisher(self.publisher)
            self.publisher = None
        self.engine = self.label_bank = self.assembler = None

    def close(self) -> None:
        """Stop the worker threads before the node is destroyed (SIGINT/SIGTERM path)."""
        self._stop_processing()
        self.loader.close()

    # -- data path ----------------------------------------------------------------------------
    def _on_image(self, message: Image | CompressedImage) -> None:
        """Executor thread: decode the image (only if the clip assembler samples it) and push it;
        a finished clip goes to the inference worker. Nothing here waits for the model."""
        received = time.monotonic()
        self.images_received += 1
        with self._lock:  # the assembler is replaced on (re)configure
            if self.assembler is None:
                self.images_while_loading += 1
                return
            try:
                clip = self.assembler.push_lazy(lambda: image_msg_to_rgb(message), stamp_to_ns(message.header.stamp))
            except VLJepaError as error:
                self.images_rejected += 1
                self.get_logger().warning(f"image rejected: {error}", throttle_duration_sec=5.0)
                self.diagnostics.warn(f"image rejected: {error}")
                return
        if clip is not None and self.worker is not None:
            self.worker.submit(PendingClip(clip, message.header.frame_id, received))

    def _infer(self, pending: PendingClip) -> None:
        engine, publisher, query = self.engine, self.publisher, self._query
        if engine is None or publisher is None:
            return
        started = time.monotonic()
        embedding = engine.encode_clip(pending.clip.frames, query)
        self.inference_latency.add(time.monotonic() - started)
        message = SemanticEmbedding()
        message.header.stamp = ns_to_stamp(pending.clip.last_stamp_ns)
        message.header.frame_id = pending.frame_id
        message.clip_start = ns_to_stamp(pending.clip.first_stamp_ns)
        message.clip_end = ns_to_stamp(pending.clip.last_stamp_ns)
        message.frames_in_clip = pending.clip.frame_count
        message.model_id = engine.model_id
        message.backend = engine.backend
        message.query = query
        message.dimension = int(embedding.shape[0])
        message.embedding = to_float32_field(embedding)
        if self.label_bank is not None:
            top = self.label_bank.top_k(embedding, self.get_parameter("top_k").value)
            message.top_labels = [label for label, _ in top]
            message.top_scores = [float(score) for _, score in top]
        message.sequence = self.sequence
        self.sequence += 1
        publisher.publish(message)
        self.rate.tick()
        self.latency.add(time.monotonic() - pending.received_monotonic_s)

    def _on_inference_error(self, pending: PendingClip, error: Exception) -> None:
        self.get_logger().error(f"inference failed: {error!r}", throttle_duration_sec=5.0)
        self.diagnostics.error(f"inference failed: {error}")

    def _diagnostic_values(self) -> dict:
        engine, worker, assembler = self.engine, self.worker, self.assembler
        return {
            "state": self.state_label,
            "rate_hz": self.rate.rate_hz(),
            "latency_p50_ms": self.latency.percentile_ms(50),
            "latency_p95_ms": self.latency.percentile_ms(95),
            "inference_p50_ms": self.inference_latency.percentile_ms(50),
            "inference_p95_ms": self.inference_latency.percentile_ms(95),
            "images_received": self.images_received,
            "images_rejected": self.images_rejected,
            "images_while_loading": self.images_while_loading,
            "clips_dropped": worker.dropped if worker else 0,
            "frames_out_of_order": assembler.dropped_out_of_order if assembler else 0,
            "inference_failures": worker.failed if worker else 0,
            "embeddings_published": self.sequence,
            "backend": engine.backend if engine else "",
            "model_id": engine.model_id if engine else "",
            "query": self._query,
        }


def main(args: list[str] | None = None) -> int:
    return run_node(PerceptionNode, args, PARAMETERS)


if __name__ == "__main__":
    raise SystemExit(main())
