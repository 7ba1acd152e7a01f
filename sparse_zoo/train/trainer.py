"""The training loop: a recipe, a DST method and a dataset in; a run directory out.

``train(recipe, data, out)`` checks everything it can before touching the disk
(names, data layout, batch vs. processes, the run directory), then trains with
the DST engine (``loss.backward(); optimizer.step(); engine.step()``), evaluates
and logs every epoch, checkpoints every epoch and on Ctrl-C, and finally exports
the mask-aware model. The whole state of a step is a function of the checkpoint,
so a resumed run gives bitwise the same weights as an uninterrupted one on CPU.
"""
from __future__ import annotations

import csv
import difflib
import io
import json
import signal
import threading
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import timm
import torch
from timm.data import Mixup, resolve_data_config
from timm.loss import SoftTargetCrossEntropy
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from sparse_zoo.models import ARCHS
from sparse_zoo.sparsity import MASKABLE_TYPES, masks

from . import checkpoint, distributed
from .data import EpochSampler, SeededSamples, build_datasets, eval_indices
from .export import export, export_info
from .optim import build_optimizer, check_optimizer
from .recipes import Recipe
from .schedule import check_schedule, lr_at, set_lr
from .transforms import build_transform

AMP_DTYPES: dict[str, torch.dtype | None] = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}
LOG_FIELDS = ("epoch", "step", "loss", "eval_acc", "density", "lr", "images_per_s", "epoch_time_s")


@dataclass
class TrainResult:
    run_dir: Path
    epochs_done: int
    global_step: int
    interrupted: bool
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def last(self) -> dict[str, Any]:
        return self.history[-1] if self.history else {}


def _dst():
    from sparse_zoo import dst  # imported on use: the engine pulls in the zoo's methods
    return dst


def model_spec(arch: str, tag: str) -> str:
    """The timm name to build for a recipe's ``model``: the zoo's dense variant of an
    architecture with the training set's tag (``resnet34_cifar`` on CIFAR-10 ->
    ``resnet34_cifar_dense.c10``, so mean/std and the exported config fit the data),
    or any timm model name as it is."""
    if arch in ARCHS:
        return f"{arch}_dense.{tag}" if tag in ARCHS[arch].tags else f"{arch}_dense"
    if timm.is_model(arch):
        return arch
    close = difflib.get_close_matches(arch, list(ARCHS) + timm.list_models(), n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise ValueError(f"unknown architecture {arch!r}{hint}; zoo architectures: {', '.join(ARCHS)} "
                     "(any timm model name works too)")


def check_recipe(recipe: Recipe) -> None:
    """Every name in the recipe exists and every number is in range (ValueError otherwise)."""
    methods = _dst().methods()
    if recipe.method not in methods:
        close = difflib.get_close_matches(recipe.method, methods, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ValueError(f"unknown method {recipe.method!r}{hint}; valid methods: {', '.join(methods)}")
    if not 0.0 <= recipe.sparsity < 1.0:
        raise ValueError(f"sparsity {recipe.sparsity} is outside [0, 1)")
    if recipe.amp not in AMP_DTYPES:
        raise ValueError(f"unknown amp {recipe.amp!r}; valid: {', '.join(AMP_DTYPES)}")
    check_optimizer(recipe.optimizer)
    check_schedule(recipe.lr_schedule)
    for name in ("epochs", "batch_size", "delta_t"):
        if getattr(recipe, name) <= 0:
            raise ValueError(f"{name} must be positive, got {getattr(recipe, name)}")
    for name in ("train_subset", "eval_subset"):
        if getattr(recipe, name) is not None and getattr(recipe, name) <= 0:
            raise ValueError(f"{name} must be positive or null, got {getattr(recipe, name)}")


def mask_density(model: nn.Module) -> float:
    """Active fraction of the conv/linear weights by their masks (a regrown weight that is
    still exactly zero counts as active, unlike a count of nonzero values)."""
    held = masks(model)
    total = active = 0
    for name, module in model.named_modules():
        if isinstance(module, MASKABLE_TYPES) and module.weight is not None:
            total += module.weight.numel()
            active += int(held[name].sum()) if name in held else module.weight.numel()
    return active / total if total else 1.0


def _ignore_sigint(_: int) -> None:
    """Loader workers leave Ctrl-C to the main process, which stops cleanly after the step."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class Trainer:
    """One run. Build with :meth:`__init__` (which validates), then :meth:`fit`."""

    def __init__(self, recipe: Recipe, data: str | Path, out: str | Path, *, resume: bool = False,
                 progress: bool = True):
        self.recipe, self.out, self.progress = recipe, Path(out), progress
        check_recipe(recipe)
        self.device = torch.device(recipe.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.ctx = distributed.setup(self.device)
        if self.device.type == "cuda" and self.ctx.enabled:
            self.device = torch.device("cuda", self.ctx.local_rank)
            torch.cuda.set_device(self.device)
        distributed.check_batch(recipe.batch_size, self.ctx.world)
        self.local_batch = recipe.batch_size // self.ctx.world
        if (recipe.mixup > 0 or recipe.cutmix > 0) and self.local_batch % 2:
            raise ValueError(f"mixup/cutmix need an even batch per process, got {self.local_batch}")

        self.export_info = export_info(recipe)
        name = model_spec(recipe.model, self.export_info.dataset)
        cfg = timm.models.get_pretrained_cfg(name)
        pretrained = cfg.to_dict() if cfg else {}
        if recipe.input_size:  # through the cfg: timm's argument check takes (C, H, W) only, video has T
            pretrained["input_size"] = tuple(recipe.input_size)
        self.data_config = resolve_data_config({}, pretrained_cfg=pretrained)
        self.train_set, self.eval_set = build_datasets(recipe, data, self.data_config)
        self.num_classes = recipe.num_classes or len(self.train_set.classes)
        self.steps_per_epoch = min(recipe.train_subset or len(self.train_set), len(self.train_set)) // recipe.batch_size
        if self.steps_per_epoch < 1:
            raise ValueError(f"train_subset={recipe.train_subset} is smaller than one batch of {recipe.batch_size}")
        info = checkpoint.run_info(recipe, data, self.ctx.world)
        resume_from = checkpoint.open_run_dir(self.out, info, resume=resume)

        torch.manual_seed(recipe.seed)  # the same initial weights on every rank
        self.model = timm.create_model(name, pretrained=False, num_classes=self.num_classes, **recipe.model_kwargs)
        self.model.to(self.device)
        if recipe.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.optimizer = build_optimizer(self.model, recipe)
        self.total_steps = self.steps_per_epoch * recipe.epochs
        self.engine = _dst().create(recipe.method, self.model, self.optimizer, sparsity=recipe.sparsity,
                                    distribution=recipe.distribution, delta_t=recipe.delta_t,
                                    total_steps=self.total_steps, seed=recipe.seed, **recipe.dst_kwargs())
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=recipe.amp == "fp16")
        self.mixup = (Mixup(mixup_alpha=recipe.mixup, cutmix_alpha=recipe.cutmix,
                            label_smoothing=recipe.label_smoothing, num_classes=self.num_classes)
                      if recipe.mixup > 0 or recipe.cutmix > 0 else None)
        self.criterion = (SoftTargetCrossEntropy() if self.mixup
                          else nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing))
        self.train_samples = SeededSamples(self.train_set, build_transform(recipe, self.data_config, True), recipe.seed)
        self.eval_samples = SeededSamples(self.eval_set, build_transform(recipe, self.data_config, False), recipe.seed)

        self.net: nn.Module = self.model
        if self.ctx.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = torch.nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        if recipe.compile:
            self.net = torch.compile(self.net)

        self.epoch = self.step_in_epoch = self.global_step = 0
        self.partial = self._fresh_partial()
        self.history: list[dict[str, Any]] = []
        self._stop = threading.Event()
        if resume_from is not None:
            self.load_state_dict(checkpoint.load(resume_from))
        else:
            torch.manual_seed(recipe.seed + self.ctx.rank)  # dropout / drop-path differ per rank
        self._barrier()  # every rank has checked the run directory before rank 0 writes to it
        if self.ctx.main:
            checkpoint.write_run_info(self.out, info)
        self._barrier()

    # -- state ---------------------------------------------------------------------------

    @staticmethod
    def _fresh_partial() -> dict[str, float]:
        return {"loss_sum": 0.0, "samples": 0.0, "time": 0.0}

    def state_dict(self) -> dict[str, Any]:
        rng = checkpoint.rng_state()
        if self.ctx.enabled:
            gathered: list[Any] = [None] * self.ctx.world
            torch.distributed.all_gather_object(gathered, rng)
        else:
            gathered = [rng]
        return {"config_hash": self.recipe.config_hash(), "epoch": self.epoch, "step_in_epoch": self.step_in_epoch,
                "global_step": self.global_step, "partial": dict(self.partial), "history": self.history,
                "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "engine": self.engine.state_dict(), "scaler": self.scaler.state_dict(), "rng": gathered}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["config_hash"] != self.recipe.config_hash():
            raise ValueError("the checkpoint belongs to a run with a different config; choose a new --out")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.engine.load_state_dict(state["engine"])
        self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.step_in_epoch = state["epoch"], state["step_in_epoch"]
        self.global_step, self.partial, self.history = state["global_step"], state["partial"], state["history"]
        checkpoint.set_rng_state(state["rng"][self.ctx.rank])

    def save_checkpoint(self) -> None:
        state = self.state_dict()  # a collective under DDP: every rank takes part
        if self.ctx.main:
            checkpoint.save(self.out / checkpoint.CHECKPOINT_FILE, state)
        self._barrier()

    def _barrier(self) -> None:
        if self.ctx.enabled:
            torch.distributed.barrier()

    # -- loop ----------------------------------------------------------------------------

    def _autocast(self):
        dtype = AMP_DTYPES[self.recipe.amp]
        return torch.autocast(self.device.type, dtype=dtype) if dtype is not None else nullcontext()

    def _to_device(self, images: torch.Tensor) -> torch.Tensor:
        images = images.to(self.device, non_blocking=True)
        if self.recipe.channels_last and images.dim() == 4:
            images = images.contiguous(memory_format=torch.channels_last)
        return images

    def train_step(self, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        images, targets = self._to_device(images), targets.to(self.device, non_blocking=True)
        if self.mixup is not None:
            images, targets = self.mixup(images, targets)
        set_lr(self.optimizer, lr_at(self.recipe, self.global_step, self.steps_per_epoch))
        with self._autocast():
            loss = self.criterion(self.net(images), targets)
        self.scaler.scale(loss).backward()
        if self.recipe.clip_grad:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.recipe.clip_grad)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.engine.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss.detach()

    def _loader(self, samples: SeededSamples, keys, batch_size: int) -> DataLoader:
        # a private generator: creating a loader must not draw from the global RNG, or a
        # run resumed mid-epoch would see different dropout than the uninterrupted run
        return DataLoader(samples, batch_size=batch_size, sampler=keys, num_workers=self.recipe.workers,
                          worker_init_fn=_ignore_sigint if self.recipe.workers else None,
                          pin_memory=self.device.type == "cuda", generator=torch.Generator())

    @torch.no_grad()
    def evaluate(self) -> float:
        """Clean top-1 accuracy (%) on the evaluation split (or its fixed subset)."""
        self.model.eval()
        keys = [(0, i) for i in eval_indices(len(self.eval_set), self.recipe.eval_subset,
                                              rank=self.ctx.rank, world=self.ctx.world)]
        correct = count = 0
        for images, targets in self._loader(self.eval_samples, keys, 2 * self.local_batch):
            with self._autocast():
                logits = self.model(self._to_device(images))
            correct += int((logits.argmax(1).cpu() == targets).sum())
            count += len(targets)
        self.model.train()
        correct, count = distributed.all_sum([correct, count], self.ctx, self.device)
        return 100.0 * correct / max(count, 1)

    def _end_epoch(self) -> dict[str, Any]:
        if not distributed.masks_agree(self.model, self.ctx):
            raise RuntimeError("masks differ between processes; the DST engine is not rank-consistent")
        distributed.sync_buffers(self.model, self.ctx)  # evaluate and save rank 0's BatchNorm statistics
        summed = distributed.all_sum([self.partial["loss_sum"], self.partial["samples"]], self.ctx, self.device)
        row = {"epoch": self.epoch + 1, "step": self.global_step, "loss": summed[0] / max(summed[1], 1),
               "eval_acc": self.evaluate(), "density": mask_density(self.model),
               "lr": self.optimizer.param_groups[0]["lr"],
               "images_per_s": summed[1] / max(self.partial["time"], 1e-9),
               "epoch_time_s": self.partial["time"]}
        self.history.append(row)
        if self.ctx.main:
            self._write_logs()
        return row

    def _write_logs(self) -> None:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=LOG_FIELDS)
        writer.writeheader()
        writer.writerows(self.history)
        checkpoint.atomic_write_text(self.out / "log.csv", buf.getvalue())
        checkpoint.atomic_write_text(self.out / "log.jsonl", "".join(json.dumps(r) + "\n" for r in self.history))

    @contextmanager
    def _ctrl_c(self):
        """First Ctrl-C: finish the step, checkpoint, stop. Second: abort at once."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum, frame):
            if self._stop.is_set():
                raise KeyboardInterrupt
            self._stop.set()
            tqdm.write("Ctrl-C: stopping after this step and saving a checkpoint (Ctrl-C again to abort)")

        previous = signal.signal(signal.SIGINT, handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def fit(self, *, stop_at_step: int | None = None) -> TrainResult:
        """Train to the end of the recipe, or until Ctrl-C / ``stop_at_step`` (then checkpoint and return)."""
        r = self.recipe
        with self._ctrl_c():
            while self.epoch < r.epochs:
                sampler = EpochSampler(len(self.train_set), r.batch_size, seed=r.seed, epoch=self.epoch,
                                       rank=self.ctx.rank, world=self.ctx.world, limit=r.train_subset,
                                       skip=self.step_in_epoch)
                bar = tqdm(total=self.steps_per_epoch, initial=self.step_in_epoch, unit="step", leave=False,
                           desc=f"epoch {self.epoch + 1}/{r.epochs}", disable=not (self.progress and self.ctx.main))
                start = time.perf_counter()
                for images, targets in self._loader(self.train_samples, sampler, self.local_batch):
                    loss = self.train_step(images, targets)
                    self.partial["loss_sum"] += float(loss) * len(targets)
                    self.partial["samples"] += len(targets)
                    self.step_in_epoch += 1
                    self.global_step += 1
                    bar.update()
                    bar.set_postfix(loss=f"{float(loss):.3f}", lr=f"{self.optimizer.param_groups[0]['lr']:.3g}")
                    stop = self._stop.is_set() or (stop_at_step is not None and self.global_step >= stop_at_step)
                    if distributed.any_rank(stop, self.ctx, self.device):
                        self.partial["time"] += time.perf_counter() - start
                        bar.close()
                        self.save_checkpoint()
                        return self._result(interrupted=True)
                self.partial["time"] += time.perf_counter() - start
                bar.close()
                row = self._end_epoch()
                if self.progress and self.ctx.main:
                    tqdm.write(f"epoch {row['epoch']}/{r.epochs}: loss {row['loss']:.4f}  eval acc "
                               f"{row['eval_acc']:.2f}%  density {row['density']:.4f}  lr {row['lr']:.4g}  "
                               f"{row['images_per_s']:.1f} img/s  {row['epoch_time_s']:.1f} s")
                self.epoch, self.step_in_epoch, self.partial = self.epoch + 1, 0, self._fresh_partial()
                self.save_checkpoint()
        if self.ctx.main:
            export(self.model, self.out, self.export_info, self.last_results())
        self._barrier()
        return self._result(interrupted=False)

    def last_results(self) -> dict[str, Any]:
        last = self.history[-1] if self.history else {}
        return {"dataset": self.recipe.dataset, "top1": last.get("eval_acc"), "density": mask_density(self.model),
                "epochs": self.epoch, "steps": self.global_step}

    def _result(self, interrupted: bool) -> TrainResult:
        return TrainResult(self.out, self.epoch, self.global_step, interrupted, list(self.history))

    def close(self) -> None:
        distributed.cleanup(self.ctx)


def train(recipe: Recipe, data: str | Path, out: str | Path, *, resume: bool = False, progress: bool = True,
          stop_at_step: int | None = None) -> TrainResult:
    """Train ``recipe`` on ``data`` into the run directory ``out`` (see the module docstring)."""
    trainer = Trainer(recipe, data, out, resume=resume, progress=progress)
    try:
        return trainer.fit(stop_at_step=stop_at_step)
    finally:
        trainer.close()
