"""The statistics of an excess map, from its sums over the top-hat, and their memory.

:func:`gammaxr.estimators.excess_map.excess_map` convolves the maps it needs (counts,
background or off counts and acceptances, model counts, reference exposure, mask) in one
call; from those sums this module makes its outputs: counts, background, excess and its
error, significance and TS, optionally asymmetric errors, upper limits, sensitivity, the
on/off ratios, and norm and flux maps (cash statistics for a known background, wstat for
on/off data; :mod:`gammaxr.stats`). Every operation is elementwise, so the outputs are the
same bit for bit whichever way the pixels are cut:

- small numpy maps in one call (:func:`_products`);
- large numpy maps block by block on every core (:func:`products_in_blocks`), the outputs
  written into the sums the statistics use up where their memory allows
  (:func:`_output_memory`), the others into result buffers made ahead while the top-hat
  sums run on one thread (:func:`prepare_output_buffers`, :mod:`gammaxr.memory`);
- dask maps as one task per block (:func:`products_by_block`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from gammaxr._blocks import aligned_blocks, block_view, contiguous_blocks, map_aligned_blocks
from gammaxr.estimators.smoothing import EAGER_WORKERS
from gammaxr.geom.batch_threads import run_batches
from gammaxr.memory import prepare_result_buffers, result_array
from gammaxr.stats import alpha_on_off, cash_error, counts_statistics, wstat_error

__all__ = [
    "BLOCKED_PRODUCTS_MIN_PIXELS",
    "PRODUCTS_BLOCK_PIXELS",
    "prepare_output_buffers",
    "products_by_block",
    "products_in_blocks",
]


def _statistic(kind: str, quantity: str) -> Any:
    """``{kind}_{quantity}`` of :mod:`gammaxr.stats.counts_statistics` (``kind``: cash, wstat)."""
    return getattr(counts_statistics, f"{kind}_{quantity}")


def _ours(array: Any, inputs: Sequence[Any]) -> bool:
    """Whether ``array`` is a writeable numpy array sharing no memory with ``inputs`` (the
    caller's arrays): made by the excess map, so it may be written in place."""
    return (
        isinstance(array, np.ndarray)
        and array.flags.writeable
        and not any(np.may_share_memory(array, x) for x in inputs if isinstance(x, np.ndarray))
    )


def _nan_outside(data: Any, use: Any, outside: Any, inputs: Sequence[Any]) -> Any:
    """``data`` with NaN where ``use`` is False (``outside`` is ``~use``): in place for a
    float64 array of ours (:func:`_ours`), so no new array per output; else a new array."""
    if _ours(data, inputs) and data.dtype == np.float64:
        np.copyto(data, np.nan, where=outside)
        return data
    return np.where(use, data, np.nan)


def _on_off_terms(
    use: Any, corr: dict[str, Any], off: dict[str, Any], correlate_off: bool
) -> tuple[Any, Any, dict[str, Any]]:
    """``n_off``, ``alpha`` and the acceptance maps of an on/off dataset (module docstring);
    arrays aligned on the counts dims (``off``: the dataset's ``counts_off`` and
    ``acceptance_off`` when the off counts are not correlated)."""
    acceptance_on = corr["acceptance_on"]
    if correlate_off:
        n_off, acceptance_off = corr["counts_off"], corr["acceptance_off"]
        # no off counts in the disk: the ratio of the acceptances
        with np.errstate(divide="ignore", invalid="ignore"):
            alpha = corr["background"] / np.where(n_off > 0, n_off, np.nan)
        alpha = np.where(np.isnan(alpha), alpha_on_off(acceptance_on, acceptance_off), alpha)
    else:
        n_off = np.where(use, off["counts_off"], 0).astype(np.float64)
        acceptance_off = np.where(use, off["acceptance_off"], 0).astype(np.float64)
        alpha = alpha_on_off(acceptance_on, acceptance_off)
    maps = {"alpha": alpha, "acceptance_on": acceptance_on, "acceptance_off": acceptance_off}
    return n_off, alpha, maps


def _flux_maps(out: dict[str, Any], mean_reco: Any, ref_flux: np.ndarray) -> dict[str, Any]:
    """norm = excess / (reference counts averaged over the masked top-hat, ``mean_reco``);
    flux = norm x the reference integral flux in each band (``ref_flux``, broadcast on the
    outputs; numpy arrays; ``mean_reco``, made by the caller, is modified in place)."""
    maps = {}
    np.copyto(mean_reco, np.nan, where=~(mean_reco > 0))
    for name, var in list(out.items()):
        if name.startswith("excess"):
            suffix = name[len("excess") :]
            norm = var / mean_reco
            maps[f"norm{suffix}"] = norm
            maps[f"flux{suffix}"] = norm * ref_flux
    return maps


def _products(
    arrays: dict[str, Any],
    *,
    inputs: Sequence[Any],
    on_off: bool,
    correlate_off: bool,
    chosen: set[str],
    n_sigma: float,
    n_sigma_ul: float,
    n_sigma_sensitivity: float,
) -> dict[str, Any]:
    """The outputs of :func:`excess_map` from the convolved sums, NaN outside the mask.

    ``arrays``: ``corr_<map>`` (the sums over the top-hat, by role), ``use`` (the mask),
    ``off_counts_off``/``off_acceptance_off`` (on/off data whose off counts are not
    correlated again), ``ref_flux`` (with a reference exposure), all numpy arrays aligned
    on the counts dims (dask data goes through :func:`products_by_block`, a numpy block at
    a time). Arrays made here are written in place (NaN outside the mask, the mean
    reference counts, the significance's sign); ``inputs`` are never.
    """
    corr = {k[len("corr_") :]: v for k, v in arrays.items() if k.startswith("corr_")}
    off = {k[len("off_") :]: v for k, v in arrays.items() if k.startswith("off_")}
    use = arrays["use"]
    n_on = corr["counts"]
    signal = corr.get("npred_signal")
    if on_off:
        n_off, alpha, maps = _on_off_terms(use, corr, off, correlate_off)
        mu_sig = signal if signal is not None else 0.0
        stat_args = (n_on, n_off, alpha, mu_sig)
        background = alpha * n_off
        excess = n_on - background - mu_sig
        error = wstat_error(n_on, n_off, alpha)
        match_args = (n_off, alpha)
    else:
        maps = {}
        background = corr["background"]
        mu_bkg = background + signal if signal is not None else background
        stat_args = (n_on, mu_bkg)
        excess = n_on - mu_bkg
        error = cash_error(n_on)
        match_args = (mu_bkg,)
    kind = "wstat" if on_off else "cash"
    ts = _statistic(kind, "ts")(*stat_args)
    # the sign of the excess times sqrt(TS), as the statistics' sqrt_ts (TS once)
    significance = np.sqrt(ts)
    np.negative(significance, out=significance, where=excess < 0)  # the sign, in place
    out: dict[str, Any] = {
        "counts": n_on,
        "background": background,
        "excess": excess,
        "excess_err": error if n_sigma == 1 else error * n_sigma,
        "significance": significance,
        "ts": ts,
    }
    if "errn-errp" in chosen:
        out["excess_errn"] = _statistic(kind, "errn")(*stat_args, n_sigma=n_sigma)
        out["excess_errp"] = _statistic(kind, "errp")(*stat_args, n_sigma=n_sigma)
    if "ul" in chosen:
        out["excess_ul"] = _statistic(kind, "upper_limit")(*stat_args, n_sigma=n_sigma_ul)
    if "sensitivity" in chosen:
        out["excess_sensitivity"] = _statistic(kind, "n_sig_matching_significance")(
            *match_args, n_sigma_sensitivity
        )
    for name in ("alpha", "acceptance_on", "acceptance_off"):
        if name in chosen:
            out[name] = maps[name]
    if "reco_exposure" in corr:
        with np.errstate(divide="ignore", invalid="ignore"):
            reco, mask = corr["reco_exposure"], corr["mask"]
            # in place in the convolved sums if we may
            ours = _ours(reco, inputs) and reco.shape == np.shape(excess)
            mean_reco = np.divide(reco, mask, out=reco if ours else None)
            np.copyto(mean_reco, np.nan, where=~(mask > 0))
        out.update(_flux_maps(out, mean_reco, arrays["ref_flux"]))
    outside = ~use
    return {name: _nan_outside(data, use, outside, inputs) for name, data in out.items()}


#: On numpy data, the statistics run block by block on every core when the maps hold at
#: least this many pixels (8 MB per float64 map); below it, in one call on the whole arrays.
BLOCKED_PRODUCTS_MIN_PIXELS = 2**20
#: Pixels per block of the statistics (about 1 MB per float64 array).
PRODUCTS_BLOCK_PIXELS = 2**17


def _stand_in_products(arrays: dict[str, Any], options: dict[str, Any]) -> tuple[dict, dict]:
    """:func:`_products` of one-pixel stand-ins of ``arrays`` (same names, dims and dtypes;
    nothing computed): the stand-ins and the products, whose names are the outputs in order
    and which are a stand-in itself where that input is written in place."""
    ndim = max(np.ndim(a) for a in arrays.values())
    dummy = {
        name: np.ones((1,) * ndim, dtype=getattr(a, "dtype", np.float64))
        for name, a in arrays.items()
    }
    with np.errstate(all="ignore"):
        return dummy, _products(dummy, inputs=[], **options)


def _output_memory(
    arrays: dict[str, Any], shape: tuple[int, ...], inputs: Sequence[Any], options: dict
) -> tuple[dict[str, str], dict[str, str], list[str]]:
    """Where the outputs of :func:`_products` go, besides new arrays.

    Only whole (``shape``) float64 arrays of ours (:func:`_ours`) are used, found on
    one-pixel stand-ins (:func:`_stand_in_products`):

    - ``in_place``, ``{output: input}``: outputs that are inputs written in place (the
      convolved sums with NaN outside the mask), which :func:`_nan_outside` writes in place
      in every block too;
    - ``hosts``, ``{output: input}``: inputs that no output is or shares memory with, and
      whose memory bounds hold no other input (the convolved exposure and mask, used only
      to make the flux maps), each given to one output that would be a new array: a
      block's products are all computed before they are written, so a block of such an
      input is read before it is overwritten, and the result holds no memory it does not
      show.

    Also returns the names of all outputs, in order.
    """
    dummy, products = _stand_in_products(arrays, options)
    whole = {
        name
        for name, array in arrays.items()
        if _ours(array, inputs) and array.shape == shape and array.dtype == np.float64
    }
    apart = {  # no other input's memory within its bounds
        name
        for name in whole
        if not any(
            np.may_share_memory(arrays[name], other)
            for other_name, other in arrays.items()
            if other_name != name and isinstance(other, np.ndarray)
        )
    }
    return _memory_plan(dummy, products, whole, apart)


def _memory_plan(
    dummy: dict[str, np.ndarray], products: dict[str, Any], whole: set[str], apart: set[str]
) -> tuple[dict[str, str], dict[str, str], list[str]]:
    """:func:`_output_memory` from the one-pixel run (``dummy`` inputs, their ``products``),
    given the inputs that are ``whole`` float64 arrays of ours and those of them ``apart``
    from every other input."""
    in_place = {}
    for output, data in products.items():
        for name, stand_in in dummy.items():
            if data is stand_in and name in whole:
                in_place[output] = name
    spare = [
        name
        for name, stand_in in dummy.items()
        if name in apart
        and not any(np.may_share_memory(data, stand_in) for data in products.values())
    ]
    new = [output for output in products if output not in in_place]
    hosts = dict(zip(new[::-1], spare, strict=False))  # the last outputs, on the spares
    return in_place, hosts, list(products)


def prepare_output_buffers(
    shape: tuple[int, ...], names: dict[str, np.dtype], more: int, options: dict
) -> int:
    """Make the buffers of an excess map's results ahead, before its top-hat sums.

    The top-hat sums of a large eager call run on one thread: meanwhile the buffers of the
    results to come are made and faulted in on the idle core
    (:func:`gammaxr.memory.prepare_result_buffers`). How many: the statistics' new outputs,
    found by their one-pixel run on stand-ins of the inputs to come (the convolved sums,
    ``corr_*``, taken as whole float64 arrays of the call's own, each apart from the
    others, as the top-hat sums give them; :func:`_output_memory`), plus ``more``.

    Parameters
    ----------
    shape : tuple of int
        Shape of the outputs (the counts' dims, e.g. ``(obs_id, energy, lat, lon)``).
    names : dict of str to numpy.dtype
        The statistics' inputs to come (``corr_<map>``, ``use``, ``off_*``, ``ref_flux``)
        and their dtypes.
    more : int
        Other results of ``shape`` the call makes (the gathered mask sums), less those it
        drops before the statistics (the reference exposure, once convolved).
    options : dict
        The statistics' options (``on_off``, ``correlate_off``, ``chosen``, ``n_sigma``,
        ...), as for :func:`products_in_blocks`.

    Returns
    -------
    int
        The number of buffers made (0 for maps below :data:`BLOCKED_PRODUCTS_MIN_PIXELS`
        or in one block, which get no new arrays of their own).
    """
    if math.prod(shape) < BLOCKED_PRODUCTS_MIN_PIXELS:
        return 0
    if len(contiguous_blocks(shape, PRODUCTS_BLOCK_PIXELS)) < 2:
        return 0
    stand_ins = {name: np.ones((1,) * len(shape), dtype) for name, dtype in names.items()}
    dummy, products = _stand_in_products(stand_ins, options)
    sums = {name for name in names if name.startswith("corr_")}
    in_place, hosts, outputs = _memory_plan(dummy, products, sums, sums)
    new = len(outputs) - len(in_place) - len(hosts)
    return prepare_result_buffers(shape, new + more)


def products_in_blocks(
    arrays: dict[str, Any], inputs: Sequence[Any], options: dict[str, Any]
) -> dict[str, np.ndarray]:
    """:func:`_products` of numpy arrays, block by block on every core when they are large.

    Every block (:data:`PRODUCTS_BLOCK_PIXELS` pixels, contiguous) runs the same numpy
    code on views of the inputs, on the threads of
    :func:`gammaxr.geom.batch_threads.run_batches` (numpy releases the GIL in its loops).
    The temporaries are then a block's size, taken again from each thread's heap by the
    next block, instead of fresh arrays of the maps' size. The outputs that are the
    convolved sums written in place are those arrays; two others are written into the
    convolved sums used up by the block (:func:`_output_memory`); the rest block by block
    into one new array each (:func:`gammaxr.memory.result_array`). Every operation is
    elementwise, so the numbers are the same bit for bit. Maps of fewer than
    :data:`BLOCKED_PRODUCTS_MIN_PIXELS` pixels: one call on the whole arrays.

    Parameters
    ----------
    arrays : dict of str to numpy.ndarray
        The sums over the top-hat (``corr_<map>``: counts, background, ...), the mask
        (``use``), the off counts and acceptance of on/off data not correlated again
        (``off_*``) and the reference flux per band (``ref_flux``), aligned on the counts'
        dims (broadcastable).
    inputs : sequence of numpy.ndarray
        The caller's arrays: never written in place.
    options : dict
        ``on_off``, ``correlate_off``, ``chosen`` (the optional outputs), ``n_sigma``,
        ``n_sigma_ul``, ``n_sigma_sensitivity``.

    Returns
    -------
    dict of str to numpy.ndarray
        The outputs by name (``counts``, ``background``, ``excess``, ``excess_err``,
        ``significance``, ``ts``, ...; NaN outside the mask), float64 of the counts'
        shape.
    """
    shape = np.broadcast_shapes(*(np.shape(a) for a in arrays.values()))
    if math.prod(shape) < BLOCKED_PRODUCTS_MIN_PIXELS:
        return _products(arrays, inputs=inputs, **options)
    blocks = contiguous_blocks(shape, PRODUCTS_BLOCK_PIXELS)
    if len(blocks) < 2:
        return _products(arrays, inputs=inputs, **options)
    in_place, hosts, names = _output_memory(arrays, shape, inputs, options)
    into = {**in_place, **hosts}
    out = {name: arrays[into[name]] if name in into else result_array(shape) for name in names}
    floating_point = np.geterr()  # the caller's, for the threads (numpy's is per thread)

    def run_block(number: int) -> None:
        where = blocks[number]
        part = {name: block_view(a, len(shape), where) for name, a in arrays.items()}
        with np.errstate(**floating_point):
            products = _products(part, inputs=inputs, **options)
        for name, data in products.items():  # every product computed: now written
            if name not in in_place:
                out[name][where] = data

    run_batches(run_block, range(len(blocks)), EAGER_WORKERS)
    return out


def products_by_block(arrays: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """:func:`_products` of dask arrays: one task per block runs the numpy code (the
    statistics, the NaN outside the mask in place in what it made) on the blocks of every
    input, instead of a task per operation and block. The blocks are inputs: never written.

    Parameters
    ----------
    arrays : dict of str to array
        As for :func:`products_in_blocks`; dask arrays (numpy ones are taken as one block).
    options : dict
        As for :func:`products_in_blocks`.

    Returns
    -------
    dict of str to dask.array.Array
        The outputs by name, float64, chunked as the inputs' aligned blocks.
    """
    names = list(arrays)
    outputs = list(_stand_in_products(arrays, options)[1])  # the names, nothing computed

    def block(*blocks: np.ndarray) -> tuple[np.ndarray, ...]:
        products = _products(dict(zip(names, blocks, strict=True)), inputs=blocks, **options)
        return tuple(np.asarray(products[name], dtype=np.float64) for name in outputs)

    blocks = aligned_blocks(list(arrays.values()))  # six outputs at least: a tuple
    return dict(zip(outputs, map_aligned_blocks(block, blocks, len(outputs)), strict=True))
