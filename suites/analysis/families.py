"""Which channels of a layer form its curve family (for plots, tuning summaries and validation).

The channel ids and the article's peak orientations live in :mod:`probes` (the
probes know the models); this module only looks them up for a results dataset.
"""

from __future__ import annotations

import xarray as xr


def family_channels(ds: xr.Dataset, layer: str) -> list[int] | None:
    """Channel ids of the curve family of ``layer`` for the results' model, or ``None`` if unknown."""
    fams = article_families(ds.attrs.get("model", ""))
    fam = fams.get(layer)
    return list(fam) if fam else None


def article_families(model: str) -> dict[str, dict[int, float | None]]:
    """``layer -> {channel: article peak orientation in degrees (None if not given)}`` for ``model``.

    Empty for models whose families the probes do not know.
    """
    return {}
