"""Models built from s3prl's own definitions: APC's GRU stack and the Mockingjay/TERA/
Audio-ALBERT ``TransformerModel``, each behind the torch log-mel front-end.

Only s3prl's model modules are imported (``upstream.mockingjay.model``, ``upstream.apc.apc``):
its builders and front-ends import torchaudio, which wavebench does not install.
Every model takes a (B, N) 16 kHz waveform and returns a tuple of hidden states (B, T, D),
the last being the model's output representation.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from models.frontend import N_MELS, LogMel


class LogMelModel(nn.Module):
    """The signal-processing baseline: the front-end alone (0 parameters)."""

    def __init__(self) -> None:
        super().__init__()
        self.frontend = LogMel()

    def forward(self, wav: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return (self.frontend(wav),)


class APCModel(nn.Module):
    """APC (Chung et al. 2019): log-mel -> unidirectional GRU layers with residuals.

    s3prl's ``APC.forward`` packs sequences (``pack_padded_sequence``), which no ONNX exporter
    accepts; for full-length batches packing is the identity, so the GRU layers of s3prl's
    module are run directly with the same residual rule (added from the second layer on).
    The postnet (``Linear(512 -> 80)``) predicts future frames during training only; it is
    part of the published parameter count but not of inference.
    """

    def __init__(self, hidden_size: int = 512, num_layers: int = 3, residual: bool = True) -> None:
        super().__init__()
        # deferred: s3prl is heavy; only the s3prl models load it
        from s3prl.upstream.apc.apc import APC

        self.frontend = LogMel()
        self.apc = APC(input_size=N_MELS, hidden_size=hidden_size, num_layers=num_layers,
                       dropout=0.0, residual=residual)

    def forward(self, wav: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = self.frontend(wav)
        hiddens = []
        for i, rnn in enumerate(self.apc.rnn_layers):
            out, _ = rnn(x)
            if self.apc.rnn_residual and i > 0:
                out = out + x
            hiddens.append(out)
            x = out
        return tuple(hiddens)


def sinusoid_table(n_positions: int, hidden_size: int) -> torch.Tensor:
    """s3prl's ``get_sinusoid_table``: computed in float64, stored as float32 (same values)."""
    pos = np.arange(n_positions, dtype=np.float64)[:, None]
    idx = np.arange(hidden_size)[None, :]
    angle = pos / np.power(10000, 2 * (idx // 2) / hidden_size)
    angle[:, 0::2] = np.sin(angle[:, 0::2])
    angle[:, 1::2] = np.cos(angle[:, 1::2])
    return torch.from_numpy(angle.astype(np.float32))


S3PRL_MAX_SEQLEN = 24000  # s3prl's position table length, used when chunking is off


class S3prlTransformer(nn.Module):
    """Mockingjay / TERA / Audio-ALBERT: log-mel -> s3prl ``TransformerModel`` (post-LN BERT).

    s3prl splits inputs longer than ``chunk_frames`` into ``n = ceil(T / chunk_frames)``
    chunks with ``torch.chunk`` (chunks of ``c = ceil(T / n)`` frames, the last shorter),
    each with its own positions from 0, and concatenates the outputs.  To keep one graph for
    every length (ONNX has no data-dependent Python branches), the same split is written
    branch-free: pad T to ``n * c``, fold the chunks into the batch, mask the padded frames
    as keys (s3prl's -10000 additive mask), and cut the padding off the outputs.  Valid
    frames get exactly s3prl's values; the padded frames (fewer than n) are computed and
    discarded, which the FLOPs formulas account for.  ``chunk_frames = 0`` turns chunking off.
    """

    def __init__(self, num_layers: int, share_layer: bool = False, chunk_frames: int = 500,
                 hidden_size: int = 768, heads: int = 12, ffn: int = 3072) -> None:
        super().__init__()
        # deferred: s3prl is heavy; only the s3prl models load it
        from s3prl.upstream.mockingjay.model import TransformerConfig, TransformerModel

        config = TransformerConfig({
            "hidden_size": hidden_size, "num_hidden_layers": num_layers,
            "num_attention_heads": heads, "hidden_act": "gelu", "intermediate_size": ffn,
            "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
            "initializer_range": 0.02, "layer_norm_eps": 1e-12,
            "share_layer": share_layer, "pre_layer_norm": False,
        })
        self.frontend = LogMel()
        self.transformer = TransformerModel(config, input_dim=N_MELS)
        self.chunk_frames = chunk_frames
        self.hidden_size = hidden_size
        table_len = chunk_frames if chunk_frames > 0 else S3PRL_MAX_SEQLEN
        self.register_buffer("pos_table", sinusoid_table(table_len, hidden_size), persistent=False)

    def forward(self, wav: torch.Tensor) -> tuple[torch.Tensor, ...]:
        feat = self.frontend(wav)
        batch, frames = feat.shape[0], feat.shape[1]
        if self.chunk_frames > 0:
            n_chunks = (frames + self.chunk_frames - 1) // self.chunk_frames
        else:
            n_chunks = 1
        chunk = (frames + n_chunks - 1) // n_chunks
        padded = n_chunks * chunk
        feat = nn.functional.pad(feat, (0, 0, 0, padded - frames))
        feat = feat.reshape(batch * n_chunks, chunk, feat.shape[2])
        valid = (torch.arange(padded, device=feat.device) < frames).to(feat.dtype)
        mask = valid.reshape(1, n_chunks, chunk).expand(batch, n_chunks, chunk)
        mask = mask.reshape(batch * n_chunks, chunk)
        pos = self.pos_table[:chunk].unsqueeze(0).expand(batch * n_chunks, chunk, self.hidden_size)
        layers = self.transformer(feat, pos, mask, output_all_encoded_layers=True)
        return tuple(h.reshape(batch, padded, self.hidden_size)[:, :frames] for h in layers)


def chunk_plan(frames: int, chunk_frames: int) -> tuple[int, int]:
    """(number of chunks, frames per chunk) that `S3prlTransformer` uses for ``frames``."""
    n = max(1, math.ceil(frames / chunk_frames)) if chunk_frames > 0 else 1
    return n, math.ceil(frames / n)
