"""Where the package's data lives: the shipped model, configs and launch files.

The same files are found from a source checkout (tests, development), a pip install (setup.py's
data_files under <prefix>/share/vljepa_ros) and a colcon install (ament index share directory).
"""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

LOGGER = logging.getLogger(__name__)
PACKAGE = "vljepa_ros"
SOURCE_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL_NAME = "small"


def share_dirs() -> list[Path]:
    """Candidate share directories, most specific first."""
    candidates = [SOURCE_ROOT] if (SOURCE_ROOT / "package.xml").is_file() else []
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
        candidates.append(Path(get_package_share_directory(PACKAGE)))
    except ImportError:  # not a ROS environment: the pip and source locations below still apply
        LOGGER.debug("ament_index_python is not importable; not searching the ament index")
    except (PackageNotFoundError, OSError) as error:  # OSError: AMENT_PREFIX_PATH is not set
        LOGGER.debug("%s not found in the ament index (%s): a pip install or a source checkout", PACKAGE, error)
    for prefix in (sys.prefix, *os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep)):
        if prefix:
            candidates.append(Path(prefix) / "share" / PACKAGE)
    unique = dict.fromkeys(path.resolve() for path in candidates if path.is_dir())  # ament index == prefix/share
    return list(unique)


def find_share_file(relative: str) -> Path:
    for directory in share_dirs():
        if (directory / relative).exists():
            return directory / relative
    searched = ", ".join(str(d) for d in share_dirs()) or "(no share directory found)"
    raise FileNotFoundError(f"{relative} not found in the vljepa_ros share directories: {searched}")


def default_model_dir() -> Path:
    return find_share_file(f"models/{DEFAULT_MODEL_NAME}")


def resolve_model_dir(model_dir: str | os.PathLike | None) -> Path:
    """An explicit directory as given; empty means the model shipped with the package."""
    if model_dir:
        return Path(model_dir).expanduser()
    return default_model_dir()


# A model directory's text banks: banks/<name>.txt, one text per line ("#" starts a comment line).
# labels: zero-shot classes (perception), captions: retrieval-decoder texts (monitor), actions:
# inverse-dynamics candidates (action inference), answers: every answer text the model was trained on.
BANKS_DIR = "banks"


def bank_file(model_dir: str | os.PathLike, name: str) -> Path:
    return Path(model_dir) / BANKS_DIR / f"{name}.txt"


def read_text_lines(path: str | os.PathLike) -> list[str]:
    """The entries of a bank file: stripped non-empty lines that are not comments."""
    with open(path, encoding="utf-8") as handle:
        return [line.strip() for line in handle if line.strip() and not line.startswith("#")]


def default_config_file() -> Path:
    return find_share_file("config/vljepa.yaml")
