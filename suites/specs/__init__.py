"""Suite specifications: TOML suites, their limits, run options, parameter grids and render arguments.

The lowest layer of ``suites`` above the renderer and the probes: it knows what a sweep asks
for, never how it is run or stored.
"""
