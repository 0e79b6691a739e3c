"""Optimisation: every channel's preferred stimulus by gradient ascent through the renderer
(:mod:`.ascent`) over a bounded parameter space (:mod:`.space`)."""
