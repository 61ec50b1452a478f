"""Exceptions raised when reading DL3 data; each names the file, HDU or obs_id at fault."""

from __future__ import annotations

__all__ = [
    "CorruptFileError",
    "DL3Error",
    "HDUNotFoundError",
    "MissingFileError",
    "ObsIdNotFoundError",
    "UnknownHDUClassError",
]


class DL3Error(Exception):
    """A DL3 file or index cannot be read as GADF; the message names the file and the problem."""


class HDUNotFoundError(DL3Error, KeyError):
    """An HDU named by the HDU index (or asked for) is not in the file / not in the index."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class UnknownHDUClassError(DL3Error, ValueError):
    """An HDU declares an HDU_CLASS that gammaxr does not read."""


class ObsIdNotFoundError(DL3Error, KeyError):
    """An obs_id is not in the data store."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class MissingFileError(DL3Error, FileNotFoundError):
    """A file named by a data store (index, event or IRF file) does not exist."""


class CorruptFileError(DL3Error, OSError):
    """A file exists but cannot be decoded (broken gzip stream, not FITS)."""
