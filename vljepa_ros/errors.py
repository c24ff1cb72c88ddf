"""Exceptions of the ROS-free core. Each message names what was wrong and, where it helps, how to fix it."""


class VLJepaError(Exception):
    """Base class of every error vljepa_ros raises on purpose."""


class CheckpointError(VLJepaError):
    """A checkpoint file is missing, corrupt, or does not match the model configuration."""


class ImageConversionError(VLJepaError):
    """An image could not be turned into an RGB array (unknown encoding, wrong size, corrupt data)."""


class InvalidEmbeddingError(VLJepaError, ValueError):
    """An embedding has the wrong dimension or contains NaN/Inf."""


class EmptyLabelBankError(VLJepaError):
    """A label bank or candidate list has no entries."""


class BackendUnavailableError(VLJepaError):
    """An inference backend cannot run here (library not importable, no GPU, ...)."""


class InvalidClipError(VLJepaError, ValueError):
    """Frames cannot form a clip (no frames, wrong shape, before/after images of different sizes)."""
