"""Int8 linear layers of the local provider, on a tiny random model."""

from __future__ import annotations

import torch

from judgeforge.llm.quantized import Int8Linear, quantize_linears
from tests.support.tiny_judge import tiny_llama


def test_every_linear_layer_becomes_int8_and_logits_stay_close() -> None:
    model = tiny_llama(vocab_size=256, hidden_size=64, intermediate_size=128)
    ids = torch.randint(0, 256, (3, 12), generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        float_logits = model(input_ids=ids).logits
        replaced = quantize_linears(model)
        int8_logits = model(input_ids=ids).logits
    assert replaced == 2 * 7 + 1  # q, k, v, o, gate, up, down per layer, and the output head
    assert not any(isinstance(m, torch.nn.Linear) for m in model.modules())
    assert sum(isinstance(m, Int8Linear) for m in model.modules()) == replaced
    error = (int8_logits - float_logits).abs().max() / float_logits.abs().max()
    assert 0 < error < 0.05


def test_a_row_gets_the_same_output_alone_and_in_any_batch() -> None:
    torch.manual_seed(0)
    layer = torch.nn.Linear(48, 20)
    int8 = Int8Linear(layer)
    # rows of very different sizes: with one scale per batch the small rows would lose precision
    rows = torch.randn(5, 48) * torch.tensor([[1.0], [100.0], [0.01], [3.0], [7.0]])
    with torch.inference_mode():
        together, expected = int8(rows), layer(rows)
        for index in range(len(rows)):
            assert torch.equal(int8(rows[index : index + 1]), together[index : index + 1])
    row_error = (together - expected).abs().amax(dim=1) / expected.abs().amax(dim=1)
    assert row_error.max() < 0.05
