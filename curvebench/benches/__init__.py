"""The benchmark harnesses behind ``curvebench bench``: renderer, probes, whole runs, optimisation.

They sit above the libraries they measure; nothing in ``stimuli``, ``probes`` or ``suites``
imports them.
"""
