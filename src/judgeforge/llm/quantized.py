"""Int8 linear layers for CPU decoding: weights quantized per output channel, activations per row.

Why not `torch.ao.quantization.quantize_dynamic`: it scales activations per tensor, so a row's
answer would depend on which rows (and how much left padding) shared its batch. Here every row
has its own scale and the int8 product is summed exactly in int32, so a row's output is the
same alone or in any batch. On a 2-core CPU the layers of SmolLM2-135M run ~3 times faster
than float32 while decoding and ~1.8 times faster on prompts (BENCHMARKS.md, issue 15).
"""

from __future__ import annotations

from typing import Any

import torch

INT8_MAX = 127
_TINY = 1e-8  # the scale of an all-zero row or channel, so nothing divides by zero


def _scales(values: torch.Tensor) -> torch.Tensor:
    """One scale per row of `values`: its largest magnitude maps to INT8_MAX."""
    return values.abs().amax(dim=-1, keepdim=True).clamp(min=_TINY) / INT8_MAX


class Int8Linear(torch.nn.Module):
    """`nn.Linear` with int8 weights (a scale per output channel) and int8 activations (a scale per row)."""

    def __init__(self, linear: torch.nn.Linear):
        super().__init__()
        weight = linear.weight.detach().float()
        scale = _scales(weight)
        self.register_buffer(
            "weight_t", torch.round(weight / scale).to(torch.int8).t().contiguous()
        )
        self.register_buffer("weight_scale", scale.t().contiguous())
        bias = linear.bias
        self.register_buffer("bias", None if bias is None else bias.detach().float().clone())
        self.out_features = linear.out_features

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        rows = inputs.reshape(-1, inputs.shape[-1]).float()
        scale = _scales(rows)
        quantized = torch.round(rows / scale).to(torch.int8)
        out = torch._int_mm(quantized, self.weight_t).float() * scale * self.weight_scale
        if self.bias is not None:
            out = out + self.bias
        return out.to(inputs.dtype).reshape(*inputs.shape[:-1], self.out_features)


def quantize_linears(model: Any) -> int:
    """Replace every `nn.Linear` of `model` (the output head too) by an Int8Linear; return how many."""
    targets = [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear)
    ]
    for name, module in targets:
        parent_name, _, attribute = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, attribute, Int8Linear(module))
    return len(targets)
