#!/bin/sh
# Trains the two small models that `sparse-zoo bench` (no arguments) ships with: ResNet-34 (CIFAR) at width
# 0.125 on real CIFAR-10, 6 epochs of 10,000 training images each (a fresh random subset per epoch), dense and
# RigL at 50 % sparsity, side by side on CPU (about 8 minutes on 2 cores), then copies them into the package.
# Usage: sh tools/train_demo_models.sh [CIFAR10_ROOT]   (default: ../shared/data/cifar10 beside the checkout)
set -e
cd "$(dirname "$0")/.."
DATA=${1:-../shared/data/cifar10}
COMMON="--data $DATA --set model_kwargs.width=0.125 epochs=6 train_subset=10000 eval_subset=2000 delta_t=50 --workers 0 --device cpu"
for spec in "dense" "rigl --sparsity 0.5"; do
    name=resnet34_cifar_w0125_$(echo "$spec" | sed 's/ --sparsity 0.5/_s50/')
    OMP_NUM_THREADS=1 sparse-zoo train --recipe resnet34_cifar10 --method $spec --out runs/demo2/$name $COMMON \
        > runs/demo2/$name.log 2>&1 &
done
wait
for name in resnet34_cifar_w0125_dense resnet34_cifar_w0125_rigl_s50; do
    mkdir -p sparse_zoo/assets/models/$name
    cp runs/demo2/$name/model.safetensors runs/demo2/$name/config.json sparse_zoo/assets/models/$name/
done
