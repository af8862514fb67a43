"""Two gloo processes on CPU give the same training as one process with the same global batch.

Tolerance: the gradients of the same micro-batches are summed in a different order (DDP all-reduce vs local
accumulation), so weights agree to float32 rounding (atol 1e-6 after 4 AdamW steps), not bit for bit.
"""

from __future__ import annotations

import socket

import pytest
import torch
import torch.multiprocessing as mp

from spvis.engine import checkpointing as ckpt
from test_train_fakes import ddp_worker, make_synth, run_fake_training, tiny_cfg


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_gloo_processes_equal_one_process(tmp_path):
    train_json = make_synth(tmp_path / "synth")
    single, _ = run_fake_training(tiny_cfg(train_json, tmp_path / "one", CLIPS_PER_DEVICE=1))
    mp.start_processes(ddp_worker, args=(2, _free_port(), str(train_json), str(tmp_path / "two")), nprocs=2,
                       join=True, start_method="spawn")
    two = ckpt.load_training_checkpoint(ckpt.find_last_checkpoint(tmp_path / "two"))
    assert two["iteration"] == 4
    one = single.model.state_dict()
    for name, value in two["model"].items():
        torch.testing.assert_close(value, one[name], atol=1e-6, rtol=1e-5, msg=name)
    moved = sum(float((v - two["model"][k]).abs().sum()) for k, v in
                run_fake_training(tiny_cfg(train_json, tmp_path / "short", CLIPS_PER_DEVICE=1, MAX_ITER=1))[0]
                .model.state_dict().items())
    assert moved > 0  # the comparison is not between untrained copies
