"""The CLI entry point: user errors are one line, also when they happen inside DataLoader workers."""

from __future__ import annotations

from torch.utils.data import DataLoader, Dataset

from spvis.cli.main import worker_spvis_error
from spvis.errors import DataFormatError


class _BrokenDataset(Dataset):
    def __len__(self) -> int:
        return 2

    def __getitem__(self, index: int):
        raise DataFormatError("train.json", "frame file not found: a/0001.jpg", entry="video 7", field="file_names")


def test_worker_errors_are_recovered_as_one_line():
    try:
        next(iter(DataLoader(_BrokenDataset(), num_workers=1)))
    except RuntimeError as exc:
        message = worker_spvis_error(exc)
    assert message == "train.json: video 7: field 'file_names': frame file not found: a/0001.jpg"


def test_other_runtime_errors_are_left_alone():
    assert worker_spvis_error(RuntimeError("shape mismatch")) is None
    assert worker_spvis_error(RuntimeError("Caught ValueError in DataLoader worker process 0.\\nValueError: x")) is None
