"""Convolution of stacks of ``(lat, lon)`` planes with one small kernel, zero outside the map.

The one home of the numerical core behind the ring background
(:mod:`gammaxr.reduce.ring`) and the sky kernels of :mod:`gammaxr.estimators.smoothing`
(top-hat, Gaussian, box). :func:`convolve_plane_sources` takes every plane of several
maps that share the kernel (energy bands, runs; counts, background, exposure ratios) and
convolves them a few MB at a time (:data:`PLANE_BATCH_BYTES`, twice that for the
banded passes, whose batches run on every core in an eager call:
:mod:`gammaxr.geom.batch_threads`): each batch is gathered (masked, NaN counted as 0, as
float64) into a work buffer, convolved while it is in the CPU caches, and written once
into the output, so the working memory beyond the output stays a few MB per thread
whatever the number of planes. The work buffers are kept by the thread for its next
convolution (:func:`work_buffer`): fresh memory costs a page fault per 4 kB at its first
touch. :func:`convolve_planes` is the same for one array. Three exact methods:

- a separable kernel (an outer product, as a Gaussian or a box) at most
  :data:`SEPARABLE_MAX_SIZE` pixels wide: two 1D passes, each a few matrix products with
  one banded (Toeplitz) block of the 1D kernel (:func:`banded_pass`): every block of
  :func:`band_block` output pixels is the product of the input window it sees and one small
  matrix (the blocks inside the array in one stacked product), so BLAS does the sums
  (vectorised, on all cores) with little work on the band's zeros; the sums give exact
  zeros where the kernel sees no data;
- a small top-hat (a kernel whose rows are centred runs of one value, :func:`row_runs`,
  at most :data:`ROW_RUNS_MAX_ADDS` additions per pixel): the horizontal box sum of every
  half-width in the kernel, then each output row as the sum of the kernel rows' box sums,
  shifted along lat; each sum a contiguous numpy loop over the whole batch;
- any other kernel (a larger disk, a ring): a real FFT of the planes, multiplied by the
  kernel's spectrum. The transform is only as long as the planes plus half the kernel
  (circular wrap-around cannot reach the pixels kept), and the kernel's spectrum is computed
  once per kernel and transform shape and reused (:func:`kernel_spectrum`, a small bounded
  memo of a pure function), across calls as well: the per-run blocks of a dask graph share it.

The direct sums give exact zeros where the kernel sees no data, and integers for integer
counts. FFT noise is cleared to exact zeros below a threshold the caller sets
(``zero_rtol``).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import scipy.fft
from numpy.lib.stride_tricks import as_strided

from gammaxr.geom.batch_threads import run_batches
from gammaxr.memory import result_array

__all__ = [
    "BAND_BLOCK",
    "COLUMN_BAND_BLOCK",
    "FUSED_ROWS",
    "WIDE_BAND_BLOCK",
    "WIDE_KERNEL_HALF",
    "ROW_RUNS_MAX_ADDS",
    "SEPARABLE_MAX_SIZE",
    "band_block",
    "banded_block",
    "banded_pass",
    "convolve_plane_sources",
    "convolve_planes",
    "kernel_spectrum",
    "row_runs",
    "separable_factors",
    "sums_on_one_thread",
    "work_buffer",
]

#: Widest separable kernel (pixels) convolved directly rather than by FFT.
SEPARABLE_MAX_SIZE = 41
#: Most additions per pixel of a top-hat (kernel of centred runs, :func:`row_runs`) summed
#: directly rather than by FFT: ``2 w + n - 1`` for half-width ``w`` and ``n`` rows, 20 for
#: a radius of 5 pixels (measured on 150 x 150 planes: 0.17 ms a plane against 0.24 ms for
#: the FFT; they cost the same at a radius of 6-7 pixels).
ROW_RUNS_MAX_ADDS = 24
#: Bytes of float64 planes convolved at a time (a few MB: a batch stays in the CPU caches
#: and its buffers are reused; each batch is split between the FFT workers or BLAS threads).
PLANE_BATCH_BYTES = 2 * 2**20
#: Bytes of work buffers each thread keeps for its next convolution (:func:`work_buffer`).
KEPT_WORK_BYTES = 16 * 2**20
#: Largest kernel spectrum (bytes) kept for reuse by :func:`kernel_spectrum`.
REMEMBERED_SPECTRUM_BYTES = 4 * 2**20
#: Relative tolerance of the separability test (float noise of an outer product).
SEPARABLE_RTOL = 1e-12
#: Output pixels per block of a banded pass along axis 1 (lines as rows: the lon pass) of a
#: kernel at most :data:`WIDE_KERNEL_HALF` pixels from its centre. Each block is the product
#: of the input window it sees with one ``(block + 2 h, block)`` band, so a pixel costs
#: ``2 (block + 2 h)`` operations against ``2 (2 h + 1)`` for the kernel alone: small blocks
#: multiply fewer of the band's zeros. The blocks whose window lies inside the array are one
#: stacked product (one numpy call, BLAS for each block), so small blocks cost no Python
#: calls. Measured on 150 x 150 planes (docs/performance.md, session 16): for the 21-pixel
#: Gaussian, 400 planes on the batch threads (one BLAS thread each) 25 ms against 31-34 ms
#: with blocks of 32; 20 planes on two BLAS threads about the same (1.27-1.51 ms against
#: 1.40-1.42 ms). Along axis 1 the blocks are the narrow side of each product (the band
#: from the right): blocks of 4 took 0.80-0.85 ms for the 20 planes' lon pass, against
#: 0.54-0.56 ms for blocks of 8 (session 17).
BAND_BLOCK = 8
#: Half width (pixels) beyond which a kernel's passes along axis 1 take blocks of
#: :data:`WIDE_BAND_BLOCK`: for half widths of 20 px, both passes of 20 planes took
#: 2.2-2.9 ms in blocks of 8, 1.9-2.2 ms in blocks of 16 (32: 2.1-2.4 ms; session 16, both
#: passes in blocks of one size); the lon pass alone 1.12-1.90 ms in blocks of 8 against
#: 0.87-1.54 ms in blocks of 16 (session 17).
WIDE_KERNEL_HALF = 15
#: Output pixels per block of the passes along axis 1 of kernels wider than
#: :data:`WIDE_KERNEL_HALF`.
WIDE_BAND_BLOCK = 16
#: Output pixels per block of a banded pass along axis 0 (lines as columns, the band from
#: the left: the lat pass), whatever the kernel's width. There the block is the short side
#: of a product with every line of the batch, and small blocks pay: on the lat pass of 20
#: planes of 150 x 150 (one BLAS thread, session 17), half widths of 2, 10 and 20 px took
#: 0.19, 0.44 and 0.79 ms in blocks of 4, against 0.24, 0.51 and 1.19 ms in blocks of 8 and
#: 0.37, 0.85 and 1.21 ms in blocks of 16; blocks of 2 took 0.49 ms at 10 px. The sums
#: were the same to the last bit as with blocks of 8 there (the same products, added in the
#: same order by that OpenBLAS).
COLUMN_BAND_BLOCK = 4
#: Output rows of one fused block of the two banded passes (several batches): the lat pass
#: of these rows goes to a small work buffer, still in the core's cache for the lon pass.
#: A multiple of :data:`COLUMN_BAND_BLOCK`, so that a fused block's products are those of
#: the whole pass.
FUSED_ROWS = 48


_thread_work = threading.local()


def work_buffer(role: str, shape: tuple[int, ...]) -> np.ndarray:
    """An uninitialised float64 work array of ``shape``, reused by the calling thread.

    A convolution's work arrays (the gathered planes, the pass between the two banded
    passes) are taken from memory the thread kept from its last convolution: fresh memory
    costs a page fault per 4 kB page at its first touch, which on small maps costs as much
    as the sums. Each thread keeps at most :data:`KEPT_WORK_BYTES` in all (larger arrays
    are allocated and freed as usual); the memory is freed with the thread.

    Parameters
    ----------
    role : str
        What the array is for; one array per role and thread, so two roles never share.
    shape : tuple of int
        The shape wanted.

    Returns
    -------
    numpy.ndarray of float64, C-contiguous
        Contents undefined; valid until the thread asks for ``role`` again.
    """
    kept = getattr(_thread_work, "arrays", None)
    if kept is None:
        kept = _thread_work.arrays = {}
    size = math.prod(shape)  # (python ints: no numpy call per batch)
    storage = kept.get(role)
    if storage is None or storage.size < size:
        storage = np.empty(size)
        others = sum(a.nbytes for name, a in kept.items() if name != role)
        if others + storage.nbytes <= KEPT_WORK_BYTES:
            kept[role] = storage
        else:
            kept.pop(role, None)
    return storage[:size].reshape(shape)


def _check_kernel(kernel: np.ndarray) -> np.ndarray:
    kernel = np.asarray(kernel, dtype=np.float64)
    if kernel.ndim != 2 or kernel.shape[0] % 2 == 0 or kernel.shape[1] % 2 == 0:
        raise ValueError(f"kernel must be 2D with odd sizes, got shape {kernel.shape}")
    return kernel


def separable_factors(kernel: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``(column, row)`` with ``outer(column, row) == kernel`` (to float noise), or None.

    Parameters
    ----------
    kernel : numpy.ndarray, shape (k_lat, k_lon)
        A 2D kernel.

    Returns
    -------
    tuple of numpy.ndarray or None
        The lat and lon factors of a separable (rank-one) kernel; None otherwise.
    """
    kernel = np.asarray(kernel, dtype=np.float64)
    peak = np.unravel_index(np.argmax(np.abs(kernel)), kernel.shape)
    if kernel[peak] == 0:
        return None
    column = kernel[:, peak[1]]
    row = kernel[peak[0], :] / kernel[peak]
    scale = np.abs(kernel[peak])
    if np.abs(np.outer(column, row) - kernel).max() > SEPARABLE_RTOL * scale:
        return None
    return column, row


def row_runs(kernel: np.ndarray) -> tuple[float, tuple[int, ...]] | None:
    """The half-widths of a kernel made of centred runs of one value, or None.

    A top-hat (a disk of 0/1 or of one normalised value) is such a kernel: each row is
    zero but for one run of equal values centred on the middle column, every run has the
    same value, and every row of a disk has one. Its convolution is a sum of horizontal box
    sums, shifted along lat (:class:`_RowRunBatches`).

    Parameters
    ----------
    kernel : numpy.ndarray, shape (k_lat, k_lon)
        Odd-sized 2D kernel.

    Returns
    -------
    tuple or None
        ``(value, half_widths)``: the runs' value and, per kernel row, the half-width of
        its run (``-1`` for a row of zeros); None for any other kernel.
    """
    kernel = np.asarray(kernel, dtype=np.float64)
    centre = kernel.shape[1] // 2
    nonzero = kernel != 0
    if not nonzero.any():
        return None
    value = kernel[nonzero][0]
    if np.any(kernel[nonzero] != value):
        return None
    half_widths = []
    columns = np.arange(kernel.shape[1]) - centre
    for row in nonzero:
        if not row.any():
            half_widths.append(-1)
            continue
        width = int(np.abs(columns[row]).max())
        if row.sum() != 2 * width + 1:  # not one run centred on the middle column
            return None
        half_widths.append(width)
    return float(value), tuple(half_widths)


def _band_matrix(weights: np.ndarray, block: int, transposed: bool) -> np.ndarray:
    """``M[i, j] = weights[2 h + j - i]`` within the band ``0 <= i - j <= 2 h`` (else 0), for
    ``i < block + 2 h`` and ``j < block`` (its transpose, C order, if ``transposed``): output
    ``j`` of a block is the sum of its window's inputs ``j .. j + 2 h`` times the kernel,
    flipped (a convolution, as :func:`scipy.ndimage.convolve1d`). Read-only, computed once
    per kernel (a small memo of a pure function)."""
    return _remembered_band(weights.tobytes(), block, transposed)


@lru_cache(maxsize=32)
def _remembered_band(weights_bytes: bytes, block: int, transposed: bool) -> np.ndarray:
    weights = np.frombuffer(weights_bytes, dtype=np.float64)
    half = weights.size // 2
    lag = np.arange(block + 2 * half)[:, None] - np.arange(block)[None, :]  # 0 .. 2h in band
    inside = (lag >= 0) & (lag <= 2 * half)
    band = np.where(inside, weights[::-1][np.clip(lag, 0, 2 * half)], 0.0)
    band = np.ascontiguousarray(band.T) if transposed else band
    band.flags.writeable = False
    return band


def banded_pass(
    lines: np.ndarray, weights: np.ndarray, axis: int, out: np.ndarray | None = None
) -> np.ndarray:
    """Convolve the 2D array ``lines`` along ``axis`` with the odd-sized 1D kernel
    ``weights``, zero outside the array (``"same"`` mode).

    The output is computed in blocks of :func:`band_block` pixels along ``axis``, each the
    matrix product of the input window the block sees (a view, no copy) with the same small
    banded matrix, cut at the array's edges; the blocks whose window lies inside the array
    are one stacked product.

    Parameters
    ----------
    lines : numpy.ndarray of float64, shape (n, m) or (m, n), C-contiguous
        ``axis=0``: ``m`` lines of ``n`` pixels as columns (the product from the left, the
        fastest); ``axis=1``: as rows.
    weights : numpy.ndarray, shape (2 h + 1,)
        1D kernel centred on its middle element.
    axis : {0, 1}
        The axis convolved.
    out : numpy.ndarray of float64, optional
        Where to write the result (C-contiguous, same shape, not overlapping ``lines``).

    Returns
    -------
    numpy.ndarray of float64, same shape as ``lines``, C-contiguous
        ``out`` if given.
    """
    weights = np.asarray(weights, dtype=np.float64)
    if out is None:
        out = np.empty_like(lines)
    _banded_products(lines, weights, axis, 0, out)
    return out


def banded_block(lines: np.ndarray, weights: np.ndarray, start: int, out: np.ndarray) -> None:
    """The ``len(out)`` output lines from ``start`` on of :func:`banded_pass` along axis 0
    (the lat pass of a block of rows, :data:`FUSED_ROWS` in the fused passes).

    Parameters
    ----------
    lines : numpy.ndarray of float64, shape (n, m)
        The input, ``m`` lines of ``n`` pixels as columns (rows may be strided).
    weights : numpy.ndarray, shape (2 h + 1,)
        1D kernel centred on its middle element.
    start : int
        The first output pixel along axis 0.
    out : numpy.ndarray of float64, shape (k, m), start + k <= n
        Where the ``k`` output lines are written.
    """
    _banded_products(lines, np.asarray(weights, dtype=np.float64), 0, start, out)


def band_block(half: int, axis: int = 1) -> int:
    """Output pixels per block of the banded pass along ``axis`` of a 1D kernel of half
    width ``half`` pixels: :data:`COLUMN_BAND_BLOCK` along axis 0; along axis 1
    :data:`BAND_BLOCK`, or :data:`WIDE_BAND_BLOCK` beyond :data:`WIDE_KERNEL_HALF`.

    Parameters
    ----------
    half : int
        Half width of the kernel in pixels (its size is ``2 half + 1``).
    axis : {0, 1}
        The axis of :func:`banded_pass`: 0 for lines as columns (the lat pass), 1 for lines
        as rows (the lon pass).

    Returns
    -------
    int
    """
    if axis == 0:
        return COLUMN_BAND_BLOCK
    return WIDE_BAND_BLOCK if half > WIDE_KERNEL_HALF else BAND_BLOCK


def _banded_products(
    lines: np.ndarray, weights: np.ndarray, axis: int, start: int, out: np.ndarray
) -> None:
    """Output pixels ``start .. start + out.shape[axis]`` along ``axis`` of the banded pass
    of ``lines``, written to ``out``: blocks of :func:`band_block` pixels from ``start``
    on, the blocks whose window lies inside ``lines`` in one stacked product, the others
    (at the edges, or cut short at the end) one product each with the band cut to their
    window."""
    half, n = weights.size // 2, lines.shape[axis]
    block = band_block(half, axis)
    stop = start + out.shape[axis]
    band = _band_matrix(weights, block, transposed=axis == 0)
    # whole blocks (start + j block) with their window inside: j in [inner_lo, inner_hi)
    inner_lo = max(0, -(-(half - start) // block))
    inner_hi = max(inner_lo, (min(n - half, stop) - start) // block)
    n_blocks = -(-(stop - start) // block)
    for j in [*range(min(inner_lo, n_blocks)), *range(inner_hi, n_blocks)]:
        first = start + j * block
        last = min(first + block, stop)
        low, high = max(first - half, 0), min(last + half, n)
        cut = low - (first - half)  # band rows (columns, transposed) cut off at the lower edge
        into = slice(first - start, last - start)
        if axis == 0:
            window = band[: last - first, cut : cut + high - low]
            np.matmul(window, lines[low:high], out=out[into])
        else:
            window = band[cut : cut + high - low, : last - first]
            np.matmul(lines[:, low:high], window, out=out[:, into])
    if inner_hi > inner_lo:
        _stacked_products(
            lines,
            band,
            axis,
            start + inner_lo * block - half,
            inner_hi - inner_lo,
            out,
            inner_lo * block,
        )


def _stacked_products(
    lines: np.ndarray,
    band: np.ndarray,
    axis: int,
    window_start: int,
    count: int,
    out: np.ndarray,
    out_start: int,
) -> None:
    """``count`` consecutive blocks of a banded pass, their windows (from ``window_start``
    along ``axis``, one block apart, inside ``lines``) seen as one stack of strided views:
    one ``numpy.matmul`` with the band (``(block, block + 2 h)`` along axis 0, its
    transpose along axis 1), each block a BLAS product written in place into ``out`` from
    ``out_start`` on."""
    block, width = band.shape if axis == 0 else band.shape[::-1]  # width: block + 2 h
    step, other = lines.strides[axis], lines.strides[1 - axis]
    out_step, out_other = out.strides[axis], out.strides[1 - axis]
    if axis == 0:
        windows = as_strided(
            lines[window_start:],
            shape=(count, width, lines.shape[1]),
            strides=(block * step, step, other),
            writeable=False,
        )
        target = as_strided(
            out[out_start:],
            shape=(count, block, out.shape[1]),
            strides=(block * out_step, out_step, out_other),
        )
        np.matmul(band, windows, out=target)
    else:
        windows = as_strided(
            lines[:, window_start:],
            shape=(count, lines.shape[0], width),
            strides=(block * step, other, step),
            writeable=False,
        )
        target = as_strided(
            out[:, out_start:],
            shape=(count, out.shape[0], block),
            strides=(block * out_step, out_other, out_step),
        )
        np.matmul(windows, band, out=target)


def _use_separable(kernel: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The factors of ``kernel`` if :func:`convolve_planes` takes the banded passes."""
    if max(kernel.shape) > SEPARABLE_MAX_SIZE:
        return None
    return _remembered_factors(kernel.tobytes(), kernel.shape)


@lru_cache(maxsize=32)
def _remembered_factors(kernel_bytes: bytes, shape: tuple[int, int]):
    kernel = np.frombuffer(kernel_bytes, dtype=np.float64).reshape(shape)
    factors = separable_factors(kernel)
    if factors is not None:
        for factor in factors:
            factor.flags.writeable = False
    return factors


def _fft_length(n_pixels: int, half_kernel: int) -> int:
    # circular convolution of length L equals the linear one on the n kept pixels when
    # L >= n + half_kernel (the wrapped part of the kernel falls outside the map); the whole
    # kernel must fit in L as well
    return scipy.fft.next_fast_len(max(n_pixels + half_kernel, 2 * half_kernel + 1), real=True)


def _spectrum(kernel_bytes: bytes, kernel_shape: tuple[int, int], shape: tuple[int, int]):
    kernel = np.frombuffer(kernel_bytes, dtype=np.float64).reshape(kernel_shape)
    padded = np.zeros(shape)
    padded[: kernel_shape[0], : kernel_shape[1]] = kernel
    # centre the kernel on pixel (0, 0): offsets -h..h wrap around the transform
    padded = np.roll(padded, (-(kernel_shape[0] // 2), -(kernel_shape[1] // 2)), axis=(0, 1))
    spectrum = scipy.fft.rfft2(padded)
    spectrum.flags.writeable = False
    return spectrum


_remembered_spectrum = lru_cache(maxsize=16)(_spectrum)


def kernel_spectrum(kernel: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The real-FFT spectrum of ``kernel`` centred on pixel ``(0, 0)`` of a ``shape`` grid.

    Computed once per kernel and shape (a memo of the 16 latest spectra of at most
    :data:`REMEMBERED_SPECTRUM_BYTES` each, so at most 64 MB; larger ones, e.g. of big
    all-sky chunks, are computed at each call). Read-only arrays, shared by threads.

    Parameters
    ----------
    kernel : numpy.ndarray, shape (k_lat, k_lon)
        Odd-sized kernel.
    shape : tuple of int
        Transform shape ``(L_lat, L_lon)``, each at least the kernel size.

    Returns
    -------
    numpy.ndarray of complex128, shape (L_lat, L_lon // 2 + 1)
    """
    kernel = _check_kernel(kernel)
    shape = tuple(int(n) for n in shape)
    size = 16 * shape[0] * (shape[1] // 2 + 1)
    compute = _remembered_spectrum if size <= REMEMBERED_SPECTRUM_BYTES else _spectrum
    return compute(np.ascontiguousarray(kernel).tobytes(), kernel.shape, shape)


def convolve_planes(
    image: np.ndarray, kernel: np.ndarray, zero_rtol: float = 0.0, workers: int = 1
) -> np.ndarray:
    """Convolve every ``(lat, lon)`` plane of ``image`` with ``kernel``, zero outside the map.

    Parameters
    ----------
    image : numpy.ndarray, shape (..., n_lat, n_lon)
        Planes to convolve (any leading dims: bands, runs, maps); NaN and infinities count
        as 0.
    kernel : numpy.ndarray, shape (k_lat, k_lon)
        Odd-sized kernel centred on its middle element.
    zero_rtol : float
        FFT results whose magnitude is at most ``zero_rtol * sum(|plane|) * max(|kernel|)``
        (float noise) are set to exactly zero; the direct sums (separable kernels, small
        top-hats) are exact already.
    workers : int
        Threads of the FFTs (:mod:`scipy.fft`) and of the banded passes' batches
        (:func:`gammaxr.geom.batch_threads.run_batches`, one BLAS thread each); -1: all
        cores. 1 inside dask tasks, which run in parallel already; more for one eager call
        on numpy data.

    Returns
    -------
    numpy.ndarray of float64, same shape as ``image``
        The convolution in ``"same"`` mode (as :func:`scipy.signal.fftconvolve`); see the
        module docstring for the methods.
    """
    image = np.asarray(image)
    if image.ndim < 2:
        raise ValueError(f"image must have (lat, lon) as its last two dims, got {image.shape}")
    out = convolve_plane_sources([image], kernel, zero_rtol=zero_rtol, workers=workers)
    return out[0]


def convolve_plane_sources(
    sources: Sequence[np.ndarray],
    kernel: np.ndarray,
    *,
    mask: np.ndarray | None = None,
    zero_rtol: float = 0.0,
    workers: int = 1,
) -> np.ndarray:
    """Convolve the ``(lat, lon)`` planes of several arrays with one kernel, batch by batch.

    Parameters
    ----------
    sources : sequence of numpy.ndarray, each broadcastable to one shape (..., n_lat, n_lon)
        The maps (any dtype; views and broadcasts are read batch by batch, reshaped to
        planes without a copy wherever numpy can); NaN and infinities count as 0.
    kernel : numpy.ndarray, shape (k_lat, k_lon)
        Odd-sized kernel centred on its middle element.
    mask : numpy.ndarray of bool, optional
        Broadcastable to the same shape: pixels outside it count as 0 in every source.
    zero_rtol, workers
        As in :func:`convolve_planes`.

    Returns
    -------
    numpy.ndarray of float64, shape (len(sources), ..., n_lat, n_lon)
        The convolution of each source, in order: C order after the FFT and top-hat sums,
        the lat axis outermost in memory after the banded passes (a view in the usual axis
        order).
    """
    kernel = _check_kernel(kernel)
    arrays = [np.asarray(a) for a in sources]
    shapes = {a.shape for a in arrays} | (set() if mask is None else {np.shape(mask)})
    shape = shapes.pop() if len(shapes) == 1 else np.broadcast_shapes(*shapes)
    if len(shape) < 2:
        raise ValueError(f"planes must have (lat, lon) as their last two dims, got {shape}")
    n_lat, n_lon = shape[-2:]

    def planes(array: np.ndarray) -> np.ndarray:  # (n_planes, n_lat, n_lon), a view if it can
        whole = array if array.shape == shape else np.broadcast_to(array, shape)
        return whole.reshape(-1, n_lat, n_lon)

    per_source = math.prod(shape[:-2])
    mask_planes = None if mask is None else planes(np.asarray(mask, dtype=bool))
    method = _method(kernel, n_lat, n_lon, zero_rtol, workers)
    n_planes = len(arrays) * per_source
    separable = isinstance(method, _SeparableBatches)  # BLAS: the banded passes
    # the batches of the top-hat sums run on this thread alone: in an eager call another
    # core may fault the output in meanwhile
    out = method.output(n_planes, idle_core=workers != 1 and isinstance(method, _RowRunBatches))
    batch = max(1, method.batch_bytes // (8 * n_lat * n_lon))
    sources = [planes(array) for array in arrays]

    def convolve_batch(first: int) -> None:  # batches may span sources
        last = min(first + batch, n_planes)
        work, gathered = method.buffer(last - first)
        parts = []  # (the source's planes that fall in the batch, where they go)
        for index in range(first // per_source, (last - 1) // per_source + 1):
            offset = index * per_source
            start, stop = max(first - offset, 0), min(last - offset, per_source)
            parts.append((index, start, stop, offset + start - first, offset + stop - first))
        # the gathered planes are finite iff the sources' planes are (a mask of 0 and 1 makes
        # NaN of an infinity outside it): checked on the sources, in their own dtype, before
        # the gather reads them again from the cache; broadcast sources after the gather
        views = [sources[index][start:stop] for index, start, stop, _, _ in parts]
        on_sources = all(v.flags.c_contiguous and v.dtype.kind in "biufc" for v in views)
        finite = on_sources and all(_all_finite(view, blas=separable) for view in views)
        for (_, start, stop, low, high), view in zip(parts, views, strict=True):
            into = gathered[low:high]
            if mask_planes is None:
                np.copyto(into, view, casting="unsafe")
            else:  # an infinity outside the mask gives NaN: counted as 0 below, as NaN is
                with np.errstate(invalid="ignore"):
                    np.multiply(view, mask_planes[start:stop], out=into, casting="unsafe")
        if not on_sources:  # the work buffer: the gathered planes and zero padding
            finite = _all_finite(work, blas=separable)
        if not finite:
            np.copyto(gathered, 0.0, where=~np.isfinite(gathered))
        method.convolve(work, gathered, first, last)

    # the banded passes' batches on every core, each with one BLAS thread (batch_threads)
    batch_workers = workers if separable else 1
    run_batches(convolve_batch, range(0, n_planes, batch), batch_workers)
    return out.reshape((len(arrays), *shape))


def _all_finite(values: np.ndarray, blas: bool = False) -> bool:
    """Whether every element of ``values`` is finite (not NaN, not infinite).

    Integers and booleans are finite without a look. With ``blas``, a float64 or float32
    C-contiguous array is first checked with one BLAS dot product of the values with
    themselves, which is NaN or infinite if any value is (or if the sum of squares
    overflows, above about 1e154 in float64 and 1e19 in float32: then each element is
    checked): about 4 times faster than ``np.isfinite(values).all()`` with two BLAS threads.
    Only for calls that run BLAS anyway (the banded passes): OpenBLAS's threads keep a core
    busy for a while after each call, which would slow the other threads of a call that
    does not.

    Parameters
    ----------
    values : numpy.ndarray
        Any shape and dtype.
    blas : bool
        Try the dot product first.

    Returns
    -------
    bool
    """
    if values.dtype.kind in "biu":  # integers and booleans: finite
        return True
    if blas and values.dtype in (np.float64, np.float32) and values.flags.c_contiguous:
        flat = values.reshape(-1)
        with np.errstate(over="ignore", invalid="ignore"):  # huge values: the look below
            square_sum = np.dot(flat, flat)
        if np.isfinite(square_sum):
            return True
    return bool(np.isfinite(values).all())


def _method_choice(kernel: np.ndarray) -> tuple[type, tuple]:
    """The class of the fastest exact method for ``kernel`` (see the module docstring) and
    what it takes of the kernel: the separable factors, the row runs, or the kernel."""
    factors = _use_separable(kernel)
    if factors is not None:
        return _SeparableBatches, factors
    runs = _use_row_runs(kernel)
    if runs is not None:
        return _RowRunBatches, runs
    return _FFTBatches, (kernel,)


def _method(kernel: np.ndarray, n_lat: int, n_lon: int, zero_rtol: float, workers: int):
    """The batches of the fastest exact method for ``kernel``."""
    method, of_kernel = _method_choice(kernel)
    if method is _FFTBatches:
        return _FFTBatches(kernel, n_lat, n_lon, zero_rtol, workers)
    return method(*of_kernel, n_lat, n_lon)


def sums_on_one_thread(kernel: np.ndarray) -> bool:
    """Whether :func:`convolve_plane_sources` sums ``kernel`` on the calling thread alone,
    even in an eager call (a small top-hat: :func:`row_runs`), leaving the other cores idle
    meanwhile; the separable passes and the FFT use every core.

    Parameters
    ----------
    kernel : numpy.ndarray, shape (k_lat, k_lon)
        Odd-sized kernel.

    Returns
    -------
    bool
    """
    return _method_choice(_check_kernel(kernel))[0] is _RowRunBatches


def _use_row_runs(kernel: np.ndarray) -> tuple[float, tuple[int, ...]] | None:
    """The runs of ``kernel`` if :func:`convolve_planes` takes the box sums."""
    runs = _remembered_runs(kernel.tobytes(), kernel.shape)
    if runs is None:
        return None
    half_widths = [w for w in runs[1] if w >= 0]
    if 2 * max(half_widths) + len(half_widths) - 1 > ROW_RUNS_MAX_ADDS:
        return None
    return runs


@lru_cache(maxsize=32)
def _remembered_runs(kernel_bytes: bytes, shape: tuple[int, int]):
    return row_runs(np.frombuffer(kernel_bytes, dtype=np.float64).reshape(shape))


class _RowRunBatches:
    """A kernel of centred runs of one value (:func:`row_runs`, a top-hat) on a batch of
    planes: the horizontal box sum of each half-width in the kernel, each from the last by
    adding the two columns it gains, then for every output row the sum of the box sums of
    the kernel's rows, shifted along lat. Direct sums of the data: exact for integer
    counts, exact zeros where the kernel sees no data; about ``2 (w + h)`` additions per
    pixel for a kernel of half-widths ``(h, w)``, against the transforms of the FFT."""

    @property
    def batch_bytes(self) -> int:  # with the box sums, in the core's cache
        return PLANE_BATCH_BYTES // 4

    def __init__(self, value: float, half_widths: tuple[int, ...], n_lat: int, n_lon: int):
        self.value, self.n_lat, self.n_lon = value, n_lat, n_lon
        self.half_lat = len(half_widths) // 2
        self.half_lon = max(half_widths)
        # kernel row i adds the box sum of its half-width at input row y + half_lat - i
        self.rows = [(i, w) for i, w in enumerate(half_widths) if w >= 0]
        self.widths = sorted({w for _, w in self.rows})

    def output(self, n_planes: int, idle_core: bool = False) -> np.ndarray:
        """The output, ``(n_planes, n_lat, n_lon)``, C order; with ``idle_core`` (an eager
        call: the sums run on this thread alone), a fresh one is faulted in on a helper
        thread (:func:`gammaxr.memory.result_array`)."""
        shape = (n_planes, self.n_lat, self.n_lon)
        self._out = result_array(shape, fault_in_background=idle_core)
        return self._out

    def buffer(self, n_planes: int) -> tuple[np.ndarray, np.ndarray]:
        """A float64 work buffer padded with zeros on every side, and its planes."""
        h, w = self.half_lat, self.half_lon
        padded = work_buffer("planes", (n_planes, self.n_lat + 2 * h, self.n_lon + 2 * w))
        padded[:, :h] = 0.0
        padded[:, h + self.n_lat :] = 0.0
        padded[:, h : h + self.n_lat, :w] = 0.0
        padded[:, h : h + self.n_lat, w + self.n_lon :] = 0.0
        return padded, padded[:, h : h + self.n_lat, w : w + self.n_lon]

    def convolve(self, padded: np.ndarray, gathered: np.ndarray, start: int, stop: int) -> None:
        # every sum runs over the whole batch as one line of pixels (contiguous, long
        # loops): a shift along lon is an offset of a pixel, along lat of a padded row.
        # Sums that straddle a row or plane edge land in the padding, which is not kept.
        m, n_rows, width = padded.shape
        flat = padded.reshape(-1)
        w_max = self.half_lon
        n_box = flat.size - 2 * w_max  # the box sum centred on pixel j + w_max is at j

        def shifted(shift: int) -> np.ndarray:  # pixel j + w_max + shift at index j
            return flat[w_max + shift : w_max + shift + n_box]

        boxes, previous, reached = {}, shifted(0), 0
        for k, half in enumerate(self.widths):  # box sums of growing half-width
            if half == 0:
                boxes[0] = previous
                continue
            grown = work_buffer(f"box{k}", (n_box,))
            np.add(previous, shifted(-reached - 1), out=grown)
            grown += shifted(reached + 1)
            for shift in range(reached + 2, half + 1):
                grown += shifted(-shift)
                grown += shifted(shift)
            boxes[half] = previous = grown
            reached = half
        # rows: output row y of a plane sums box rows y + 2 h - i (kernel rows i)
        total = work_buffer("rows", (n_box - 2 * self.half_lat * width,))
        for n, (i, half) in enumerate(self.rows):
            term = boxes[half][(2 * self.half_lat - i) * width :][: total.size]
            if n == 0:
                np.copyto(total, term)
            else:
                total += term
        if self.value != 1.0:
            total *= self.value
        # output row y of plane p starts at flat index (p * n_rows + y) * width
        rows = np.lib.stride_tricks.as_strided(
            total,
            shape=(m, self.n_lat, self.n_lon),
            strides=(n_rows * width * 8, width * 8, 8),
            writeable=False,
        )
        self._out[start:stop] = rows


class _SeparableBatches:
    """Both banded passes on a batch of planes held lat-major, ``(n_lat, m, n_lon)`` in
    memory: the lat pass is then one matrix product per block of :func:`band_block` output
    rows for all planes of the batch. The output is lat-major too (seen in the usual axis
    order). When one batch holds every plane, the planes are gathered into the output
    itself, the lat pass goes to a work buffer and the lon pass writes the output (no other
    memory to touch). When there are several batches, the passes are fused block of
    :data:`FUSED_ROWS` rows by block: a block's lat pass goes to a small work buffer, still
    in the core's cache for the lon pass (measured 15-35 % faster on one BLAS thread, as on
    the eager call's batch threads; the whole batch at once is 5-10 % faster on two BLAS
    threads)."""

    @property
    def batch_bytes(self) -> int:  # the products run at BLAS speed on larger batches
        return 2 * PLANE_BATCH_BYTES

    def __init__(self, column: np.ndarray, row: np.ndarray, n_lat: int, n_lon: int):
        self.column, self.row, self.n_lat, self.n_lon = column, row, n_lat, n_lon

    def output(self, n_planes: int, idle_core: bool = False) -> np.ndarray:
        """The output, ``(n_planes, n_lat, n_lon)`` seen, lat-major in memory (the
        batches keep every core busy: ``idle_core`` is not used)."""
        self._out = result_array((self.n_lat, n_planes, self.n_lon))
        return self._out.transpose(1, 0, 2)

    def buffer(self, n_planes: int) -> tuple[np.ndarray, np.ndarray]:
        """A float64 work buffer of ``n_planes`` planes, lat-major (the output itself when
        one batch holds every plane), and its planes seen as (m, n_lat, n_lon)."""
        if n_planes == self._out.shape[1]:
            lat_major = self._out
        else:
            lat_major = work_buffer("planes", (self.n_lat, n_planes, self.n_lon))
        return lat_major, lat_major.transpose(1, 0, 2)

    def convolve(self, lat_major: np.ndarray, gathered: np.ndarray, start: int, stop: int) -> None:
        lines = lat_major.reshape(self.n_lat, -1)
        if lat_major is self._out:  # one batch, gathered into the output: lat pass first
            along_lat = banded_pass(lines, self.column, 0, out=work_buffer("pass", lines.shape))
            banded_pass(
                along_lat.reshape(-1, self.n_lon),
                self.row,
                1,
                out=self._out.reshape(-1, self.n_lon),
            )
            return
        for first in range(0, self.n_lat, FUSED_ROWS):  # fused, row block by row block
            last = min(first + FUSED_ROWS, self.n_lat)
            along_lat = work_buffer("pass", (last - first, lines.shape[1]))
            banded_block(lines, self.column, first, out=along_lat)
            rows = along_lat.reshape(-1, self.n_lon)
            both = banded_pass(rows, self.row, axis=1, out=work_buffer("both", rows.shape))
            self._out[first:last, start:stop] = both.reshape(last - first, stop - start, -1)


class _FFTBatches:
    """The FFT method on a batch of planes: padded transforms of the planes times the
    kernel's spectrum, the noise floor cleared per plane."""

    @property
    def batch_bytes(self) -> int:
        return PLANE_BATCH_BYTES

    def __init__(self, kernel: np.ndarray, n_lat: int, n_lon: int, zero_rtol: float, workers: int):
        self.n_lat, self.n_lon, self.zero_rtol, self.workers = n_lat, n_lon, zero_rtol, workers
        self.shape = (
            _fft_length(n_lat, kernel.shape[0] // 2),
            _fft_length(n_lon, kernel.shape[1] // 2),
        )
        self.kernel_fft = kernel_spectrum(kernel, self.shape)
        self.kernel_max = np.abs(kernel).max()

    def output(self, n_planes: int, idle_core: bool = False) -> np.ndarray:
        """The output, ``(n_planes, n_lat, n_lon)``, C order (the transforms run on every
        core of an eager call: ``idle_core`` is not used)."""
        self._out = result_array((n_planes, self.n_lat, self.n_lon))
        return self._out

    def buffer(self, n_planes: int) -> tuple[np.ndarray, np.ndarray]:
        """A zero-padded float64 work buffer, and its planes."""
        padded = work_buffer("planes", (n_planes, *self.shape))
        padded[:, self.n_lat :, :] = 0.0
        padded[:, : self.n_lat, self.n_lon :] = 0.0
        return padded, padded[:, : self.n_lat, : self.n_lon]

    def convolve(self, padded: np.ndarray, gathered: np.ndarray, start: int, stop: int) -> None:
        out = self._out[start:stop]
        workers = self.workers
        spectrum = scipy.fft.rfft2(padded, workers=workers)
        plane_sums = spectrum[:, :1, :1].real.copy()  # the zero-frequency term: the sums
        spectrum *= self.kernel_fft
        # inverse axis by axis, transforming only the rows kept
        rows = scipy.fft.ifft(spectrum, axis=-2, overwrite_x=True, workers=workers)
        result = scipy.fft.irfft(
            rows[:, : self.n_lat, :], n=self.shape[1], axis=-1, workers=workers
        )
        out[...] = result[..., : self.n_lon]
        if self.zero_rtol > 0:
            # sum(|plane|): the transform's sums when no value is negative (counts, maps of
            # exposure or background), else summed again
            if gathered.min() >= 0:
                floor = np.abs(plane_sums)
            else:
                floor = np.abs(gathered).sum(axis=(-2, -1), keepdims=True)
            floor *= self.zero_rtol * self.kernel_max
            np.copyto(out, 0.0, where=(out <= floor) & (out >= -floor))
