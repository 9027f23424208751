"""Test set-up shared by every test file: one torch thread (CI has two cores and pytest may run
beside other work), runs written under a temporary directory, W&B never reaching the network."""

import os

import pytest
import torch

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
torch.set_num_threads(1)


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Run inside a fresh directory, so runs/, videos/ and wandb/ land there."""
    monkeypatch.chdir(tmp_path)
    return tmp_path
