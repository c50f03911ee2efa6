"""Training files from datasets: recipes (InstructLab's `datasets: [{path, sampling_size}]` format), the
deterministic mixer that follows them (`labtax mix`), and the LAB phase files `labtax generate` writes.

Below both `generate` (which writes the phase files at the end of every run) and `train` (which reads them):
it imports no stage, only the error type, the atomic writes and PyYAML.
"""
