"""The structure of a FITS file read from its bytes with numpy alone.

What the ``numpy`` backend of :mod:`gammaxr.io.fits_backend` (and the quick header look-up
of :func:`gammaxr.io.gadf.read_leading_header`) needs, following the FITS standard 4.0:

- :func:`card_value`: the value of one keyword card (string, logical, integer or real);
- :func:`parse_header`: the (keyword, value) cards of one header, and where its data start;
- :func:`data_size`: the bytes of a data unit;
- :func:`hdu_layouts`: every HDU of a file: its cards, and where its data lie;
- :func:`table_layout`: the numpy record dtype of a binary table (one row) and each
  column's cell dtype and unit.

A header or table outside what these read simply and exactly (complex values, long strings
continued on ``CONTINUE`` cards, variable-length arrays, scaled columns ...) raises
:class:`Unsupported`: the caller then hands it to a FITS library (fitsio or astropy),
which reads it as it always did. Parsing the six HDUs of a DL3 run this way takes a fraction
of a millisecond (fitsio: ~5 ms, astropy: ~15 ms, both mostly holding the GIL).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "BLOCK",
    "HduLayout",
    "TableLayout",
    "UNSIGNED_TZERO",
    "Unsupported",
    "card_value",
    "data_size",
    "hdu_layouts",
    "padded_size",
    "parse_header",
    "table_layout",
]

#: Bytes of a FITS block (headers and data units are whole blocks).
BLOCK = 2880
_CARD = 80
_MAX_HEADER_BLOCKS = 1000  # a header this long is not a header

_INT = re.compile(r"^[+-]?\d+$")
_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([EeDd][+-]?\d+)?$")
_TFORM = re.compile(r"^\s*(\d*)([A-Z])\s*$")
_TDIM = re.compile(r"^\s*\(\s*(\d+(?:\s*,\s*\d+)*)\s*\)\s*$")
#: ``TZEROn`` that only marks unsigned integers, by column format.
UNSIGNED_TZERO = {"I": 2**15, "J": 2**31, "K": 2**63}
# big-endian cell dtypes of the binary-table formats read here
_FORMATS = {"L": "S1", "B": "u1", "I": ">i2", "J": ">i4", "K": ">i8", "E": ">f4", "D": ">f8"}


class Unsupported(ValueError):
    """A header, table or file that needs a FITS library (fitsio or astropy) to be read."""


def card_value(text: str) -> Any:
    """Value of a keyword card's value field (columns 11-80), or None if it is empty.

    Strings (quotes doubled inside, trailing blanks removed), logicals (``T``/``F``),
    integers and reals (``E`` or ``D`` exponent) are read; a comment after ``/`` is ignored.

    Raises
    ------
    ValueError
        For any other value (complex numbers, say).
    """
    text = text.strip()
    if text.startswith("'"):
        end, out = 1, []
        while True:
            stop = text.index("'", end)  # ValueError if the string is not closed
            out.append(text[end:stop])
            if text[stop + 1 : stop + 2] != "'":
                return "".join(out).rstrip()
            out.append("'")
            end = stop + 2
    token = text.split("/", 1)[0].strip()
    if not token:
        return None
    if token in ("T", "F"):
        return token == "T"
    if _INT.match(token):
        return int(token)
    if _FLOAT.match(token):
        return float(token.replace("D", "E").replace("d", "e"))
    raise ValueError(f"cannot read the value {token!r}")


def parse_header(raw: bytes, start: int) -> tuple[list[tuple[str, Any]], int]:
    """The cards of the header that begins at byte ``start`` of ``raw``.

    Parameters
    ----------
    raw : bytes
        FITS file content.
    start : int
        Offset of the header's first block.

    Returns
    -------
    cards : list of (str, object)
        (keyword, value) in file order; commentary cards (``COMMENT``, ``HISTORY``, a blank
        keyword, no value indicator ``=`` in column 9) have their text as value, as astropy
        gives them.
    data_start : int
        Offset of the block after the header (where the data unit begins).

    Raises
    ------
    Unsupported
        No ``END`` card before the end of ``raw``, long strings (``CONTINUE``), ``HIERARCH``
        keywords or values :func:`card_value` does not read.
    """
    cards: list[tuple[str, Any]] = []
    for block in range(_MAX_HEADER_BLOCKS):
        offset = start + block * BLOCK
        if offset + BLOCK > len(raw):
            raise Unsupported("header without an END card before the end of the file")
        text = raw[offset : offset + BLOCK].decode("ascii", "replace")
        for i in range(0, BLOCK, _CARD):
            card = _parse_card(text[i : i + _CARD])
            if card is None:
                return cards, offset + BLOCK
            cards.append(card)
    raise Unsupported("header without an END card")


@lru_cache(maxsize=8192)
def _parse_card(card: str) -> tuple[str, Any] | None:
    """(keyword, value) of one 80-character card as :func:`parse_header` gives it, None for
    the ``END`` card. Memoised by the card's text: the files of a release repeat most of
    their cards (formats, units, classes), parsed once instead of once a file."""
    key = card[:8].rstrip()
    if key == "END" and not card[8:].strip():
        return None
    if key in ("CONTINUE", "HIERARCH"):
        raise Unsupported(f"{key} cards")
    if card[8:10] == "= " and key not in ("COMMENT", "HISTORY", ""):
        try:
            return key, card_value(card[10:])
        except ValueError as exc:
            raise Unsupported(f"{key}: {exc}") from None
    return key, card[8:].rstrip()


def _integer(header: dict[str, Any], key: str, default: int | None = None) -> int:
    value = header.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise Unsupported(f"{key} = {value!r} is not a non-negative integer")
    return value


def data_size(header: dict[str, Any]) -> int:
    """Bytes of an HDU's data unit (without the padding to whole blocks).

    Parameters
    ----------
    header : dict
        The header's keywords (``BITPIX``, ``NAXIS``, ``NAXISn``, ``PCOUNT``, ``GCOUNT``).

    Raises
    ------
    Unsupported
        Missing or invalid structure keywords, or random groups.
    """
    naxis = _integer(header, "NAXIS")
    bitpix = header.get("BITPIX")
    if bitpix not in (8, 16, 32, 64, -32, -64):
        raise Unsupported(f"BITPIX = {bitpix!r}")
    if naxis == 0:
        return 0
    if header.get("GROUPS") is True:
        raise Unsupported("random groups")
    pixels = 1
    for i in range(1, naxis + 1):
        pixels *= _integer(header, f"NAXIS{i}")
    pixels += _integer(header, "PCOUNT", 0)
    return abs(bitpix) // 8 * _integer(header, "GCOUNT", 1) * pixels


def padded_size(size: int) -> int:
    """``size`` bytes rounded up to whole FITS blocks (what a data unit takes in the file)."""
    return -(-size // BLOCK) * BLOCK


class HduLayout(NamedTuple):
    """One HDU of a file: its cards, keywords (first occurrence of each), and data unit."""

    cards: list[tuple[str, Any]]
    keywords: dict[str, Any]
    data_start: int
    data_size: int

    @property
    def name(self) -> str:
        """``EXTNAME`` without blanks (``""`` if absent)."""
        return str(self.keywords.get("EXTNAME", "") or "").strip()

    @property
    def is_binary_table(self) -> bool:
        """Whether the HDU is a binary-table extension."""
        return str(self.keywords.get("XTENSION", "")).strip() == "BINTABLE"


def hdu_layouts(raw: bytes) -> list[HduLayout]:
    """Every HDU of the FITS file content ``raw``, in file order.

    Raises
    ------
    Unsupported
        Not a FITS file, a header :func:`parse_header` does not read, a data unit cut by
        the end of the file, or bytes after the last HDU that are not a further HDU.
    """
    if not raw.startswith(b"SIMPLE  ="):
        raise Unsupported("does not start with SIMPLE")
    layouts: list[HduLayout] = []
    position = 0
    while position < len(raw):
        if layouts and not raw.startswith(b"XTENSION=", position):
            raise Unsupported("bytes after the last HDU")
        cards, data_start = parse_header(raw, position)
        keywords: dict[str, Any] = {}
        for key, value in cards:
            keywords.setdefault(key, value)
        size = data_size(keywords)
        if data_start + size > len(raw):
            raise Unsupported("data unit cut by the end of the file")
        layouts.append(HduLayout(cards, keywords, data_start, size))
        position = data_start + padded_size(size)
    return layouts


class TableLayout(NamedTuple):
    """How the rows of a binary table lie in its data unit.

    Attributes
    ----------
    row : numpy.dtype
        Record dtype of one row (big-endian fields at their byte offsets, ``NAXIS1`` bytes).
    names : tuple of str
        Column names (``TTYPEn``) in order.
    cells : tuple of numpy.dtype
        Each column's cell dtype as read, in native byte order: ``bool`` for logicals,
        ``U`` for text, unsigned for integers of the ``TZERO`` convention.
    units : tuple of str
        Each column's ``TUNITn`` (``""`` if none).
    nrows : int
        ``NAXIS2``.
    """

    row: np.dtype
    names: tuple[str, ...]
    cells: tuple[np.dtype, ...]
    units: tuple[str, ...]
    nrows: int


def _cell_shape(header: dict[str, Any], i: int, repeat: int) -> tuple[int, ...]:
    tdim = header.get(f"TDIM{i}")
    if tdim is None:
        return () if repeat == 1 else (repeat,)
    match = _TDIM.match(str(tdim))
    if match is None:
        raise Unsupported(f"TDIM{i} = {tdim!r}")
    shape = tuple(int(n) for n in match.group(1).split(","))[::-1]  # FITS order is Fortran
    if int(np.prod(shape)) != repeat:
        raise Unsupported(f"TDIM{i} = {tdim!r} does not hold {repeat} values")
    return shape


def _unsigned(header: dict[str, Any], i: int, code: str) -> bool:
    """Whether column ``i`` holds unsigned integers by the ``TZERO`` convention (``TZEROn`` =
    2**15, 2**31 or 2**63 on an ``I``, ``J`` or ``K`` column, ``TSCALn`` absent or 1)."""
    zero = UNSIGNED_TZERO.get(code)
    scale = header.get(f"TSCAL{i}", 1)
    return zero is not None and header.get(f"TZERO{i}") == zero and scale == 1


def table_layout(header: dict[str, Any]) -> TableLayout:
    """The row layout of a binary table from its keywords.

    Columns of formats ``L``, ``B``, ``I``, ``J``, ``K``, ``E``, ``D`` (with repeat counts and
    ``TDIMn`` shapes) and ``A`` (one string per cell) are read, unscaled, and unsigned
    integers stored by the ``TZERO`` convention.

    Raises
    ------
    Unsupported
        Any other format (bits, complex, variable-length arrays), other scaled or offset
        columns (``TSCALn``/``TZEROn``), unnamed or empty (repeat 0) columns, or column widths that do not add up to
        ``NAXIS1``.
    """
    nrows = _integer(header, "NAXIS2")
    # memoised by the keywords that make the row (not the number of rows): the files of a
    # release repeat their tables' columns
    key = tuple(
        (k, v)
        for k, v in header.items()
        if k in _ROW_KEYWORDS or k.rstrip("0123456789") in _COLUMN_KEYWORDS
    )
    return _row_layout(key)._replace(nrows=nrows)


#: The keywords a table's row layout depends on (``_COLUMN_KEYWORDS``: with the column number).
_ROW_KEYWORDS = frozenset(("NAXIS1", "TFIELDS"))
_COLUMN_KEYWORDS = frozenset(("TTYPE", "TFORM", "TDIM", "TUNIT", "TSCAL", "TZERO"))


@lru_cache(maxsize=256)
def _row_layout(keywords: tuple[tuple[str, Any], ...]) -> TableLayout:
    """:func:`table_layout` of the row keywords ``keywords`` (``nrows`` 0)."""
    header = dict(keywords)
    width = _integer(header, "NAXIS1")
    names, formats, offsets, cells, units = [], [], [], [], []
    offset = 0
    for i in range(1, _integer(header, "TFIELDS") + 1):
        name, tform = header.get(f"TTYPE{i}"), header.get(f"TFORM{i}")
        if not isinstance(name, str) or not name.strip():
            raise Unsupported(f"column {i} has no name")
        match = _TFORM.match(str(tform))
        if match is None or match.group(2) not in (*_FORMATS, "A"):
            raise Unsupported(f"column {name!r}: format {tform!r}")
        code, repeat = match.group(2), int(match.group(1) or 1)
        if repeat == 0:
            raise Unsupported(f"column {name!r} holds no values")
        unsigned = _unsigned(header, i, code)
        if not unsigned and (f"TSCAL{i}" in header or f"TZERO{i}" in header):
            raise Unsupported(f"column {name!r} is scaled")
        if code == "A":
            if f"TDIM{i}" in header:
                raise Unsupported(f"column {name!r}: text array")
            field, cell = np.dtype(f"S{repeat}"), np.dtype(f"U{repeat}")
            size = repeat
        else:
            base = np.dtype(_FORMATS[code])
            shape = _cell_shape(header, i, repeat)
            field = np.dtype((base, shape)) if shape else base
            cell_base = np.dtype(bool) if base.kind == "S" else base.newbyteorder("=")
            if unsigned:
                cell_base = np.dtype(f"u{base.itemsize}")
            cell = np.dtype((cell_base, shape)) if shape else cell_base
            size = base.itemsize * repeat
        names.append(name)
        formats.append(field)
        offsets.append(offset)
        cells.append(cell)
        units.append(str(header.get(f"TUNIT{i}", "") or ""))
        offset += size
    if offset != width:
        raise Unsupported(f"columns take {offset} bytes, NAXIS1 = {width}")
    if len({n.strip().upper() for n in names}) != len(names):
        raise Unsupported("two columns of the same name")
    row = np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": width})
    return TableLayout(row, tuple(names), tuple(cells), tuple(units), 0)
