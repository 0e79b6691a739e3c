"""Discovery of curve families: measure responses (:mod:`.responses`), apply the curve-detector
test (:mod:`suites.analysis.curve_family`) and write files and figures (:mod:`.pipeline`)."""
