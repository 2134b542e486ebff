"""The EMA shadow: warmed-up decay, float32 averages of parameters, buffers copied as they are."""

from __future__ import annotations

import torch
from torch import nn

from training.ema import EMA


def test_ema_averages_parameters_with_the_warmed_up_decay_and_copies_buffers() -> None:
    model = nn.BatchNorm1d(3)  # weight/bias are parameters; running stats and the counter are buffers
    ema = EMA(model, decay=0.99)
    start = model.weight.detach().clone()
    expected = start.clone()
    for step, value in enumerate((2.0, -1.0, 0.5), start=1):
        with torch.no_grad():
            model.weight.fill_(value)
            model.running_mean.fill_(value)
        model.num_batches_tracked += 1
        ema.update(model)
        decay = min(0.99, (1 + step) / (10 + step))
        expected = decay * expected + (1 - decay) * value
    shadow = ema.state_dict()
    torch.testing.assert_close(shadow["weight"], expected, rtol=0, atol=1e-6)
    assert torch.equal(shadow["running_mean"], model.running_mean)  # a buffer is copied, not averaged
    assert int(shadow["num_batches_tracked"]) == 3 and shadow["weight"].dtype == torch.float32
    assert not torch.equal(shadow["weight"], start)
