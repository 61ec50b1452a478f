"""Summaries for terminals and notebooks: datasets, data stores, observations, fit results.

Each summary is a plain function returning text (for ``repr``) or HTML (for ``_repr_html_``);
the objects' reprs and the ``.gamma`` accessor call them.
"""

from gammaxr.summary.dataset import dataset_html, dataset_summary, dataset_text

__all__ = ["dataset_html", "dataset_summary", "dataset_text"]
