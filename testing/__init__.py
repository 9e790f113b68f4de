"""What the tests and the benchmarks share beside the hardware stand-ins of `emulators/`: sample objects built
with chunkbot's own code (`sample_policies`: real QChunkSAC policies and training checkpoints).

A room of its own so that benchmarks never import `tests/` (docs/design.md, "The rooms of the code"): `tests/`
holds the suite and its private helpers, this package what both sides use. Not installed, as `emulators/`.
"""
