"""Results files: the append-only HDF5 writer, torchrun shards, running summaries,
verification, and the openers of every file kind curvebench writes."""
