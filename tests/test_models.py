"""The model contract, the front-end, chunking and the published parameter counts."""

import math

import numpy as np
import pytest
import torch

from export.params import count_parameters
from models.frontend import HOP, N_FFT, LogMel, frames_for_samples, mel_matrix
from models.registry import LAB_SUITE, MODELS, UnknownModelError, get_spec
from models.s3prl_models import chunk_plan, sinusoid_table


@pytest.mark.parametrize("name", list(MODELS))
def test_contract_waveform_in_hidden_states_out(name):
    spec = get_spec(name)
    model = spec.build(tiny=True)
    for batch, samples in ((1, 400), (3, 12345)):
        with torch.inference_mode():
            outs = model(torch.randn(batch, samples))
        assert isinstance(outs, tuple) and len(outs) >= 1
        for h in outs:
            assert h.shape[:2] == (batch, spec.frames(samples)), (name, h.shape)


def test_frame_rates_and_minimum_lengths():
    assert get_spec("logmel").frames(16000) == 98 == frames_for_samples(16000)
    assert get_spec("tera").frames(16079) == 98 and get_spec("tera").frames(16080) == 99
    assert get_spec("wav2vec2-base").frames(16000) == 49
    assert get_spec("wav2vec2-base").frames(399) == 0
    assert get_spec("hubert-base").min_samples == 400
    assert get_spec("hubert-base").frame_rate_hz == pytest.approx(50.0)
    assert get_spec("apc").frame_rate_hz == pytest.approx(100.0)


def test_unknown_model_names_valid_choices():
    with pytest.raises(UnknownModelError, match="valid models: logmel, apc"):
        get_spec("wav2vec3")


def test_logmel_matches_torch_stft_and_mel_filterbank():
    wav = torch.randn(2, 8000, generator=torch.Generator().manual_seed(0))
    spec = torch.stft(wav, n_fft=N_FFT, hop_length=HOP, window=torch.hann_window(N_FFT),
                      center=False, return_complex=True)
    power = spec.abs().pow(2).transpose(1, 2)
    expected = torch.log(torch.clamp(power @ mel_matrix(), min=1e-6))
    got = LogMel()(wav)
    assert got.shape == expected.shape == (2, frames_for_samples(8000), 80)
    assert torch.allclose(got, expected, atol=2e-3, rtol=1e-4)


def test_sinusoid_table_is_s3prls():
    # s3prl's get_sinusoid_table formula, written out for a few entries
    table = sinusoid_table(10, 8).numpy()
    pos, i = 7, 5
    angle = pos / np.power(10000, 2 * (i // 2) / 8)
    assert table[pos, i] == pytest.approx(np.cos(angle), abs=1e-7)
    assert table[3, 2] == pytest.approx(np.sin(3 / np.power(10000, 2 / 8)), abs=1e-7)


def s3prl_chunked_reference(model, wav):
    """s3prl's own chunking: torch.chunk into ceil(T/L) pieces, positions from 0 each, concat."""
    feat = model.frontend(wav)
    frames = feat.shape[1]
    chunks = torch.chunk(feat, chunks=math.ceil(frames / model.chunk_frames), dim=1)
    outs = []
    for c in chunks:
        pos = model.pos_table[: c.shape[1]].unsqueeze(0).expand(c.shape[0], -1, -1)
        mask = torch.ones(c.shape[0], c.shape[1])
        outs.append(torch.stack(model.transformer(c, pos, mask, output_all_encoded_layers=True)))
    return torch.cat(outs, dim=2)


@pytest.mark.parametrize("name", ["tera", "mockingjay", "audio-albert"])
@pytest.mark.parametrize("samples", [400 + 160 * 7, 400 + 160 * 8, 400 + 160 * 20 + 77, 400 + 160 * 33])
def test_branch_free_chunking_equals_s3prl_chunking(name, samples):
    model = get_spec(name).build(tiny=True)  # tiny configs chunk at 8 frames
    wav = torch.randn(2, samples, generator=torch.Generator().manual_seed(samples))
    with torch.inference_mode():
        ours = torch.stack(model(wav))
        ref = s3prl_chunked_reference(model, wav)
    assert ours.shape == ref.shape
    assert torch.allclose(ours, ref, atol=1e-5)


def test_chunk_plan():
    assert chunk_plan(1500, 1500) == (1, 1500)
    assert chunk_plan(1501, 1500) == (2, 751)
    assert chunk_plan(1598, 500) == (4, 400)
    assert chunk_plan(1001, 500) == (3, 334)
    assert chunk_plan(20, 0) == (1, 20)


def _meta_counts(name):
    with torch.device("meta"):
        model = get_spec(name).builder(False)
    total = sum(p.numel() for _, p in model.named_parameters(remove_duplicate=False))
    unique = sum(p.numel() for p in model.parameters())
    return total, unique


@pytest.mark.parametrize("name,total,unique", [
    ("logmel", 0, 0),
    ("apc", 4_105_296, 4_105_296),
    ("tera", 21_327_360, 21_327_360),
    ("mockingjay", 85_118_208, 85_118_208),
    ("audio-albert", 85_118_208, 7_151_616),
    ("wav2vec2-base", 94_371_712, 94_371_712),
    ("hubert-base", 94_371_712, 94_371_712),
    ("distilhubert", 23_492_992, 23_492_992),
    ("wav2vec2-large", 315_438_720, 315_438_720),
    ("hubert-large", 315_435_136, 315_435_136),
])
def test_full_size_parameter_counts(name, total, unique):
    assert _meta_counts(name) == (total, unique)


@pytest.mark.parametrize("name,train_only", [
    ("wav2vec2-base", 672_896), ("hubert-base", 325_888),
    ("wav2vec2-large", 1_951_872), ("hubert-large", 1_174_272),
])
def test_published_fairseq_counts_are_ours_plus_training_only_modules(name, train_only):
    spec = get_spec(name)
    _, unique = _meta_counts(name)
    assert unique + train_only == spec.published_params


@pytest.mark.parametrize("name", ["wav2vec2-base", "wav2vec2-large", "hubert-large"])
def test_hf_models_last_output_is_the_final_representation(name):
    model = get_spec(name).build(tiny=True)
    wav = torch.randn(1, 4000)
    with torch.inference_mode():
        ours = model(wav)
        ref = model.model(wav).last_hidden_state
    assert torch.equal(ours[-1], ref)
    counts = count_parameters(model, torch.randn(1, 800))
    assert counts.unused_names == ["model.masked_spec_embed"]  # the final LayerNorm is used


def test_used_parameters_exclude_training_only_heads():
    apc = count_parameters(get_spec("apc").build(), torch.randn(1, 800))
    assert apc.params_unique == 4_105_296
    assert apc.params_used == 4_105_296 - (512 * 80 + 80)
    assert sorted(apc.unused_names) == ["apc.postnet.bias", "apc.postnet.weight"]
    w2v = count_parameters(get_spec("wav2vec2-base").build(tiny=True), torch.randn(1, 800))
    assert w2v.unused_names == ["model.masked_spec_embed"]
    assert w2v.params_used == w2v.params_unique - 32


def test_shared_layers_counted_once_and_per_use():
    counts = count_parameters(get_spec("audio-albert").build(tiny=True), torch.randn(1, 1600))
    per_layer = counts.params_total - counts.params_unique
    assert counts.params_total > counts.params_unique
    # 2 tiny layers sharing one: the shared layer appears once more in the per-use count
    layer = get_spec("audio-albert").build(tiny=True).transformer.encoder.layer[0]
    assert per_layer == sum(p.numel() for p in layer.parameters())


def test_weights_are_seeded_and_deterministic():
    a = get_spec("tera").build(tiny=True)
    b = get_spec("tera").build(tiny=True)
    for (na, pa), (nb, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert na == nb and torch.equal(pa, pb)


def test_lab_suite_is_the_six_models():
    assert LAB_SUITE == ("logmel", "apc", "tera", "mockingjay", "wav2vec2-base", "hubert-base")
