"""Which channels a sweep's figures and report show, and a line that says how they were chosen.

``auto`` (the default of ``curvebench plot`` and ``report``), in this order:

1. the layer's known curve family (the article's for InceptionV1, the designed one for
   the ground-truth model; ``probes.article_families``);
2. a discovered family: the curve detectors of the layer in the newest ``family.nc`` of
   ``curvebench discover`` for the same model and weights among the selection's
   ``families`` (opened by the command: :func:`suites.results.family_file.with_family_files`
   finds ``FOLDER/family.nc`` and ``FOLDER/discover-*/family.nc`` beside the results and
   in ``./results``; this module opens no file);
3. the channels that pass the curve-detector test of ``curvebench discover``
   (:func:`suites.analysis.curve_family.classify_arrays`) applied to the sweep itself, as
   far as one polarity allows: strength, curve not line, one orientation lobe (steps 1-3;
   no second polarity, one position, no corner, end-stop or spot control), with the
   test's ``min_tuning_width`` raised to :data:`MIN_LOBE_STEPS` orientation steps, so
   that a unit answering one cell of a coarse grid is never chosen.

Never a ranking by one cell's value. When more channels qualify than a figure holds
(``max_channels``), the ones shown are spread evenly over preferred orientation, and the
line says so.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import xarray as xr

from suites.specs.channel_selection import ChannelSelection

from .curve_family import Criteria, classify_arrays
from .tuning import best_curvature_index, fitted_peak

__all__ = ["ChosenChannels", "NoChannels", "choose_channels", "sweep_detectors", "spread", "family_detectors",
           "MIN_LOBE_STEPS"]

#: Narrowest orientation lobe (FWHM) chosen, in orientation steps of the sweep. With linear
#: interpolation to the half-height crossings, a response in one cell only (0 at both
#: neighbours) is 1 step wide, a lobe with two samples at half height or more at least 1.5.
MIN_LOBE_STEPS = 1.5


class NoChannels(ValueError):
    """``auto`` found no channel to show in a layer (the message says why)."""


@dataclass(frozen=True)
class ChosenChannels:
    """Channel ids to draw, ordered by preferred orientation, and how they were chosen.

    ``how``: one line for a subtitle; ``source``: ``ids``, ``all``, ``known family``,
    ``family file``, ``discovered family`` or ``sweep test``.
    """

    channels: list[int]
    how: str
    source: str = "ids"


def _as_selection(channels: ChannelSelection | Sequence[int] | None) -> ChannelSelection:
    if channels is None:
        return ChannelSelection()
    if isinstance(channels, ChannelSelection):
        return channels
    return ChannelSelection(mode="ids", ids=tuple(int(c) for c in channels))


def preferred_orientations(g: xr.DataArray, channels: Sequence[int]) -> dict[int, float]:
    """Fitted preferred orientation (degrees) at the best curvature of each channel's sigma grid; NaN if flat."""
    cdim = g.dims[0]
    o = g.coords["orientation"].values
    k = g.coords["curvature"].values
    out = {}
    for c in channels:
        h = np.nan_to_num(g.sel({cdim: c}).values, nan=-np.inf)
        if not np.isfinite(h).any():
            out[int(c)] = math.nan
            continue
        row = h[best_curvature_index(k, h)]
        out[int(c)] = fitted_peak(o, np.clip(np.where(np.isfinite(row), row, 0.0), 0, None))
    return out


def spread(channels: Sequence[int], prefs: dict[int, float], n: int) -> list[int]:
    """At most ``n`` of ``channels``, evenly spaced along their preferred orientation, in that order."""
    order = sorted(channels, key=lambda c: prefs.get(c, math.nan) if math.isfinite(prefs.get(c, math.nan)) else 1e9)
    if len(order) <= n:
        return order
    return [order[i] for i in (np.arange(n) * len(order)) // n]


def _orientation_step(o: np.ndarray) -> float:
    u = np.unique(np.mod(np.asarray(o, dtype=np.float64), 360.0))
    if u.size < 2:
        return 0.0
    return float(np.median(np.diff(np.append(u, u[0] + 360.0))))


def sweep_detectors(g: xr.DataArray, criteria: Criteria | None = None) -> tuple[list[int], Criteria]:
    """Channels of a sigma grid ``(channel, curvature, orientation)`` that pass steps 1-3 of the curve-detector test.

    Returns the channels and the criteria applied (``min_tuning_width`` raised to
    :data:`MIN_LOBE_STEPS` orientation steps, see the module docstring).

    Raises:
        NoChannels: no swept curvature reaches the test's ``min_curvature``.
    """
    base = criteria or Criteria()
    o = np.asarray(g.coords["orientation"].values, dtype=np.float64)
    k = np.asarray(g.coords["curvature"].values, dtype=np.float64)
    if o.size == 0 or k.size == 0 or not np.isfinite(g.values).any():
        raise NoChannels("the sweep holds no measured values yet")
    crit = replace(base, min_tuning_width=max(base.min_tuning_width, MIN_LOBE_STEPS * _orientation_step(o)))
    if not (k >= crit.min_curvature - 1e-12).any():
        raise NoChannels(f"the sweep's curvatures reach {k.max():g}/px, below the curve-detector test's "
                         f"{crit.min_curvature:g}/px")
    ids = [int(c) for c in g.coords[g.dims[0]].values]
    values = np.asarray(g.values, dtype=np.float64)
    measured = np.isfinite(values).reshape(len(ids), -1).any(axis=1)
    if not measured.any():
        return [], crit
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        # one polarity: the same grid as both (steps 4 and 6 then add nothing; no controls, one position)
        two = np.repeat(values[measured][:, None], 2, axis=1)
        family = classify_arrays(o, k, two, criteria=crit, channels=np.asarray(ids)[measured])
    passed = [int(c) for c, d in zip(family.channel.values, family.detector.values) if bool(d)]
    return passed, crit


def _check_present(wanted: Sequence[int], ids: Sequence[int], what: str) -> None:
    bad = [c for c in wanted if c not in ids]
    if bad:
        raise ValueError(f"--channels: {what} {bad[:8]} not in the results (they hold {len(ids)} channels: "
                         f"{', '.join(map(str, list(ids)[:12]))}{' ...' if len(ids) > 12 else ''})")


def _thinned(shown: int, total: int) -> str:
    return f", {shown} of them evenly spaced in preferred orientation" if shown < total else ""


def family_detectors(family: xr.Dataset, layer: str, where: str = "family file") -> list[int]:
    """Channel ids of the curve detectors of ``layer`` in a discover family dataset, by preferred orientation.

    Raises:
        ValueError: no units of ``layer`` in it, or none of them a detector.
    """
    in_layer = family.layer.values.astype(str) == layer
    if not in_layer.any():
        layers = sorted(set(family.layer.values.astype(str)))
        raise ValueError(f"{where} has no units of layer {layer!r}; its layers: {', '.join(layers)}")
    keep = in_layer & family.detector.values.astype(bool)
    if not keep.any():
        raise ValueError(f"{where} has no curve detectors in layer {layer!r}")
    chans = family.channel.values[keep].astype(int)
    if "preferred_orientation" in family:
        prefs = np.nan_to_num(family.preferred_orientation.values[keep].astype(float), nan=1e9)
        chans = chans[np.argsort(prefs, kind="stable")]
    return [int(c) for c in chans]


def _given_family(ds: xr.Dataset, layer: str, sel: ChannelSelection) -> list[int]:
    """Detectors of ``layer`` in the family file given with ``--channels``, checked against the results' network."""
    from suites.results.attributes import check_same_model

    if not sel.families:
        raise ValueError(f"--channels {sel.path}: the family file was not opened (the command opens it: "
                         "suites.results.family_file.with_family_files)")
    path, fam = sel.families[0]
    check_same_model(fam.attrs, ds.attrs, what=f"--channels {path} was discovered", other="the results",
                     error=ValueError)
    return family_detectors(fam, layer, f"--channels {path}")


def _discovered(ds: xr.Dataset, layer: str, sel: ChannelSelection) -> tuple[Path, list[int]] | None:
    """The newest candidate family of the results' network with detectors in ``layer``, or None."""
    from suites.results.attributes import check_same_model, model_id

    if model_id(ds.attrs)[0] is None:  # results that do not name their model match no family
        return None
    for path, fam in sel.families:
        if model_id(fam.attrs)[0] is None:
            continue
        try:
            check_same_model(fam.attrs, ds.attrs, what="family", other="results", error=ValueError)
            return Path(path), family_detectors(fam, layer)
        except ValueError:
            continue
    return None


def _known_label(ds: xr.Dataset, layer: str) -> str:
    model = str(ds.attrs.get("model", ""))
    if model == "inceptionv1":
        return f"the article's curve family of {layer} (Cammarata et al. 2020)"
    if model == "groundtruth":
        return f"the designed curve family of {layer}"
    return f"the known curve family of {layer}"


def choose_channels(ds: xr.Dataset, layer: str, g: xr.DataArray,
                    channels: ChannelSelection | Sequence[int] | None = None, *,
                    known: Sequence[int] | None = None, max_channels: int = 16,
                    criteria: Criteria | None = None) -> ChosenChannels:
    """The channels of ``layer`` to show and how they were chosen.

    Args:
        ds: the results dataset (its model and weights attributes).
        layer: the layer.
        g: the layer's sigma grid ``(channel, curvature, orientation)`` (:func:`suites.analysis.arrays.grid`).
        channels: a selection (``auto`` when None; a list of ids = mode ``ids``).
        known: the layer's known curve family (``None``: not known).
        max_channels: at most this many for ``auto``, ``family`` and family files.
        criteria: thresholds of the curve-detector test (default: ``curvebench discover``'s).

    Raises:
        ValueError: ids not in the results, ``family`` without a known family, a family
            file that is unreadable, of another network, or without detectors in the layer.
        NoChannels: ``auto`` found none (the message says why).
    """
    sel = _as_selection(channels)
    ids = [int(c) for c in g.coords[g.dims[0]].values]
    if sel.mode == "ids":
        _check_present(sel.ids, ids, "channels")
        return ChosenChannels(_ordered(g, sel.ids), f"channels {', '.join(map(str, sel.ids))}, as given", "ids")
    if sel.mode == "all":
        return ChosenChannels(_ordered(g, ids), f"all {len(ids)} channels of {layer}", "all")
    if sel.mode == "file":
        dets = _given_family(ds, layer, sel)
        _check_present(dets, ids, f"detectors of {sel.path}")
        return _capped(g, dets, max_channels, f"the {len(dets)} curve detectors of {layer} in {sel.path}", "family file")
    if known:
        present = [int(c) for c in known if int(c) in ids]
        if present:
            return _capped(g, present, max_channels, _known_label(ds, layer) + f", {len(present)} units", "known family")
    if sel.mode == "family":
        raise ValueError(f"--channels family: model {ds.attrs.get('model', '?')!r} has no known curve family in "
                         f"layer {layer!r}; give channel ids, a FAMILY.nc of `curvebench discover`, or auto")
    return _auto_unknown(ds, layer, g, sel, max_channels, criteria)


def _auto_unknown(ds: xr.Dataset, layer: str, g: xr.DataArray, sel: ChannelSelection, max_channels: int,
                  criteria: Criteria | None) -> ChosenChannels:
    ids = [int(c) for c in g.coords[g.dims[0]].values]
    found = _discovered(ds, layer, sel)
    if found is not None:
        dets = [c for c in found[1] if c in ids]
        if dets:
            return _capped(g, dets, max_channels, f"the {len(dets)} curve detectors of {layer} found by "
                                                  f"`curvebench discover` ({found[0]}; same model and weights)",
                           "discovered family")
    passed, crit = sweep_detectors(g, criteria)
    if not passed:
        raise NoChannels(f"no channel of {layer} passes the curve-detector test on this sweep (one polarity; "
                         "give --channels ids or the FAMILY.nc of `curvebench discover`)")
    return _capped(g, passed, max_channels,
                   f"the {len(passed)} of {len(ids)} channels that pass the curve-detector test of `curvebench "
                   f"discover` on this sweep, one polarity only (peak >= {crit.min_sigma:g} sigma at curvature >= "
                   f"{crit.min_curvature:g}/px, >= {crit.min_line_ratio:g}x the best line, one orientation lobe "
                   f"{crit.min_tuning_width:.3g}-{crit.max_tuning_width:g} deg wide at half height)", "sweep test")


def _ordered(g: xr.DataArray, channels: Sequence[int]) -> list[int]:
    prefs = preferred_orientations(g, channels)
    return spread(list(channels), prefs, len(channels))


def _capped(g: xr.DataArray, channels: Sequence[int], n: int, how: str, source: str) -> ChosenChannels:
    prefs = preferred_orientations(g, channels)
    shown = spread(list(channels), prefs, n)
    return ChosenChannels(shown, how + _thinned(len(shown), len(channels)), source)
