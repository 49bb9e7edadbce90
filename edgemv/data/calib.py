"""Where the default calibration images live: the repository's ``calib/`` folder."""

from pathlib import Path

from ..errors import DataError

__all__ = ["default_calib_dir"]


def default_calib_dir() -> Path:
    """The shipped calibration set: ``calib/`` beside the ``edgemv`` package in a source checkout or editable
    install. Raises DataError when it is not there (a wheel install ships no images)."""
    package_dir = Path(__file__).resolve().parent.parent  # .../edgemv
    calib = package_dir.parent / "calib"
    if not calib.is_dir():
        raise DataError(f"the default calibration set ({calib}) is not installed with this copy of edgemv; "
                        "pass --calib with a folder of your own images")
    return calib
