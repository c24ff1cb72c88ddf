"""Where a node may write (and load) ONNX exports and TensorRT engines: the `engine_cache_dir` rule.

Any peer on the ROS domain can set a node's parameters (ROS 2 has no authentication without SROS2),
so a path parameter must not let it make the node create folders or write files anywhere the node's
user may write. `engine_cache_dir` is accepted when, as given:

* it is empty: the cache root (`default_cache_dir()`: $VLJEPA_ROS_CACHE, else
  $XDG_CACHE_HOME/vljepa_ros, else ~/.cache/vljepa_ros);
* it is absolute (after `~` expansion) and has no `..` component;
* and, with symbolic links resolved, it is an existing directory (created by someone who meant it),
  or it lies inside the cache root (created there, with its parents, on first use).

Anything else is refused with the reason. Inside the folder the node writes only files of fixed names
(`clip_encoder-q*.onnx`, `text_encoder-t*.onnx`, their TensorRT engines and key files), and loads an
export only when its key (model id, lengths, shapes, format) matches the model (onnx_export.find_export).
"""
from __future__ import annotations

from pathlib import Path

from vljepa_ros.runtime.onnx_export import default_cache_dir


def cache_dir_problem(value: str) -> str | None:
    """Why `value` may not serve as engine_cache_dir (the rule above), or None."""
    try:
        resolve_cache_dir(value)
    except ValueError as error:
        return str(error)
    return None


def resolve_cache_dir(value: str) -> Path:
    """The folder `value` names, resolved (the rule above); ValueError with the reason otherwise."""
    root = default_cache_dir().expanduser().resolve()
    if not value:
        return root
    path = Path(value).expanduser()
    if not path.is_absolute():
        raise ValueError(f"engine_cache_dir {value!r} is relative: give an absolute path (a relative one would "
                         "depend on the node's working directory)")
    if ".." in path.parts:
        raise ValueError(f"engine_cache_dir {value!r} contains '..': give the folder itself")
    resolved = path.resolve()
    if resolved.is_dir() or resolved == root or root in resolved.parents:
        return resolved
    if resolved.exists():
        raise ValueError(f"engine_cache_dir {value!r} is not a directory")
    raise ValueError(f"engine_cache_dir {value!r} does not exist and is not inside the cache root {root}: "
                     f"create the folder first, or choose one inside {root} (set VLJEPA_ROS_CACHE to move the root)")
