"""The input every model takes: mono float32 waveforms at 16 kHz (no dependencies, so the audio
generators, the evaluation's readers and the models share the one constant)."""

SAMPLE_RATE = 16_000
