"""Exceptions raised by the ml package; every rejection names what was wrong."""

from __future__ import annotations


class ModelError(ValueError):
    """Base class for every error the ml package raises on bad input."""


class ArtifactError(ModelError):
    """A model artifact is malformed; ``field`` names the first failing field.

    The field is a path into the artifact such as ``contributors[0].left`` so
    that a corrupted file says where it is broken, not just that it is.
    """

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class InputError(ModelError):
    """Training or scoring data is unusable (bad CSV, wrong shape, NaN, missing column)."""


class TrainingError(ModelError):
    """Hyper-parameters are outside what the artifact format can carry."""


class MergeError(ModelError):
    """Models cannot be merged (different feature schema, duplicate contributor, ...)."""


class FloatEnvironmentError(ModelError):
    """This process flushes subnormal floats to zero, so its scores could differ from other nodes'.

    Loading a shared library built with ``-ffast-math`` switches the CPU's
    flush-to-zero / denormals-are-zero modes for the whole thread; a feature
    value in float32's subnormal range would then go the other way at a split.
    """
