"""Which channels of a layer form its curve family (for plots, tuning summaries and validation).

The channel ids and the article's peak orientations live in :mod:`probes`
(``probes.article_families``); this module only looks them up for a results dataset's model.
"""

from __future__ import annotations

import xarray as xr


def article_families(model: str) -> dict[str, dict[int, float | None]]:
    """``layer -> {channel: peak orientation in degrees, or None}`` for ``model`` (empty if unknown).

    For ``inceptionv1`` the peaks are the article's (its own angle convention); for
    ``groundtruth`` the designed ones (the renderer's convention).
    """
    from probes.article_families import families

    out: dict[str, dict[int, float | None]] = {}
    for fam in families.values():
        if fam.model != model:
            continue
        peaks = fam.peaks()
        out[fam.layer] = {int(c): (float(peaks[c]) if c in peaks else None) for c in fam.channels}
    return out


def family_channels(ds: xr.Dataset, layer: str) -> list[int] | None:
    """Channel ids of the curve family of ``layer`` for the results' model, or ``None`` if unknown."""
    fam = article_families(str(ds.attrs.get("model", ""))).get(layer)
    return list(fam) if fam else None

