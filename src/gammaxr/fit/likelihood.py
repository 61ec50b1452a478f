"""Likelihood of models given datasets: one term per dataset (or run), summed.

- map dataset with background: ``cash(counts, npred)`` summed over ``mask_safe & mask_fit``;
- on/off map or spectrum dataset (``counts_off``): ``wstat(n_on, n_off, alpha, npred_signal)``
  with the background profiled (background models do not apply);
- spectrum dataset with a ``background`` (no off counts): cash;
- datasets with an ``obs_id`` dim: one term per run (joint likelihood; sky model parameters
  shared, background norms per run or shared; see :mod:`gammaxr.fit.data` for names);
- priors on parameters add ``weight * (-2 log p(value))`` (:mod:`gammaxr.models.priors`).

A :class:`FitContext` is created per fit (or per :func:`gammaxr.fit.npred` call): it
holds the numpy snapshots of the datasets and the evaluators with their caches, so nothing is
cached on datasets or models, and repeated calls with parameter vectors only recompute what
changed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from astropy.time import Time

from gammaxr.models import ConstantTemporalModel, FoVBackgroundModel, Models, Prior, SkyModel
from gammaxr.stats import cash, wstat, wstat_mu_bkg

from .data import MapData, SpectrumData
from .evaluators import MapSourceEvaluator, SpectrumSourceEvaluator

__all__ = ["FitContext", "MapTerm", "SpectrumTerm"]

Values = dict[tuple[str, str], dict[str, float]]


def _applies(model: SkyModel | FoVBackgroundModel, names: Sequence[str]) -> bool:
    return any(model.applies_to(n) for n in names)


def _background_model(models: Models, data: MapData | SpectrumData):
    """The FoV background model of a dataset: by its own name, else by its parent's."""
    for name in data.names:
        for m in models.background_models:
            if m.dataset_name == name:
                return m
    return None


class _Term:
    """Shared parts of the per-dataset likelihood terms."""

    def __init__(self, data: MapData | SpectrumData, models: Models) -> None:
        self.data = data
        self.bkg_model = _background_model(models, data)
        if self.bkg_model is not None:
            if data.is_on_off:
                raise ValueError(
                    f"dataset {data.name!r} is on/off (background profiled by wstat); "
                    f"background model {self.bkg_model.name!r} cannot apply to it"
                )
            if data.background is None:
                raise ValueError(
                    f"background model {self.bkg_model.name!r} applies to dataset "
                    f"{data.name!r}, which has no 'background' variable"
                )
        self._idx = np.flatnonzero(data.mask)
        self._n_on = data.counts.ravel()[self._idx]
        if data.is_on_off:
            self._n_off = data.counts_off.ravel()[self._idx]
            self._alpha = data.alpha.ravel()[self._idx]

    def _temporal_spans(self, models: Models) -> dict[str, tuple]:
        """``{source: (temporal model, t_min, t_max)}`` for sources with a time-varying norm.

        The sources' predicted counts are multiplied by the norm averaged over the data's
        time span (MJD in the model's scale).
        """
        out = {}
        for name, _ in self.sources:
            temporal = models[name].temporal
            if temporal is None or isinstance(temporal, ConstantTemporalModel):
                continue
            spans = self.data.time_intervals
            if spans is None:
                raise ValueError(
                    f"sky model {name!r} has a temporal model but dataset {self.data.name!r} "
                    "has no time span (tstart/tstop with MJDREFI/MJDREFF): fit per-run "
                    "datasets, or set tstart/tstop attrs on the stacked dataset"
                )
            mjd = getattr(Time(spans, format="mjd", scale="tt"), temporal.scale).mjd
            out[name] = (temporal, mjd[:, 0], mjd[:, 1])
        return out

    def time_factor(self, name: str, values: Values) -> float:
        """Mean temporal norm of source ``name`` over the data's time span (1 if constant)."""
        entry = self._temporal.get(name)
        if entry is None:
            return 1.0
        temporal, t_min, t_max = entry
        return temporal.mean_norm(t_min, t_max, **values.get((name, "temporal"), {}))

    def background(self, values: Values) -> np.ndarray | None:
        """Background counts (scaled by the background model), or None (on/off, none)."""
        d = self.data
        if d.is_on_off or d.background is None:
            return None
        if self.bkg_model is None:
            return d.background
        factor = self.bkg_model.spectral.evaluate(
            d.energy, **values[(self.bkg_model.name, "spectral")]
        )
        factor = np.asarray(factor, dtype=float).reshape((-1,) + (1,) * (d.background.ndim - 1))
        return d.background * factor

    def signal(self, values: Values) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def stat(self, values: Values) -> float:
        """-2 log likelihood of this dataset (cash or wstat) over its masked bins."""
        signal = self.signal(values)
        if self.data.is_on_off:
            mu_sig = signal.ravel()[self._idx]
            return float(np.sum(wstat(self._n_on, self._n_off, self._alpha, mu_sig)))
        bkg = self.background(values)
        mu = signal if bkg is None else signal + bkg
        mu = np.maximum(mu.ravel()[self._idx], 0.0)
        return float(np.sum(cash(self._n_on, mu)))

    def npred(self, values: Values) -> dict[str, np.ndarray]:
        """``{"signal", "background", "total"}`` predicted counts on the dataset's bins.

        For on/off datasets the background is ``alpha * mu_bkg`` profiled by wstat.
        """
        signal = self.signal(values)
        d = self.data
        if d.is_on_off:
            bkg = d.alpha * np.nan_to_num(wstat_mu_bkg(d.counts, d.counts_off, d.alpha, signal))
        else:
            bkg = self.background(values)
            bkg = np.zeros_like(signal) if bkg is None else bkg
        return {"signal": signal, "background": bkg, "total": np.maximum(signal + bkg, 0.0)}


class MapTerm(_Term):
    """Likelihood term of one map dataset.

    Cash is evaluated without touching every bin: bins with zero counts contribute
    ``2 mu``, a sum that is linear in the background norms and in each source's counts, so
    only the bins with counts need a logarithm (a few per cent of a typical cube). The
    result equals the per-bin sum (:meth:`stat_per_bin`) to rounding; negative predictions
    (a negative source amplitude) fall back to the per-bin sum.

    Parameters
    ----------
    data : MapData
        The dataset.
    models : Models
        All models; those applying to the dataset are used.
    convention : {"gammaxr", "gammapy"}
        Evaluation convention (:class:`gammaxr.fit.evaluators.MapSourceEvaluator`).
    irf_update : {"lattice", "gammapy"}, optional
        When sources' IRF states are recomputed (default: implied by ``convention``; see
        :class:`~gammaxr.fit.evaluators.MapSourceEvaluator`).
    """

    def __init__(
        self,
        data: MapData,
        models: Models,
        convention: str = "gammaxr",
        irf_update: str | None = None,
    ) -> None:
        super().__init__(data, models)
        self.sources = [
            (m.name, MapSourceEvaluator(data, m, convention=convention, irf_update=irf_update))
            for m in models.sky_models
            if _applies(m, data.names)
        ]
        self._temporal = self._temporal_spans(models)
        if data.is_on_off:
            return
        shape = data.counts.shape
        pos = np.flatnonzero(data.mask & (data.counts > 0))
        self._pos_n = data.counts.ravel()[pos]
        self._pos_e, self._pos_y, self._pos_x = np.unravel_index(pos, shape)
        bkg = data.background
        self._pos_b = bkg.ravel()[pos] if bkg is not None else np.zeros(pos.size)
        masked = np.where(data.mask, bkg, 0.0) if bkg is not None else np.zeros(shape)
        self._masked_b = masked.sum(axis=(1, 2))
        self._local: dict[str, tuple] = {}

    def _local_bins(self, name: str, cut) -> tuple:
        """Bins with counts inside a source's cutout: (positions in the count list, flat
        indices in the cutout array, the mask on the cutout); cached per cutout."""
        cached = self._local.get(name)
        if cached is not None and cached[0] == cut:
            return cached[1:]
        ny, nx = cut.shape
        inside = (
            (self._pos_y >= cut.y0)
            & (self._pos_y < cut.y1)
            & (self._pos_x >= cut.x0)
            & (self._pos_x < cut.x1)
        )
        sel = np.flatnonzero(inside)
        local = (self._pos_e[sel] * ny + self._pos_y[sel] - cut.y0) * nx + (
            self._pos_x[sel] - cut.x0
        )
        ys, xs = cut.slices
        mask = self.data.mask[:, ys, xs]
        self._local[name] = (cut, sel, local, mask)
        return sel, local, mask

    def signal(self, values: Values) -> np.ndarray:
        """Summed predicted counts of all sources, shape (n_e, n_lat, n_lon)."""
        out = np.zeros(self.data.counts.shape)
        for name, evaluator in self.sources:
            cut, counts = evaluator(values[(name, "spatial")], values[(name, "spectral")])
            if not cut.empty:
                ys, xs = cut.slices
                out[:, ys, xs] += counts * self.time_factor(name, values)
        return out

    def stat_per_bin(self, values: Values) -> float:
        """The statistic summed bin by bin (reference for :meth:`stat`)."""
        return super().stat(values)

    def stat(self, values: Values) -> float:
        """-2 log likelihood of this dataset over its masked bins."""
        if self.data.is_on_off:
            return super().stat(values)
        factor = np.ones(self._masked_b.size)
        if self.bkg_model is not None:
            factor = factor * self.bkg_model.spectral.evaluate(
                self.data.energy, **values[(self.bkg_model.name, "spectral")]
            )
        mu_pos = self._pos_b * factor[self._pos_e]
        total = float(factor @ self._masked_b)
        for name, evaluator in self.sources:
            cut, counts = evaluator(values[(name, "spatial")], values[(name, "spectral")])
            if cut.empty:
                continue
            counts = counts * self.time_factor(name, values)
            if counts.min() < 0:
                return self.stat_per_bin(values)
            sel, local, mask = self._local_bins(name, cut)
            mu_pos[sel] += counts.ravel()[local]
            total += float(np.sum(counts, where=mask))
        n_zero_part = 2.0 * (total - float(mu_pos.sum()))
        return float(np.sum(cash(self._pos_n, mu_pos))) + n_zero_part


class SpectrumTerm(_Term):
    """Likelihood term of one 1D spectrum dataset (point-like sources: spectra only).

    Parameters
    ----------
    data : SpectrumData
        The dataset.
    models : Models
        All models; sky models applying to the dataset contribute their spectra.
    """

    def __init__(self, data: SpectrumData, models: Models) -> None:
        if not data.is_on_off and data.background is None:
            raise ValueError(
                f"spectrum dataset {data.name!r} has neither off counts nor a background"
            )
        super().__init__(data, models)
        self.sources = [
            (m.name, SpectrumSourceEvaluator(data, m))
            for m in models.sky_models
            if _applies(m, data.names)
        ]
        self._temporal = self._temporal_spans(models)

    def signal(self, values: Values) -> np.ndarray:
        """Summed predicted counts of all sources, shape (n_e,)."""
        out = np.zeros(self.data.counts.shape)
        for name, evaluator in self.sources:
            out = out + evaluator(values[(name, "spectral")]) * self.time_factor(name, values)
        return out


def _priors(models: Models) -> list[tuple[tuple[str, str], str, Prior]]:
    """``((model, component), parameter name, prior)`` of every parameter with a prior,
    frozen ones included (a constant), linked parameters once."""
    out, links = [], set()
    for ref, p in models.parameters:
        if p.prior is None or (p.link is not None and p.link in links):
            continue
        if p.link is not None:
            links.add(p.link)
        out.append(((ref.model, ref.component), ref.name, p.prior))
    return out


class FitContext:
    """The likelihood of ``models`` on datasets, with all caches of one fit.

    Parameters
    ----------
    data : sequence of MapData or SpectrumData
        Loaded datasets (:func:`gammaxr.fit.data.load_datasets`).
    models : Models
        Models with start values; their free parameters are the fit vector
        (:attr:`Models.free_parameter_names`).
    convention : {"gammaxr", "gammapy"}
        Evaluation convention of map datasets
        (:class:`gammaxr.fit.evaluators.MapSourceEvaluator`).
    irf_update : {"lattice", "gammapy"}, optional
        When sources' IRF states are recomputed: ``"lattice"`` makes the statistic a
        function of the parameters alone; ``"gammapy"`` follows Gammapy 2.1, whose statistic
        depends on the positions evaluated before in this context. Default: ``"gammapy"``
        with ``convention="gammapy"``, else ``"lattice"``.
    require_sources : bool
        Raise if no sky model applies to any dataset (a fit of background norms alone is
        allowed with False).

    Raises
    ------
    ValueError
        If a background model matches no dataset, or a model cannot apply to a dataset.
    """

    def __init__(
        self,
        data: Sequence[MapData | SpectrumData],
        models: Models,
        convention: str = "gammaxr",
        require_sources: bool = True,
        irf_update: str | None = None,
    ) -> None:
        self.models = models
        self.terms = [
            MapTerm(d, models, convention, irf_update)
            if isinstance(d, MapData)
            else SpectrumTerm(d, models)
            for d in data
        ]
        known = {n for d in data for n in d.names}
        for m in models.background_models:
            if m.dataset_name not in known:
                raise ValueError(
                    f"background model {m.name!r} is for dataset {m.dataset_name!r}, but the "
                    f"datasets are named {sorted(known)} (set ds.attrs['name'] or pass name=)"
                )
        if require_sources and not any(t.sources for t in self.terms):
            raise ValueError("no sky model applies to any dataset")
        self.priors = _priors(models)
        self.nfev = 0

    def values(self, vector: Sequence[float] | None = None) -> Values:
        """Parameter values of every model component for a free-parameter vector."""
        return self.models.component_values(vector)

    def stat(self, vector: Sequence[float] | None = None) -> float:
        """Total statistic at ``vector`` (free parameters; start values if None): -2 log
        likelihood of every term plus the priors' statistic."""
        self.nfev += 1
        values = self.values(vector)
        total = sum(term.stat(values) for term in self.terms)
        return float(total + self.prior_stat(values))

    def prior_stat(self, values: Values) -> float:
        """Sum of the priors' statistic (:mod:`gammaxr.models.priors`) at ``values``."""
        return float(sum(prior.stat(values[key][name]) for key, name, prior in self.priors))

    __call__ = stat

    def npred(self, vector: Sequence[float] | None = None) -> list[dict[str, np.ndarray]]:
        """Predicted counts of every term (see :meth:`MapTerm.npred`)."""
        values = self.values(vector)
        return [term.npred(values) for term in self.terms]
