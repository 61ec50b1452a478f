"""Convolution of stacks of ``(lat, lon)`` planes with one small kernel, zero outside the map.

The one home of the numerical core behind the ring background
(:mod:`gammaxr.reduce.ring`) and the sky kernels of :mod:`gammaxr.estimators.smoothing`
(top-hat, Gaussian, box). :func:`convolve_planes` takes every plane of a block at once
(energy bands, runs and the maps that share the kernel: counts, background, exposure
ratios) and picks the cheaper of two exact methods:

- a separable kernel (an outer product, as a Gaussian or a box): two 1D convolutions
  (:func:`scipy.ndimage.convolve1d`) when the kernel is at most :data:`SEPARABLE_MAX_SIZE`
  pixels wide; the direct sums give exact zeros where the kernel sees no data;
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
from scipy.ndimage import convolve1d

__all__ = ["SEPARABLE_MAX_SIZE", "convolve_planes", "kernel_spectrum", "separable_factors"]

#: Widest separable kernel (pixels) convolved directly rather than by FFT.
SEPARABLE_MAX_SIZE = 41
#: Largest kernel spectrum (bytes) kept for reuse by :func:`kernel_spectrum`.
REMEMBERED_SPECTRUM_BYTES = 4 * 2**20
#: Relative tolerance of the separability test (float noise of an outer product).
SEPARABLE_RTOL = 1e-12


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


def convolve_planes(image: np.ndarray, kernel: np.ndarray, zero_rtol: float = 0.0) -> np.ndarray:
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

    Returns
    -------
    numpy.ndarray of float64, same shape as ``image``
        The convolution in ``"same"`` mode (as :func:`scipy.signal.fftconvolve`); see the
        module docstring for the method used.
    """
    kernel = _check_kernel(kernel)
    image = np.asarray(image, dtype=np.float64)
    if image.ndim < 2:
        raise ValueError(f"image must have (lat, lon) as its last two dims, got {image.shape}")
    factors = separable_factors(kernel) if max(kernel.shape) <= SEPARABLE_MAX_SIZE else None
    if factors is not None:
        column, row = factors
        out = np.empty_like(image)
        for index in np.ndindex(image.shape[:-2]):  # plane by plane: each stays in cache
            plane = convolve1d(image[index], row, axis=-1, mode="constant", cval=0.0)
            convolve1d(plane, column, axis=-2, output=out[index], mode="constant", cval=0.0)
        return out
    n_lat, n_lon = image.shape[-2:]
    shape = (
        _fft_length(n_lat, kernel.shape[0] // 2),
        _fft_length(n_lon, kernel.shape[1] // 2),
    )
    padded = np.empty(image.shape[:-2] + shape)  # padding by hand is faster than s=...
    padded[..., :n_lat, :n_lon] = image
    padded[..., n_lat:, :] = 0.0
    padded[..., :n_lat, n_lon:] = 0.0
    spectrum = scipy.fft.rfft2(padded)
    spectrum *= kernel_spectrum(kernel, shape)
    # inverse axis by axis, transforming only the rows kept
    rows = scipy.fft.ifft(spectrum, axis=-2, overwrite_x=True)[..., :n_lat, :]
    out = scipy.fft.irfft(rows, n=shape[1], axis=-1)[..., :n_lon]
    if zero_rtol > 0:
        floor = zero_rtol * np.abs(image).sum(axis=(-2, -1), keepdims=True)
        floor *= np.abs(kernel).max()
        np.copyto(out, 0.0, where=(out <= floor) & (out >= -floor))
    return out
