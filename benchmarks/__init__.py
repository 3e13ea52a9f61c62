"""Side-by-side benchmarks of Corral against openenv-core 0.3.0. Entry point: ``benchmarks/run.py``."""
