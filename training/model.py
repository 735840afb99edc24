"""The answer model in torch: a BERT encoder read as a sentence-selecting reader.

``forward`` returns, per (question, passage) pair, an "answers at all" logit from [CLS]
and a logit per token; a sentence's logit is the mean of its tokens' logits (equal to
the head applied to the mean of their hidden states), pooled outside the graph so that
the exported ONNX model stays a plain encoder with two small heads.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class Reader(nn.Module):
    def __init__(self, encoder: Any) -> None:
        super().__init__()
        self.encoder = encoder
        hidden = int(encoder.config.hidden_size)
        self.answer_head = nn.Linear(hidden, 1)
        self.token_head = nn.Linear(hidden, 1)

    def forward(
        self, ids: torch.Tensor, mask: torch.Tensor, types: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.encoder(input_ids=ids, attention_mask=mask, token_type_ids=types)[0]
        return self.answer_head(hidden[:, 0]).squeeze(-1), self.token_head(hidden).squeeze(-1)


def sentence_logits(
    tokens: torch.Tensor, sentence: torch.Tensor, counts: list[int]
) -> torch.Tensor:
    """Mean token logit of every sentence of the batch, example after example.

    ``sentence[b, t]`` is token t's sentence in example b or -1; ``counts[b]`` is how many
    sentences example b has. A sentence with no token left after truncation gets -inf.
    """
    offsets = torch.tensor([0, *counts[:-1]], dtype=torch.long, device=tokens.device).cumsum(0)
    keep = sentence >= 0
    flat = (sentence + offsets[:, None])[keep]
    total = int(sum(counts))
    zeros = torch.zeros(total, dtype=tokens.dtype, device=tokens.device)
    sums = zeros.index_add(0, flat, tokens[keep])
    n = zeros.index_add(0, flat, torch.ones_like(tokens[keep]))
    out = sums / n.clamp(min=1.0)
    return torch.where(n > 0, out, torch.full_like(out, float("-inf")))
