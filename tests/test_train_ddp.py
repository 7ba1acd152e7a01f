"""Data-parallel training with torchrun's environment: 2 CPU processes, gloo, a few steps."""
from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from test_train import make_folder, tiny_recipe


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, folder: str, out: str, report: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    from sparse_zoo.train.distributed import mask_digest
    from sparse_zoo.train.trainer import Trainer
    trainer = Trainer(tiny_recipe(epochs=1), folder, out, progress=False)
    try:
        result = trainer.fit()
        weights = {k: v for k, v in trainer.model.state_dict().items() if v.is_floating_point()}
        digest = float(sum(v.double().abs().sum() for v in weights.values()))
        Path(report, f"{rank}.json").write_text(json.dumps(
            {"masks": mask_digest(trainer.model), "weights": digest, "steps": result.global_step,
             "n_masks": len([k for k in trainer.model.state_dict() if k.endswith("weight_mask")])}))
    finally:
        trainer.close()


def test_two_gloo_processes_keep_identical_masks(tmp_path):
    folder = make_folder(tmp_path / "data")
    report = tmp_path / "report"
    report.mkdir()
    for attempt in range(3):  # the free port can be taken before rank 0 binds it: then try another
        run = tmp_path / f"run{attempt}"
        try:
            # fork: the children reuse this process's imports (spawning two fresh interpreters costs far more)
            mp.start_processes(_worker, args=(2, _free_port(), str(folder), str(run), str(report)), nprocs=2,
                               start_method="fork")
            break
        except mp.ProcessRaisedException as error:
            if "EADDRINUSE" not in str(error) or attempt == 2:
                raise
    r0, r1 = (json.loads((report / f"{r}.json").read_text()) for r in range(2))
    assert r0["n_masks"] > 0 and r0["masks"] == r1["masks"]
    assert r0["weights"] == r1["weights"] and r0["steps"] == r1["steps"] == 5
    assert json.loads((run / "run.json").read_text())["world_size"] == 2
    rows = (run / "log.jsonl").read_text().splitlines()
    assert len(rows) == 1 and json.loads(rows[0])["density"] == pytest.approx(0.5, abs=0.01)
