"""Fine-tune a sparse zoo model on a new image-folder dataset, keeping its sparsity exact.

    python examples/finetune.py --model resnet34_cifar_rigl_s50 --data ../shared/data/cifar10
    python examples/finetune.py --model runs/my_run --data DIR --dst rigl   # continued DST

``--model`` is a zoo name (its published weights; ``--random-init`` builds it with
fresh weights and the variant's random masks, for the zoo models not yet published),
an ``hf-hub:`` id, or a local folder / ``.safetensors`` file. When the dataset has
another number of classes, the head is replaced and gets a mask of the old head's density. By default the
masks are frozen (``sparsity.mask_gradients``: pruned weights get zero gradients, so
they stay exactly zero); ``--dst METHOD`` instead continues dynamic sparse training
with ``sparse_zoo.dst.create`` at the model's sparsity. ``--save DIR`` writes the
result with ``sparse_zoo.hub.save_pretrained``.

The data is any folder ``DIR/{train,test}/<class>/*.jpg``; ``--per-class`` keeps the
first N images of each class (sorted by name) so that a CPU run takes minutes.
"""
from __future__ import annotations

import argparse
import time
from collections import defaultdict
from pathlib import Path

import timm
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Subset
from torchvision import datasets, transforms

import sparse_zoo.dst
from sparse_zoo import hub
from sparse_zoo.models import DATASETS, run_info
from sparse_zoo.sparsity import check_masks, mask_gradients, masked_modules, report, set_mask, topk_mask


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="zoo name, hf-hub: id, or local folder / .safetensors file")
    p.add_argument("--random-init", action="store_true", help="build a zoo name with fresh weights and masks")
    p.add_argument("--width", type=float, help="channel multiplier for --random-init of CIFAR/video archs")
    p.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10"),
                   help="folder with train/ and test/ class folders (default: ../shared/data/cifar10 beside the checkout)")
    p.add_argument("--per-class", type=int, default=0, help="train images per class (0 = all)")
    p.add_argument("--test-per-class", type=int, default=0, help="test images per class (0 = all)")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--dst", metavar="METHOD", help="continue DST with this method instead of freezing the masks")
    p.add_argument("--delta-t", type=int, default=50, help="topology update interval of --dst, in steps")
    p.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on busy shared CPUs)")
    p.add_argument("--save", metavar="DIR", help="write the fine-tuned model folder here")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def load(args: argparse.Namespace) -> nn.Module:
    if args.random_init:
        kwargs = {"width": args.width} if args.width else {}
        return timm.create_model(args.model, pretrained=False, **kwargs)
    return hub.load_model(args.model)


def replace_head(model: nn.Module, num_classes: int) -> None:
    """A new classifier for ``num_classes``, masked at the old classifier's density."""
    head_name = model.pretrained_cfg["classifier"]
    old = model.get_submodule(head_name)
    density = old.weight_mask.float().mean().item() if hasattr(old, "weight_mask") else 1.0
    model.reset_classifier(num_classes)
    new = model.get_submodule(head_name)
    if density < 1.0:
        set_mask(new, topk_mask(torch.rand(new.weight.shape), round(density * new.weight.numel())))


def folder_subset(root: Path, transform, per_class: int) -> Subset | datasets.ImageFolder:
    data = datasets.ImageFolder(str(root), transform=transform)
    if per_class <= 0:
        return data
    taken, keep = defaultdict(int), []
    for i, (_, label) in enumerate(data.samples):  # ImageFolder lists files sorted within each class
        if taken[label] < per_class:
            taken[label] += 1
            keep.append(i)
    subset = Subset(data, keep)
    subset.classes = data.classes
    return subset


def loaders(args: argparse.Namespace, model: nn.Module) -> tuple[DataLoader, DataLoader, int]:
    cfg = model.pretrained_cfg
    size = cfg["input_size"][-1]
    norm = transforms.Normalize(cfg["mean"], cfg["std"])
    train_tf = transforms.Compose([transforms.RandomResizedCrop(size, scale=(0.6, 1.0)),
                                   transforms.RandomHorizontalFlip(), transforms.ToTensor(), norm])
    test_tf = transforms.Compose([transforms.Resize(size), transforms.CenterCrop(size), transforms.ToTensor(), norm])
    root = Path(args.data)
    for split in ("train", "test"):
        if not (root / split).is_dir():
            raise SystemExit(f"{root / split} is missing: --data needs train/ and test/ folders of class folders")
    train = folder_subset(root / "train", train_tf, args.per_class)
    test = folder_subset(root / "test", test_tf, args.test_per_class)
    generator = torch.Generator().manual_seed(args.seed)
    return (DataLoader(train, args.batch_size, shuffle=True, generator=generator, num_workers=0),
            DataLoader(test, 256, num_workers=0), len(train.classes))


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader) -> float:
    model.eval()
    correct = total = 0
    for x, y in loader:
        correct += int((model(x).argmax(1) == y).sum())
        total += len(y)
    return 100.0 * correct / total


def masks_snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: m.weight_mask.clone() for n, m in masked_modules(model)}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    model = load(args)
    zoo = model.zoo_info
    train_loader, test_loader, num_classes = loaders(args, model)
    if model.num_classes != num_classes:
        replace_head(model, num_classes)
    before = report(model, input_size=None)
    print(f"model {zoo.model} ({zoo.method}, target sparsity {zoo.sparsity:g}, {zoo.distribution}); "
          f"{num_classes} classes; sparsity {before.sparsity:.4f}, {before.maskable_nonzeros:,} nonzero weights")

    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=args.weight_decay)
    total_steps = args.epochs * len(train_loader)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, total_steps)
    if args.dst:
        engine = sparse_zoo.dst.create(args.dst, model, optimizer, sparsity=zoo.sparsity,
                                       distribution=zoo.distribution, delta_t=args.delta_t, total_steps=total_steps,
                                       seed=args.seed)
    else:
        engine = None
        mask_gradients(model)
    frozen = masks_snapshot(model)

    for epoch in range(args.epochs):
        model.train()
        start, seen, loss_sum = time.time(), 0, 0.0
        for x, y in train_loader:
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
            if engine is not None:
                engine.step()
            optimizer.zero_grad()
            scheduler.step()
            seen += len(y)
            loss_sum += float(loss) * len(y)
        acc = evaluate(model, test_loader)
        print(f"epoch {epoch + 1}/{args.epochs}: loss {loss_sum / seen:.3f}, test top-1 {acc:.2f}%, "
              f"{seen / (time.time() - start):.0f} img/s")

    check_masks(model)
    after = report(model, input_size=None)
    unchanged = all(torch.equal(m, frozen[n]) for n, m in masks_snapshot(model).items())
    print(f"final: test top-1 {acc:.2f}% on {len(test_loader.dataset)} images; sparsity {after.sparsity:.4f} "
          f"({after.maskable_nonzeros:,} nonzero of {after.maskable:,} conv/linear weights); "
          f"masks {'unchanged' if unchanged else 'updated by ' + args.dst}")
    if args.save:
        known = Path(args.data).name.lower() in {a for d in DATASETS.values() for a in (d.tag, *d.aliases)}
        dataset = Path(args.data).name if known else "folder"
        # fresh random masks that were never updated make a static sparse model
        method = args.dst or ("static" if args.random_init else zoo.method)
        info = run_info(zoo.arch, method, zoo.sparsity, dataset, zoo.distribution)
        details = {"top1": acc, "epochs": args.epochs, "train_images": len(train_loader.dataset),
                   "test_images": len(test_loader.dataset), "source": args.model, "by": "examples/finetune.py"}
        out = hub.save_pretrained(model, args.save, info=info, results=details)
        print(f"saved to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
