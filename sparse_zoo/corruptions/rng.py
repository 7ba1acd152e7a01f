"""Counter-based random numbers that are identical on CPU and CUDA.

Every random draw of a corruption comes from a hash of (sample key, element index)
computed with 32-bit integer arithmetic in torch, so sample i gets the same numbers
whatever the batch size, order, worker count or device (float transforms such as
log/cos may differ by an ulp between devices). Keys come from
``sample_keys(seed, sample_ids, name, severity)``, a stable hash (not Python's salted
``hash``), so results are reproducible across processes and machines.
"""
from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

import torch

_M32 = 0xFFFFFFFF
_BLOCK = 1 << 16  # elements per block of CPU draws (see Stream._draws)


def _hash32(x: torch.Tensor) -> torch.Tensor:
    """lowbias32 (C. Wellons): a well-mixed 32-bit integer hash, on int64 tensors holding 32-bit values."""
    x = x ^ (x >> 16)
    x = (x * 0x7FEB352D) & _M32
    x = x ^ (x >> 15)
    x = (x * 0x846CA68B) & _M32
    return x ^ (x >> 16)


def _to_uniform(bits: torch.Tensor) -> torch.Tensor:
    """Top 24 bits to a float32 in the open interval (0, 1)."""
    return ((bits >> 8).to(torch.float32) + 0.5) * (1.0 / (1 << 24))


def sample_keys(seed: int, sample_ids: Sequence[int] | torch.Tensor, name: str, severity: int | float) -> torch.Tensor:
    """One 32-bit key per sample from (seed, sample id, corruption name, severity)."""
    digest = hashlib.blake2b(f"{seed}/{name}/{severity}".encode(), digest_size=4).digest()
    base = int.from_bytes(digest, "little")
    ids = torch.as_tensor(sample_ids, dtype=torch.int64).reshape(-1) & _M32
    return _hash32(_hash32(ids ^ base) ^ ((ids >> 32) & _M32))


class Stream:
    """A per-batch stream of draws: row i of every draw depends only on key i and the draw order.

    Each call consumes a fresh block of counters, so two draws of the same shape are
    independent, and the k-th draw of sample i is the same in any batch.
    """

    def __init__(self, keys: torch.Tensor, device: torch.device | str | None = None):
        self.keys = keys.to(device=device, dtype=torch.int64).reshape(-1, 1)
        self.device = self.keys.device
        self.calls = 0

    def __len__(self) -> int:
        return self.keys.shape[0]

    def _draws(self, shape: tuple[int, ...], calls: int, fn) -> torch.Tensor:
        """``fn(*bits)`` of ``calls`` consecutive draws of ``shape``, as a (B, *shape) tensor.

        On CPU the hashes are computed in blocks of about ``_BLOCK`` elements so their
        temporaries stay in cache (several times faster); the values are the same.
        """
        n = math.prod(shape)
        bases = []
        for _ in range(calls):
            self.calls += 1
            salt = _hash32(torch.tensor(self.calls * 0x9E3779B9 & _M32, device=self.device))
            bases.append(_hash32(torch.arange(n, device=self.device, dtype=torch.int64) ^ salt).unsqueeze(0))
        if self.device.type != "cpu" or len(self) * n <= _BLOCK:
            return fn(*(_hash32(base ^ self.keys) for base in bases)).reshape(len(self), *shape)
        rows, cols = max(1, _BLOCK // n), min(n, _BLOCK)
        out = None
        for r in range(0, len(self), rows):
            keys = self.keys[r:r + rows]
            for c in range(0, n, cols):
                block = fn(*(_hash32(base[:, c:c + cols] ^ keys) for base in bases))
                if out is None:
                    out = torch.empty(len(self), n, dtype=block.dtype)
                out[r:r + rows, c:c + cols] = block
        return out.reshape(len(self), *shape)

    def bits(self, *shape: int) -> torch.Tensor:
        """(B, *shape) int64 tensor of uniform 32-bit integers."""
        return self._draws(shape, 1, lambda h: h)

    def uniform(self, *shape: int, low: float = 0.0, high: float = 1.0) -> torch.Tensor:
        """(B, *shape) float32 uniform in the open interval (low, high)."""
        u = self._draws(shape, 1, _to_uniform)
        return u if (low, high) == (0.0, 1.0) else low + (high - low) * u

    def normal(self, *shape: int, mean: float = 0.0, std: float = 1.0) -> torch.Tensor:
        """(B, *shape) float32 normal draws (Box-Muller)."""
        def box_muller(h1: torch.Tensor, h2: torch.Tensor) -> torch.Tensor:
            return torch.sqrt(-2.0 * torch.log(_to_uniform(h1))) * torch.cos((2.0 * math.pi) * _to_uniform(h2))
        z = self._draws(shape, 2, box_muller)
        return z if (mean, std) == (0.0, 1.0) else mean + std * z

    def integers(self, low: int, high: int, *shape: int) -> torch.Tensor:
        """(B, *shape) int64 uniform in [low, high)."""
        span = high - low
        if span <= 0:
            raise ValueError(f"empty range [{low}, {high})")
        return low + (self.bits(*shape) * span >> 32)
