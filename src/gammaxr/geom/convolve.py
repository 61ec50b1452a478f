"""Convolution of stacks of ``(lat, lon)`` planes with one small kernel, zero outside the map.

The one home of the numerical core behind the ring background
(:mod:`gammaxr.reduce.ring`) and the sky kernels of :mod:`gammaxr.estimators.smoothing`
(top-hat, Gaussian, box). :func:`convolve_planes` takes every plane of a block at once
(energy bands, runs and the maps that share the kernel: counts, background, exposure
ratios) and picks the cheaper of two exact methods:

- a separable kernel (an outer product, as a Gaussian or a box) at most
  :data:`SEPARABLE_MAX_SIZE` pixels wide: two 1D passes, each a few matrix products with
  one banded (Toeplitz) block of the 1D kernel (:func:`banded_pass`): every block of
  :data:`BAND_BLOCK` output pixels is the product of the input window it sees and one small
  matrix, so BLAS does the sums (vectorised, on all cores) with little work on the band's
  zeros; the sums give exact zeros where the kernel sees no data;
- any other kernel (a disk, a ring): one real FFT of all the planes, multiplied by the
  kernel's spectrum. The transform is only as long as the planes plus half the kernel
  (circular wrap-around cannot reach the pixels kept), and the kernel's spectrum is computed
  once per kernel and transform shape and reused (:func:`kernel_spectrum`, a small bounded
  memo of a pure function), across calls as well: the per-run blocks of a dask graph share it.

FFT noise is cleared to exact zeros below a threshold the caller sets (``zero_rtol``).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import scipy.fft

__all__ = [
    "BAND_BLOCK",
    "SEPARABLE_MAX_SIZE",
    "banded_pass",
    "convolve_planes",
    "empty_planes",
    "kernel_spectrum",
    "separable_factors",
]

#: Widest separable kernel (pixels) convolved directly rather than by FFT.
SEPARABLE_MAX_SIZE = 41
#: Largest kernel spectrum (bytes) kept for reuse by :func:`kernel_spectrum`.
REMEMBERED_SPECTRUM_BYTES = 4 * 2**20
#: Relative tolerance of the separability test (float noise of an outer product).
SEPARABLE_RTOL = 1e-12
#: Output pixels per block of a banded pass (each block is one matrix product with a
#: ``(BAND_BLOCK + 2 h, BAND_BLOCK)`` band; measured fastest for half widths 5-20 px).
BAND_BLOCK = 32


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


def _band_matrix(weights: np.ndarray, block: int) -> np.ndarray:
    """``M[i, j] = weights[2 h + j - i]`` within the band ``0 <= i - j <= 2 h`` (else 0), for
    ``i < block + 2 h`` and ``j < block``: output ``j`` of a block is the sum of its window's
    inputs ``j .. j + 2 h`` times the kernel, flipped (a convolution, as
    :func:`scipy.ndimage.convolve1d`)."""
    half = weights.size // 2
    lag = np.arange(block + 2 * half)[:, None] - np.arange(block)[None, :]  # 0 .. 2h in band
    inside = (lag >= 0) & (lag <= 2 * half)
    return np.where(inside, weights[::-1][np.clip(lag, 0, 2 * half)], 0.0)


def banded_pass(lines: np.ndarray, weights: np.ndarray, axis: int) -> np.ndarray:
    """Convolve the 2D array ``lines`` along ``axis`` with the odd-sized 1D kernel
    ``weights``, zero outside the array (``"same"`` mode).

    The output is computed in blocks of :data:`BAND_BLOCK` pixels along ``axis``, each one
    matrix product of the input window the block sees (a view, no copy) with the same small
    banded matrix, cut at the array's edges.

    Parameters
    ----------
    lines : numpy.ndarray of float64, shape (n, m) or (m, n), C-contiguous
        ``axis=0``: ``m`` lines of ``n`` pixels as columns (the product from the left, the
        fastest); ``axis=1``: as rows.
    weights : numpy.ndarray, shape (2 h + 1,)
        1D kernel centred on its middle element.
    axis : {0, 1}
        The axis convolved.

    Returns
    -------
    numpy.ndarray of float64, same shape as ``lines``, C-contiguous
    """
    weights = np.asarray(weights, dtype=np.float64)
    half = weights.size // 2
    band = _band_matrix(weights, BAND_BLOCK)
    if axis == 0:
        band = np.ascontiguousarray(band.T)
    out = np.empty_like(lines)
    n = lines.shape[axis]
    for start in range(0, n, BAND_BLOCK):
        stop = min(start + BAND_BLOCK, n)
        low, high = max(start - half, 0), min(stop + half, n)
        first = low - (start - half)  # band rows cut off at the lower edge
        if axis == 0:
            window = band[: stop - start, first : first + high - low]
            np.matmul(window, lines[low:high], out=out[start:stop])
        else:
            window = band[first : first + high - low, : stop - start]
            np.matmul(lines[:, low:high], window, out=out[:, start:stop])
    return out


def _use_separable(kernel: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The factors of ``kernel`` if :func:`convolve_planes` takes the banded passes."""
    return separable_factors(kernel) if max(kernel.shape) <= SEPARABLE_MAX_SIZE else None


def empty_planes(shape: tuple[int, ...], kernel: np.ndarray) -> np.ndarray:
    """An uninitialised float64 array of ``shape`` ``(..., n_lat, n_lon)`` in the memory
    layout :func:`convolve_planes` reads fastest for ``kernel``.

    For the banded passes of a separable kernel the lat axis is outermost in memory (the lat
    pass is then one matrix product per block for all planes); the array is a view with the
    usual axis order, so callers fill it as any other. Otherwise C order.

    Parameters
    ----------
    shape : tuple of int
        ``(..., n_lat, n_lon)``.
    kernel : numpy.ndarray
        The kernel the planes will be convolved with.

    Returns
    -------
    numpy.ndarray of float64, shape ``shape``
    """
    if _use_separable(_check_kernel(kernel)) is None or len(shape) < 3:
        return np.empty(shape)
    return np.moveaxis(np.empty((shape[-2], *shape[:-2], shape[-1])), 0, -2)


def _convolve_separable(image: np.ndarray, column: np.ndarray, row: np.ndarray) -> np.ndarray:
    """Both banded passes on the planes held lat-major: ``(n_lat, ..., n_lon)`` in memory."""
    lat_major = np.moveaxis(image, -2, 0)
    if not lat_major.flags.c_contiguous:  # one copy into the layout of :func:`empty_planes`
        lat_major = np.ascontiguousarray(lat_major)
    n_lat, n_lon = lat_major.shape[0], lat_major.shape[-1]
    along_lat = banded_pass(lat_major.reshape(n_lat, -1), column, axis=0)
    both = banded_pass(along_lat.reshape(-1, n_lon), row, axis=1)
    return np.moveaxis(both.reshape(lat_major.shape), 0, -2)


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
        Planes to convolve (any leading dims: bands, runs, maps); NaN is not allowed here
        (callers replace it first).
    kernel : numpy.ndarray, shape (k_lat, k_lon)
        Odd-sized kernel centred on its middle element.
    zero_rtol : float
        FFT results whose magnitude is at most ``zero_rtol * sum(|plane|) * max(|kernel|)``
        (float noise) are set to exactly zero; the direct sums of a separable kernel are
        exact already.
    workers : int
        Threads of the FFTs (:mod:`scipy.fft`; -1: all cores). 1 inside dask tasks, which
        run in parallel already; more for one eager call on numpy data.

    Returns
    -------
    numpy.ndarray of float64, same shape as ``image``
        The convolution in ``"same"`` mode (as :func:`scipy.signal.fftconvolve`); see the
        module docstring for the method used. After the banded passes, a view with the lat
        axis outermost in memory (as :func:`empty_planes`).
    """
    kernel = _check_kernel(kernel)
    image = np.asarray(image, dtype=np.float64)
    if image.ndim < 2:
        raise ValueError(f"image must have (lat, lon) as its last two dims, got {image.shape}")
    factors = _use_separable(kernel)
    if factors is not None:
        return _convolve_separable(image, *factors)
    n_lat, n_lon = image.shape[-2:]
    shape = (
        _fft_length(n_lat, kernel.shape[0] // 2),
        _fft_length(n_lon, kernel.shape[1] // 2),
    )
    padded = np.empty(image.shape[:-2] + shape)  # padding by hand is faster than s=...
    padded[..., :n_lat, :n_lon] = image
    padded[..., n_lat:, :] = 0.0
    padded[..., :n_lat, n_lon:] = 0.0
    spectrum = scipy.fft.rfft2(padded, workers=workers)
    plane_sums = spectrum[..., :1, :1].real.copy()  # the zero-frequency term: sum per plane
    spectrum *= kernel_spectrum(kernel, shape)
    # inverse axis by axis, transforming only the rows kept
    rows = scipy.fft.ifft(spectrum, axis=-2, overwrite_x=True, workers=workers)[..., :n_lat, :]
    out = scipy.fft.irfft(rows, n=shape[1], axis=-1, workers=workers)[..., :n_lon]
    if zero_rtol > 0:
        # sum(|plane|): the sums of the transform when no value is negative (counts, maps
        # of exposure or background), else summed again
        if image.min() >= 0:
            floor = zero_rtol * np.abs(plane_sums)
        else:
            floor = zero_rtol * np.abs(image).sum(axis=(-2, -1), keepdims=True)
        floor *= np.abs(kernel).max()
        np.copyto(out, 0.0, where=(out <= floor) & (out >= -floor))  # bool temporaries only
    return out
