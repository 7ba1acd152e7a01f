"""Counter-based random numbers that are identical on CPU and CUDA.

Every random draw of a corruption comes from a hash of (sample key, element index)
computed with 32-bit integer arithmetic in torch, so sample i gets the same numbers
whatever the batch size, order, worker count or device (float transforms such as
log/cos may differ by an ulp between devices). Keys come from
``sample_keys(seed, sample_ids, name, severity)``, a stable hash (not Python's salted
``hash``), so results are reproducible across processes and machines.
"""
from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

_M32 = 0xFFFFFFFF
is_compiling = getattr(torch.compiler, "is_compiling", lambda: False)  # torch < 2.3 has none: never compiling
_BLOCK = 1 << 19  # elements per block of CPU draws (see Stream._draws): 1.4-1.8x faster noises than 2^16


def _hash32(x: torch.Tensor) -> torch.Tensor:
    """lowbias32 (C. Wellons): a well-mixed 32-bit integer hash, on int64 tensors holding 32-bit values."""
    x = x ^ (x >> 16)
    x = (x * 0x7FEB352D) & _M32
    x = x ^ (x >> 15)
    x = (x * 0x846CA68B) & _M32
    return x ^ (x >> 16)


def _signed32(x: torch.Tensor) -> torch.Tensor:
    """32-bit values held in int64 to the int32 with the same bit pattern."""
    return (((x + (1 << 31)) & _M32) - (1 << 31)).to(torch.int32)


def _hash32_inplace(x: torch.Tensor) -> torch.Tensor:
    """``_hash32`` on int32 bit patterns, in place: the same bits, 2x less memory traffic.

    int32 products wrap modulo 2^32 (two's complement) on CPU and CUDA; shifts are
    masked to act as logical shifts.
    """
    x ^= (x >> 16) & 0xFFFF
    x.mul_(0x7FEB352D)
    x ^= (x >> 15) & 0x1FFFF
    x.mul_(0x846CA68B - (1 << 32))
    x ^= (x >> 16) & 0xFFFF
    return x


def tensor_cache(maxsize: int) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``functools.lru_cache`` for functions of hashable arguments that return (read-only) tensors.

    Unlike lru_cache, torch.compile can see through it: a compiled graph reads a
    cached value as an input instead of recomputing it in the graph; a value missing
    from the cache is computed in the graph and not stored. Oldest entries go first.
    """
    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        cache: dict[tuple, Any] = {}

        @functools.wraps(fn)
        def cached(*args: Any) -> Any:
            value = cache.get(args)
            if value is None:
                value = fn(*args)
                if not is_compiling():
                    if len(cache) >= maxsize:
                        del cache[next(iter(cache))]
                    cache[args] = value
            return value
        return cached
    return wrap


@tensor_cache(maxsize=64)
def _counter_base(call: int, n: int, device: torch.device) -> torch.Tensor:
    """int32 hashes of counters 0..n-1 salted by the draw number: shared by every sample, so cached (read-only)."""
    salt = _signed32(_hash32(torch.tensor(call * 0x9E3779B9 & _M32, device=device)))
    return _hash32_inplace(torch.arange(n, device=device, dtype=torch.int32) ^ salt)  # int32: vectorises


def _top23(bits: torch.Tensor) -> torch.Tensor:
    """Top 23 of 32 bits (int32 patterns) as an int32 in [0, 2^23)."""
    return (bits >> 9) & 0x7FFFFF


def _to_uniform(bits: torch.Tensor) -> torch.Tensor:
    """Top 23 of 32 bits (int32 patterns) to a float32 in the open interval (0, 1): (k + 0.5) / 2^23.

    23 bits, not 24: ``k + 0.5`` must be exact in float32's 24-bit significand, or the
    top draw would round to exactly 1.0.
    """
    return (_top23(bits).to(torch.float32) + 0.5) * (1.0 / (1 << 23))


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

    def _draws(self, n: int, calls: int, fn, width: int = 1) -> torch.Tensor:
        """(B, n * width) values ``fn(*bits)`` of ``calls`` consecutive draws of n counters each.

        ``fn`` maps int32 bit patterns of shape (rows, cols) to (rows, cols) values or,
        with ``width`` > 1, to a tuple of ``width`` of them: output k of counter c goes
        to column k * n + c. On CPU in eager mode the work runs in blocks of about
        ``_BLOCK`` elements so temporaries stay in the last-level cache (and the per-op
        cost stays small next to the work); the values do not depend on the blocking.
        """
        bases = []
        for _ in range(calls):
            self.calls += 1
            bases.append(_counter_base(self.calls, n, self.device))
        keys = _signed32(self.keys)
        if self.device.type != "cpu" or len(self) * n <= _BLOCK or is_compiling():
            # one pass: on GPU and under torch.compile the element-wise chain fuses anyway
            values = fn(*(_hash32_inplace(base ^ keys) for base in bases))
            return torch.cat(values, 1) if width > 1 else values
        out = None
        rows, cols = max(1, _BLOCK // n), min(n, _BLOCK)
        for r in range(0, len(self), rows):
            for c in range(0, n, cols):
                values = fn(*(_hash32_inplace(base[c:c + cols] ^ keys[r:r + rows]) for base in bases))
                for k, block in enumerate(values if width > 1 else (values,)):
                    if out is None:
                        out = torch.empty(len(self), n * width, dtype=block.dtype, device=self.device)
                    out[r:r + rows, k * n + c:k * n + min(c + cols, n)] = block
        return out

    def bits(self, *shape: int) -> torch.Tensor:
        """(B, *shape) int64 tensor of uniform 32-bit integers."""
        return self._draws(math.prod(shape), 1, lambda h: h.to(torch.int64) & _M32).reshape(len(self), *shape)

    def uniform(self, *shape: int, low: float = 0.0, high: float = 1.0) -> torch.Tensor:
        """(B, *shape) float32 uniform in the open interval (low, high)."""
        u = self._draws(math.prod(shape), 1, _to_uniform).reshape(len(self), *shape)
        return u if (low, high) == (0.0, 1.0) else low + (high - low) * u

    def uniform_ints(self, *shape: int) -> torch.Tensor:
        """(B, *shape) int32 k in [0, 2^23): the draw ``uniform`` would give as (k + 0.5) / 2^23.

        For exact integer comparisons: u > j / 2^24 exactly when 2k + 1 > j.
        """
        return self._draws(math.prod(shape), 1, _top23).reshape(len(self), *shape)

    def map_uniform_ints(self, fn: Callable[[torch.Tensor], tuple[torch.Tensor, ...]], width: int,
                         *shape: int) -> torch.Tensor:
        """(B, width, *shape): the ``width`` outputs (one dtype) of the element-wise ``fn`` on ``uniform_ints(*shape)``.

        Computed block by block, so the int32 draws never fill memory: for impulse
        noise 2x faster than ``fn(self.uniform_ints(*shape))``, with the same values.
        """
        return self._draws(math.prod(shape), 1, lambda h: fn(_top23(h)), width=width) \
            .reshape(len(self), width, *shape)

    def normal(self, *shape: int, mean: float = 0.0, std: float = 1.0) -> torch.Tensor:
        """(B, *shape) float32 normal draws: Box-Muller, both outputs of each pair of uniforms.

        The cosine outputs fill the first half of each sample's values and the sine
        outputs the second half: contiguous halves vectorise, interleaving does not.
        """
        def box_muller(h1: torch.Tensor, h2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            radius = _to_uniform(h1).log_().mul_(-2.0).sqrt_()
            angle = _to_uniform(h2).mul_(2.0 * math.pi)
            return radius * angle.cos(), radius * angle.sin_()
        n = math.prod(shape)
        z = self._draws((n + 1) // 2, 2, box_muller, width=2)[:, :n].reshape(len(self), *shape)
        return z if (mean, std) == (0.0, 1.0) else mean + std * z

    def integers(self, low: int, high: int, *shape: int) -> torch.Tensor:
        """(B, *shape) int64 uniform in [low, high): floor(bits * span / 2^32).

        Spans below 2^15 take the same value in int32 arithmetic, split into 16-bit
        halves: floor((hi * span + floor(lo * span / 2^16)) / 2^16), about 2x faster.
        """
        span = high - low
        if span <= 0:
            raise ValueError(f"empty range [{low}, {high})")
        if span >= 1 << 15:
            return low + (self.bits(*shape) * span >> 32)

        def scaled(h: torch.Tensor) -> torch.Tensor:
            low_half = (h & 0xFFFF).mul_(span).bitwise_right_shift_(16)
            return h.bitwise_right_shift_(16).bitwise_and_(0xFFFF).mul_(span).add_(low_half) \
                .bitwise_right_shift_(16).to(torch.int64)
        return self._draws(math.prod(shape), 1, scaled).reshape(len(self), *shape).add_(low)
