"""Reading YAML descriptions (analysis and simulation configurations) with clear errors."""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

__all__ = ["read_yaml_mapping", "suggest"]


def read_yaml_mapping(
    path: str | os.PathLike, error: type[Exception], not_found: str
) -> tuple[Mapping[str, Any], Path]:
    """Load a YAML file whose top level is a mapping.

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    error : type of Exception
        Raised (with a message naming the file) when the file is missing, is not YAML, or
        does not hold a mapping.
    not_found : str
        Message for a missing file, after the path (``"no such configuration file"``).

    Returns
    -------
    (mapping, pathlib.Path)
        The content and the path.
    """
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: {not_found}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, Mapping):
        raise error(f"{path}: expected a mapping at the top level of the YAML file")
    return data, path


def suggest(key: str, allowed: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` for the closest of ``allowed`` to ``key``, or ``""``."""
    close = difflib.get_close_matches(str(key), sorted(allowed), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
