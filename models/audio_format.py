"""The input every model takes: mono float32 waveforms at 16 kHz (no dependencies, so the audio
generators, the evaluation's readers and the models share the one constant)."""

SAMPLE_RATE = 16_000


def samples_of(duration_s: float) -> int:
    """The samples of ``duration_s`` seconds of input: a cell's input length (the worker's input,
    the per-shape artifacts make export makes for the cells)."""
    return int(round(float(duration_s) * SAMPLE_RATE))
