"""The ``file_kind`` attribute that names each kind of file curvebench writes (no heavy imports).

Every file curvebench writes carries ``file_kind`` (one of :data:`FILE_KINDS`); results
files also carry ``stimulus_kind`` (``"curve"``, ``"line"``, ...). Files written before
``file_kind`` existed used one attribute ``kind`` for both meanings (the stimulus kind in
results files, the file kind in the others); :mod:`suites.results.files` still reads them.
"""

from __future__ import annotations

#: Rows streamed by the runner: a sweep (``curvebench run``) or probed images (``curvebench probe``).
RESULTS_KIND = "curvebench-results"
#: Per-channel activation statistics over natural images (``curvebench stats``).
STATS_KIND = "curvebench-stats"
#: Each channel's optimal stimulus found by gradient ascent (``curvebench optimize``).
OPTIMIZE_KIND = "curvebench-optimize"
#: The curve detectors of each layer, found by ``curvebench discover`` (``family.nc``).
CURVE_FAMILY_KIND = "curvebench-curve-family"
#: The raw responses ``curvebench discover`` measured (``responses.nc``).
DISCOVER_RESPONSES_KIND = "curvebench-discover-responses"
#: Tuning curves of natural-image patches rotated in place (``curvebench rotate-tuning``).
ROTATION_TUNING_KIND = "curvebench-rotation-tuning"
#: A discovered family's responses to the article's other stimuli (``curvebench characterize``).
CHARACTERIZE_KIND = "curvebench-characterize"

#: file kind -> what it is, in words (error messages name it)
FILE_KINDS: dict[str, str] = {
    RESULTS_KIND: "a curvebench results file (curvebench run / probe)",
    STATS_KIND: "a curvebench statistics file (curvebench stats)",
    OPTIMIZE_KIND: "a curvebench optimize file",
    CURVE_FAMILY_KIND: "a family file of curvebench discover (family.nc: the curve detectors it found)",
    DISCOVER_RESPONSES_KIND: "a responses file of curvebench discover (responses.nc)",
    ROTATION_TUNING_KIND: "a rotation-tuning file (curvebench rotate-tuning)",
    CHARACTERIZE_KIND: "a characterize file (curvebench characterize)",
}
