"""The ``kind`` attribute that names each kind of file curvebench writes (no heavy imports)."""

from __future__ import annotations

#: Per-channel activation statistics over natural images (``curvebench stats``).
STATS_KIND = "curvebench-stats"
#: Each channel's optimal stimulus found by gradient ascent (``curvebench optimize``).
OPTIMIZE_KIND = "curvebench-optimize"
#: The curve detectors of each layer, found by ``curvebench discover`` (``family.nc``).
CURVE_FAMILY_KIND = "curvebench-curve-family"
