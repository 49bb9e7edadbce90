"""Exception classes of the library.

The CLI turns every ``EdgemvError`` into one line on stderr and a non-zero exit; anything else is a bug and
keeps its traceback.
"""

__all__ = ["EdgemvError", "UnknownVariantError", "WeightsError", "PickledObjectsError", "CheckpointMismatchError",
           "DataError", "ScanImplError", "ScanInputError", "PluginBuildError"]


class EdgemvError(Exception):
    """Base class: a problem the user can fix (bad input, missing file, missing optional package)."""


class UnknownVariantError(EdgemvError, ValueError):
    """A variant name that is not in the variant table."""


class WeightsError(EdgemvError):
    """Weights that cannot be found, read or fetched."""


class PickledObjectsError(WeightsError):
    """A .pt/.pth file that holds Python objects beyond tensors: unpickling it would run code stored in it."""

    def __init__(self, message: str, refused_global: str = ""):
        super().__init__(message)
        self.refused_global = refused_global  # the first object type the safe loader refused


class CheckpointMismatchError(WeightsError):
    """A checkpoint whose keys or shapes do not match the model it is loaded into."""


class DataError(EdgemvError):
    """Images or tensors that cannot be used (missing, unreadable, empty set)."""


class ScanImplError(EdgemvError, ValueError):
    """An unknown selective-scan implementation name, or one not available on this device."""


class ScanInputError(EdgemvError, ValueError):
    """Selective-scan arguments whose shapes, dtypes or devices do not fit together."""


class PluginBuildError(EdgemvError):
    """The TensorRT plugin library cannot be built here (no nvcc, no TensorRT headers, a compiler error)."""
