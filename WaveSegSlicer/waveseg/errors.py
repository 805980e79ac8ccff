"""Errors that WaveSeg reports to users: each says what was wrong and what is expected.

They derive from ``ValueError`` so callers that already catch bad-argument errors keep working;
the CLI, the app and the Slicer module print their message instead of a traceback.
"""


class WaveSegError(ValueError):
    """Base class of every error WaveSeg raises for bad input or bad files."""


class InvalidImageError(WaveSegError):
    """The image array cannot be segmented (wrong shape, no finite pixel, ...)."""


class InvalidPromptError(WaveSegError):
    """Points, labels, box or mask input are malformed or outside the image."""


class ImageFileError(WaveSegError):
    """An image or mask file cannot be read or written."""


class ModelFileError(WaveSegError):
    """A model file is missing, tampered with, not safetensors, or for another model."""


class MissingDependencyError(WaveSegError):
    """An optional dependency is not installed; the message names the pip extra."""
