"""The generate stage: a run over leaves (run.py), the call cache (cache.py), what is written (artifacts.py),
seed handling (seeds.py), progress bars, the pipelines (pipelines/) and their prompts as data (prompts/)."""
