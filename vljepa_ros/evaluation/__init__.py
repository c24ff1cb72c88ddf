"""Offline evaluation of a VL-JEPA model on a frame stream (a bag or a generated world): metrics + plots.

    engine = vljepa_ros.runtime.create_engine("models/small")
    report = run_eval(engine, stream, EvalOptions(plots_dir=Path("out")))
    clips = embed_stream(engine, stream)   # what the perception node publishes for the same frames
"""
from vljepa_ros.evaluation.embedding import StreamEmbeddings, embed_frames, embed_stream
from vljepa_ros.evaluation.run import EvalOptions, run_eval, write_json
from vljepa_ros.stream.shift_detector import DetectorSettings

__all__ = ["EvalOptions", "DetectorSettings", "StreamEmbeddings", "embed_frames", "embed_stream", "run_eval",
           "write_json"]
