"""wav2vec 2.0, HuBERT and DistilHuBERT built with transformers (same architectures).

s3prl's own wav2vec 2.0 (a fairseq port) does not export to ONNX (see models.md), while
transformers' ``Wav2Vec2Model``/``HubertModel`` export with both exporters and match PyTorch;
the fairseq/s3prl checkpoint formats map onto these modules for real weights.
Built with ``AutoModel.from_config`` (a directly constructed model's weight-norm
parametrisation breaks under ``FlopCounterMode`` with transformers 5 and torch 2.13).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

BASE = dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072)
LARGE = dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
             feat_extract_norm="layer", do_stable_layer_norm=True)
TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
            conv_dim=(16,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)


class HFEncoder(nn.Module):
    """(B, N) waveform -> all hidden states of a transformers speech encoder."""

    def __init__(self, family: str, **config: Any) -> None:
        super().__init__()
        # deferred: transformers is heavy (seconds); only the models that need it load it
        from transformers import AutoModel, HubertConfig, Wav2Vec2Config

        config_cls = {"wav2vec2": Wav2Vec2Config, "hubert": HubertConfig}[family]
        cfg = config_cls(**config)
        cfg._attn_implementation = "sdpa"
        self.model = AutoModel.from_config(cfg)

    def forward(self, wav: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(wav, output_hidden_states=True, return_dict=True)
        # the last entry is the model's representation: with stable layer norm (Large models)
        # transformers 5 records the last layer's output *before* the encoder's final LayerNorm
        # in `hidden_states`, while `last_hidden_state` has it applied (for Base they are equal)
        return tuple(out.hidden_states[:-1]) + (out.last_hidden_state,)
