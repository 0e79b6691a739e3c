"""curvebench's application package: the ``curvebench`` command line, on top of the libraries.

The libraries are ``stimuli`` (parameters -> images), ``probes`` (images -> activations)
and ``suites`` (sweeps -> results datasets -> analysis and figures). This package imports
them; none of them imports this package. See ``docs/architecture.md``.
"""

__all__: list[str] = []
