"""Running: stream stimuli or images through the probes into results files
(the suite runner, torchrun, probing images, dataset statistics, rotated crops)."""
