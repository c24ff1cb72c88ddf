"""Monitor node: selective decoding of the embedding stream.

Subscribes `embedding` (vljepa_ros/SemanticEmbedding); service `~/flush` (std_srvs/Trigger) closes
and decodes the open segment (end of a bag or task); an online shift detector (smoothing +
local-variance threshold, vljepa_ros.stream.shift_detector) closes a segment when the meaning of
the stream changes; the segment's pooled embedding is decoded to text by the Y-decoder and
published as `event` (vljepa_ros/SemanticEvent). Text is decoded only on events, never per
embedding; the node counts both, so the decode ratio is visible on /diagnostics. Decoding runs on
a worker thread so a slow (generative) decoder never blocks the subscription.

An unfamiliar segment (its embeddings' median familiarity below the calibrated threshold: the camera
shows something the model was not trained on) is not presented as a bank caption: `unfamiliar_policy`
marks it ("unfamiliar scene", the default), suppresses it or decodes it anyway, flag set either way.

With `live_view:=true` it also publishes `live_view`, the camera frame with what the model makes of it
(vljepa_ros.nodes.live_view); off by default, and then it does not subscribe the camera at all.

Nothing is lost silently: embeddings lost in transport (gaps in each publisher's `sequence`),
rejected embeddings (NaN/Inf, zero, a dimension other than the model's or the stream's first) and
segments dropped because the decoder is behind are counted on /diagnostics, at WARN while they rise.
"""
from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

import numpy as np

from rclpy.node import Node
from rclpy.parameter import Parameter
from std_srvs.srv import Trigger

from vljepa_ros.errors import CheckpointError, EmptyLabelBankError, VLJepaError
from vljepa_ros.msg import SemanticEmbedding, SemanticEvent
from vljepa_ros.nodes.common import (MODEL_PARAMETERS, OUTPUT_QOS, STREAM_INPUT_QOS, BackgroundLoader, Diagnostics, LatencyStats,
                                     LossCounters, ParameterSpec, check_text_file, RateMeter, create_engine_from,
                                     declare_parameters, from_float32_field, ns_to_stamp,
                                     parameter_values, raw_parameter_values, run_node, stamp_to_ns,
                                     to_float32_field)
from vljepa_ros.nodes.live_view import LIVE_VIEW_PARAMETERS, LiveView
from vljepa_ros.nodes.rclpy_compat import PublisherIdentifier
from vljepa_ros.paths import bank_file, read_text_lines
from vljepa_ros.runtime.base import InferenceEngine
from vljepa_ros.stream.embedding_checks import require_unit_norm, validate_embedding
from vljepa_ros.stream.shift_detector import DetectorSettings, OnlineShiftDetector, SegmentEvent
from vljepa_ros.stream.stream_gaps import SequenceGapCounter

DECODERS = ("retrieval", "generative")
UNFAMILIAR_POLICIES = ("mark", "suppress", "decode_anyway")
CLOSE_TIMEOUT_S = 1.0  # shutdown waits this long for the last decodes (SIGINT must end the node in < 2 s)
DETECTOR_PARAMETERS = tuple(field.name for field in fields(DetectorSettings))
LIVE_VIEW_PARAMETER_NAMES = {spec.name for spec in LIVE_VIEW_PARAMETERS}

PARAMETERS = (
    *MODEL_PARAMETERS,
    ParameterSpec("decoder", "retrieval", "Y-decoder: nearest caption of the text bank, or the generative decoder",
                  choices=DECODERS),
    ParameterSpec("text_bank_file", "", "captions for the retrieval decoder, one per line "
                  "(empty: the model's banks/captions.txt)"),
    ParameterSpec("smoothing_window", DetectorSettings.smoothing_window, "embeddings averaged before the variance test",
                  min_value=1, max_value=100),
    ParameterSpec("variance_window", DetectorSettings.variance_window, "smoothed embeddings in the local-variance window",
                  min_value=2, max_value=100),
    ParameterSpec("shift_threshold", DetectorSettings.shift_threshold, "local variance that counts as a change of meaning",
                  min_value=1e-6, max_value=4.0),
    ParameterSpec("min_interval_s", DetectorSettings.min_interval_s, "no two events closer than this",
                  min_value=0.0, max_value=3600.0),
    ParameterSpec("max_segment_s", DetectorSettings.max_segment_s,
                  "close a segment after this long even without a shift (0: never)", min_value=0.0, max_value=86400.0),
    ParameterSpec("unfamiliar_policy", "mark", "a segment the model finds unfamiliar: publish it marked (text "
                  "'unfamiliar scene', decoder 'none'), suppress it (counted), or decode_anyway (flag still set)",
                  choices=UNFAMILIAR_POLICIES),
    ParameterSpec("max_pending_decodes", 16, "segments waiting for the decoder before new ones are dropped (counted)",
                  min_value=1, max_value=1000, read_only=True),
    *LIVE_VIEW_PARAMETERS,
)


def retrieval_decoder(model_dir: Path, encode_texts: Callable[[list[str]], np.ndarray], text_bank_file: str):
    """The nearest-caption Y-decoder over a text bank: the given file, else the model's caption bank."""
    from vljepa_ros.model.checkpoint import load_text_bank
    from vljepa_ros.model.y_decoder import RetrievalDecoder
    shipped = bank_file(model_dir, "captions")
    if text_bank_file:
        texts = read_text_lines(text_bank_file)
    elif shipped.is_file():
        texts = read_text_lines(shipped)
    else:
        texts = load_text_bank(model_dir)
    if not texts:
        raise EmptyLabelBankError(f"the text bank {text_bank_file or shipped} has no captions")
    return RetrievalDecoder(texts, encode_texts(texts))


class GenerativeTextDecoder:
    """The model's generative prefix decoder; its score is the cosine between the generated text's
    Y-encoder embedding and the decoded embedding (how faithful the text is)."""

    def __init__(self, model_dir: Path, encode_texts: Callable[[list[str]], np.ndarray]) -> None:
        from vljepa_ros.model.y_decoder import load_decoder
        self.decoder = load_decoder(model_dir)
        if self.decoder is None:
            raise CheckpointError(f"{model_dir / 'decoder'} does not exist: this model has no generative decoder "
                                  "(train one with `vljepa-ros train-decoder`, or use decoder:=retrieval)")
        self.encode_texts = encode_texts

    def decode(self, embedding: np.ndarray):
        from vljepa_ros.model.y_decoder import DecodedText
        text = self.decoder.generate(embedding[None])[0]
        score = float(self.encode_texts([text])[0] @ embedding) if text else 0.0
        return DecodedText(text, score)


class MonitorNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("monitor_node", **kwargs)
        declare_parameters(self, PARAMETERS, extra_check=self._check_parameter)
        self.values = raw_parameter_values(self, PARAMETERS)  # checked when the model is loaded
        self.engine: InferenceEngine | None = None
        self.decoder = None
        self.decoder_kind = self.values["decoder"]  # of the decoder loaded (kept when a new one fails to load)
        self.model_load_failures = 0
        self.detector = self._make_detector()
        self.embeddings_received = 0
        self.embeddings_reused = 0
        self.decodes = 0
        self.losses = LossCounters(self)
        self.losses.define("embeddings_lost_in_transport", "embeddings that never arrived (gaps in the publisher's "
                           "sequence)", "the subscription holds 200 embeddings (reliable): a publisher that "
                           "sends faster than the monitor takes them, or a lossy link, loses them")
        self.losses.define("embeddings_rejected", "embeddings refused (NaN/Inf, all zeros, wrong dimension, not "
                           "unit length)",
                           "the publisher must send unit-length embeddings of the monitor's model (model_dir)")
        self.losses.define("drops", "closed segments dropped because the decoder is behind",
                           "raise max_pending_decodes, or use the faster retrieval decoder")
        self._sequence_gaps = SequenceGapCounter()
        self._embedding_sources: set[str] = set()
        self._publisher_of = PublisherIdentifier()  # rclpy 7 has no publisher GID: rclpy_compat
        self._last_embedding_monotonic = 0.0
        self.publisher_changes = 0  # a new publisher after the first: perception restarted (kill -9, crash)
        self.last_input_gap_s = 0.0  # the silence before the latest change
        self.events_without_text = 0  # the decoder failed to load: events still go out, text empty
        self.events_unfamiliar = 0  # segments the model found unfamiliar (marked, suppressed or decoded anyway)
        self.events_suppressed_unfamiliar = 0
        self._familiarity_threshold = 0.0  # the newest embedding's: the calibration events are judged by
        self.sequence = 0
        self.model_id = ""
        self.rate = RateMeter()
        self.decode_latency = LatencyStats()
        self.live_view = LiveView(self, self.losses, "image_in", "image_in/compressed")
        self.diagnostics = Diagnostics(self, self._diagnostic_values, losses=self.losses)
        self._pending: queue.Queue = queue.Queue(maxsize=self.values["max_pending_decodes"])
        self._decoder_settled = threading.Event()  # set when no decoder load is pending (or on close)
        self._decode_thread = threading.Thread(target=self._decode_loop, name="monitor-decoder", daemon=True)
        self._decode_thread.start()
        self.publisher = self.create_publisher(SemanticEvent, "event", OUTPUT_QOS)
        self.loader = BackgroundLoader(self, self._on_loaded, self._on_load_failed)
        self.load_decoder()
        self.create_subscription(SemanticEmbedding, "embedding", self._on_embedding, STREAM_INPUT_QOS)
        self.create_service(Trigger, "~/flush", self._on_flush)
        self.add_post_set_parameters_callback(self._after_set_parameters)
        self._configure_live_view()

    # -- configuration ------------------------------------------------------------------------
    def _check_parameter(self, parameter: Parameter) -> str | None:
        if parameter.name == "text_bank_file":
            return check_text_file("text_bank_file", str(parameter.value), "caption")
        return None

    def _after_set_parameters(self, parameters: list[Parameter]) -> None:
        self.values = raw_parameter_values(self, PARAMETERS)
        names = {parameter.name for parameter in parameters}
        if names & set(DETECTOR_PARAMETERS):
            self.detector = self._make_detector()
            self.get_logger().info("shift detector reset with new parameters")
        if names & LIVE_VIEW_PARAMETER_NAMES:
            self._configure_live_view()
        if names - set(DETECTOR_PARAMETERS) - LIVE_VIEW_PARAMETER_NAMES:
            self.load_decoder()

    def _configure_live_view(self) -> None:
        """Subscribe the camera and publish `live_view` while `live_view` is true; nothing while false."""
        self.live_view.configure(bool(self.values["live_view"]), float(self.values["live_view_rate_hz"]))

    def _make_detector(self) -> OnlineShiftDetector:
        return OnlineShiftDetector.from_settings(DetectorSettings(**{name: self.values[name] for name in DETECTOR_PARAMETERS}))

    def load_decoder(self) -> None:
        """(Re)load the model and the decoder off the executor; on failure the node keeps running
        (events are still published, without text) and reports why."""
        try:
            values = parameter_values(self, PARAMETERS)
        except ValueError as error:
            self._on_load_failed(error)
            return
        self.diagnostics.warn("loading the decoder")
        if self.decoder is None:  # else the working decoder goes on until the new one has loaded
            self._decoder_settled.clear()
        self.loader.start(lambda: self._load(values))

    @staticmethod
    def _load(values: dict) -> tuple:
        """Runs on the loader thread."""
        from vljepa_ros.paths import resolve_model_dir
        engine = create_engine_from(values, warm_up=False)  # it encodes texts only, its bank while loading
        model_dir = resolve_model_dir(values["model_dir"])
        if values["decoder"] == "generative":
            return engine, GenerativeTextDecoder(model_dir, engine.encode_texts), values["decoder"]
        return engine, retrieval_decoder(model_dir, engine.encode_texts, values["text_bank_file"]), values["decoder"]

    def _on_loaded(self, loaded: tuple) -> None:
        self.engine, self.decoder, self.decoder_kind = loaded
        self._decoder_settled.set()
        self.get_logger().info(f"decoding with the {self.decoder_kind} decoder of model {self.engine.model_id}")
        self.diagnostics.ok("running")

    def _on_load_failed(self, error: Exception) -> None:
        """A working decoder is never thrown away for one that failed to load: it keeps decoding."""
        self.model_load_failures += 1
        self._decoder_settled.set()
        if self.decoder is not None and self.engine is not None:
            message = (f"kept the {self.decoder_kind} decoder of model {self.engine.model_id}: the new settings "
                       f"failed to load: {error}")
            self.get_logger().error(message)
            self.diagnostics.warn(message)
            return
        self.engine = self.decoder = None
        self.get_logger().error(f"decoder not loaded: {error}")
        self.diagnostics.error(f"decoder not loaded: {error}")

    # -- data path ----------------------------------------------------------------------------
    def _on_embedding(self, message: SemanticEmbedding, info: dict) -> None:
        """Executor thread; `info` (rclpy's MessageInfo) names the publisher, whose sequence is checked for gaps."""
        self.embeddings_received += 1
        self.embeddings_reused += message.reused  # perception's skip_unchanged_clips; a vector like any other
        self.rate.tick()
        publisher = self._publisher_of(info)
        self._note_publisher(publisher)
        missing = self._sequence_gaps.observe(publisher, message.sequence, message.model_id)
        if missing:
            self.losses.count("embeddings_lost_in_transport", missing,
                              f"{missing} missing before sequence {message.sequence} of model {message.model_id}")
        if self.model_id and message.model_id != self.model_id:
            # Embeddings of different models live in different spaces: start a new stream.
            self.get_logger().warning(f"model id changed {self.model_id} -> {message.model_id}; detector reset")
            self.detector = self._make_detector()
        self.model_id = message.model_id
        try:
            vector = require_unit_norm(validate_embedding(from_float32_field(message.embedding), self._expected_dimension(),
                                                          name=f"embedding {message.sequence}"), f"embedding {message.sequence}")
            if message.dimension and message.dimension != vector.shape[0]:
                raise VLJepaError(f"embedding {message.sequence} holds {vector.shape[0]} values but says "
                                  f"dimension {message.dimension}")
            event = self.detector.update(vector, stamp_to_ns(message.clip_start), stamp_to_ns(message.clip_end),
                                         message.familiarity)
        except VLJepaError as error:
            self.losses.count("embeddings_rejected", 1, str(error))
            return
        self._familiarity_threshold = message.familiarity_threshold
        self.live_view.note_embedding(message, self.detector.last_score, self.detector.threshold)
        if event is not None:
            self._enqueue(event, message)

    def _expected_dimension(self) -> int | None:
        """The model's embedding dimension once it is loaded, else the stream's first embedding's."""
        engine = self.engine
        dimension = getattr(engine, "dimension", None) if engine is not None else None
        return int(dimension) if dimension else self.detector.dimension

    def flush(self) -> None:
        """Close the open segment (end of a bag, shutdown) so its text is not lost."""
        event = self.detector.flush()
        if event is not None:
            self._enqueue(event, None)

    def _on_flush(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        """End of a bag or a task: decode the open segment now, without waiting for a shift."""
        before = self.sequence
        self.flush()
        response.success = self.wait_for_decodes()
        response.message = f"{self.sequence - before} event(s) published"
        return response

    def _enqueue(self, event: SegmentEvent, trigger_message: SemanticEmbedding | None) -> None:
        stamp = trigger_message.header.stamp if trigger_message is not None else ns_to_stamp(event.end_ns)
        try:
            self._pending.put_nowait((event, stamp, self.model_id, self._familiarity_threshold))
        except queue.Full:
            self.losses.count("drops", 1, f"segment {event.start_ns / 1e9:.3f}-{event.end_ns / 1e9:.3f} s")

    def _decode_loop(self) -> None:
        """Decoder thread: blocks on the queue; close() ends it with a None sentinel."""
        while (item := self._pending.get()) is not None:
            try:
                self._decode_and_publish(*item)
            except Exception as error:  # reported; the loop carries on with the next segment
                self.get_logger().error(f"decoding failed: {error!r}")
                self.diagnostics.error(f"decoding failed: {error}")
            finally:
                self._pending.task_done()

    def _decode_and_publish(self, event: SegmentEvent, stamp, model_id: str, familiarity_threshold: float) -> None:
        message = SemanticEvent()
        message.header.stamp = stamp
        message.segment_start = ns_to_stamp(event.start_ns)
        message.segment_end = ns_to_stamp(event.end_ns)
        message.embeddings_in_segment = event.count
        message.model_id = model_id
        message.dimension = int(event.embedding.shape[0])
        message.embedding = to_float32_field(event.embedding)
        message.shift_score = event.shift_score
        message.shift_threshold = event.threshold
        message.trigger = event.trigger
        if event.familiarity >= 0.0:  # else the message's defaults say "not computed"
            message.familiarity, message.familiarity_threshold = event.familiarity, familiarity_threshold
            message.in_distribution = event.familiarity >= familiarity_threshold
        policy = self.values["unfamiliar_policy"]
        if not message.in_distribution:
            self.events_unfamiliar += 1
            if policy == "suppress":
                self.events_suppressed_unfamiliar += 1
                return
        self._decoder_settled.wait()  # events before the decoder is ready wait for it (close() releases them)
        decoder = self.decoder
        if not message.in_distribution and policy == "mark":
            message.text, message.text_score, message.decoder = SemanticEvent.UNFAMILIAR_TEXT, 0.0, "none"
        elif decoder is None:
            self.events_without_text += 1
        else:
            started = time.monotonic()
            decoded = decoder.decode(event.embedding)
            self.decode_latency.add(time.monotonic() - started)
            self.decodes += 1
            message.text, message.text_score, message.decoder = decoded.text, decoded.score, self.decoder_kind
        message.sequence = self.sequence
        self.sequence += 1
        self.publisher.publish(message)
        self.live_view.note_event(message)

    def wait_for_decodes(self, timeout_s: float = 10.0) -> bool:
        """Block until every queued segment was decoded and published (a condition variable, no polling)."""
        with self._pending.all_tasks_done:
            return self._pending.all_tasks_done.wait_for(lambda: not self._pending.unfinished_tasks, timeout_s)

    def close(self) -> None:
        """Shutdown: publish the open segment (without text if the decoder never loaded), stop the thread."""
        self.flush()
        self._decoder_settled.set()
        self.wait_for_decodes(CLOSE_TIMEOUT_S)
        self._pending.put(None)
        self._decode_thread.join(CLOSE_TIMEOUT_S)
        self.loader.close()

    def _note_publisher(self, publisher: str) -> None:
        """A new embedding publisher (perception restarted, or a second one): say so, with the silence before it."""
        now = time.monotonic()
        if publisher not in self._embedding_sources and self._embedding_sources:
            self.publisher_changes += 1
            self.last_input_gap_s = now - self._last_embedding_monotonic
            self.get_logger().warning(
                f"embeddings now come from a new publisher (perception restarted?) after {self.last_input_gap_s:.1f} s "
                f"without input; the open segment continues across the gap")
        self._embedding_sources.add(publisher)
        self._last_embedding_monotonic = now

    def _diagnostic_values(self) -> dict:
        received = self.embeddings_received
        return {
            "rate_hz": self.rate.rate_hz(),
            "latency_p50_ms": self.decode_latency.percentile_ms(50),
            "latency_p95_ms": self.decode_latency.percentile_ms(95),
            "embeddings_received": received,
            "embeddings_reused": self.embeddings_reused,
            "embedding_publisher_changes": self.publisher_changes,
            "last_input_gap_s": self.last_input_gap_s,
            **self.losses.values(),
            "events_published": self.sequence,
            "decodes": self.decodes,
            "decodes_per_embedding": self.decodes / received if received else 0.0,
            "events_without_text": self.events_without_text,
            "events_unfamiliar": self.events_unfamiliar,
            "events_suppressed_unfamiliar": self.events_suppressed_unfamiliar,
            "unfamiliar_policy": self.values["unfamiliar_policy"],
            "shift_score": self.detector.last_score,
            "backend": self.engine.backend if self.engine else "",
            "model_id": self.model_id or (self.engine.model_id if self.engine else ""),
            "decoder": self.decoder_kind,
            "model_load_failures": self.model_load_failures,
            **self.live_view.diagnostic_values(),
        }


def main(args: list[str] | None = None) -> int:
    return run_node(MonitorNode, args, PARAMETERS)


if __name__ == "__main__":
    raise SystemExit(main())
