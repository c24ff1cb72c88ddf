"""Rules for the parameters several nodes share, checked when a parameter is set (declare_parameters)
and when a node loads (parameter_values), so that a bad value is refused with its reason."""
from __future__ import annotations

from rclpy.parameter import Parameter

MAX_QUERY_CHARS = 2000  # the predictor reads at most query_max_tokens (<= 512) tokens of a query anyway


def check_shared_parameter(parameter: Parameter) -> str | None:
    """Rules for parameters several nodes share, checked when set (and, for values given at start-up,
    when the node loads: `parameter_values`), so a bad value is refused with the reason instead of
    replacing what the node runs. `model_dir` must hold a whole model (model/model_dir_check.py; empty:
    the shipped one); `engine_cache_dir` must follow runtime/cache_dir_rules.py (an existing folder or one
    inside the cache root, absolute, no `..`); `query` must be non-empty and at most MAX_QUERY_CHARS characters."""
    if parameter.name == "model_dir" and parameter.value:
        from vljepa_ros.model.model_dir_check import model_dir_problem
        problem = model_dir_problem(str(parameter.value))
        return f"model_dir refused: {problem}" if problem else None
    if parameter.name == "engine_cache_dir":
        from vljepa_ros.runtime.cache_dir_rules import cache_dir_problem
        return cache_dir_problem(str(parameter.value))
    if parameter.name == "query":
        if not str(parameter.value).strip():
            return "query must not be empty"
        if len(str(parameter.value)) > MAX_QUERY_CHARS:
            return (f"query has {len(str(parameter.value))} characters: at most {MAX_QUERY_CHARS} (the predictor "
                    "reads a few hundred tokens of it)")
    return None
