"""What one forward pass costs against the tokens it verifies: measured once per model.

A pass that feeds n tokens on top of a cached context costs about t(n) = a + b*n seconds.
`a` is what any pass costs (reading the weights: a one-token greedy step is about a + b);
`b` is what each further verified token adds. Where b/a is tiny (a GPU, float32 on a CPU
with good matmuls) long drafts are nearly free; where it is near 1/2 (bf16 emulated on an
AVX2 CPU) every rejected draft token wastes half a greedy step. The draft-length policy
(draft_length.py) sizes drafts from this curve.

The curve comes from, first to last: SPECEDIT_PASS_COST ("a,b" in seconds, to pretend a
device, and what the tests use), a curve the model declares (the scripted test model), the
one kept in memory for this model, a copy on disk for catalog models (under the catalog
cache root), and else a measurement of a few passes (one warm-up, then one-token and
16-token passes, fastest of each: on a shared machine noise only ever adds time).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import statistics
import time
import weakref
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from engine.contract import InvalidRequestError
from engine.decode.draft_length import PassCostCurve
from engine.decode.runner import ModelRunner, synchronize

from .packed_linear import is_packed

if TYPE_CHECKING:
    from .loading import LoadedModel

PASS_COST_ENV = "SPECEDIT_PASS_COST"
# What a model object may carry to declare its curve instead of being timed.
DECLARED_ATTRIBUTE = "specedit_pass_cost"
# The calibration: a context, then passes of these sizes. The line is fitted through the
# multi-token passes (4 and 16 tokens, past the one-token regime on a CPU yet only a few
# greedy steps on a 1.5B model); the one-token pass is kept as it is.
CALIBRATION_CONTEXT = 16
CALIBRATION_SIZES = (1, 4, 16)
CALIBRATION_REPEATS = 2


@dataclass
class PassCost:
    tokens: int  # tokens fed in the pass, on top of a cached context
    seconds: float  # wall time of one such pass (median or fastest of several)

    @property
    def seconds_per_token(self) -> float:
        return self.seconds / self.tokens


def fit_curve(costs: Sequence[PassCost], source: str = "measured") -> PassCostCurve:
    """Least squares line through the multi-token passes, both coefficients kept >= 0, and
    the one-token pass on its own (where there are two multi-token sizes to fit); with fewer
    sizes, one line through all the points."""
    multi = [c for c in costs if c.tokens > 1]
    single = [c.seconds for c in costs if c.tokens == 1]
    if single and len({c.tokens for c in multi}) >= 2:
        line = fit_curve(multi, source)
        return PassCostCurve(line.fixed_seconds, line.seconds_per_token, source,
                             single_seconds=min(single))
    if len({c.tokens for c in costs}) < 2:
        raise ValueError("a pass-cost curve needs passes of at least two sizes")
    xs = [float(c.tokens) for c in costs]
    ys = [c.seconds for c in costs]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mx) ** 2 for x in xs)
    slope = max(slope, 0.0)
    fixed = max(my - slope * mx, 1e-9)
    return PassCostCurve(fixed, slope, source)


def measure_pass_costs(model: Any, *, context: int = 512,
                       sizes: Sequence[int] = (1, 8, 32, 128, 512), repeats: int = 3,
                       seed: int = 0, fastest: bool = False,
                       cache: Any = None) -> list[PassCost]:
    """Time a pass feeding n tokens after `context` cached tokens, for each n.

    The median of `repeats` (the fastest with `fastest`), after one warm-up per size.
    `cache`: a preallocated cache for the runner (see ModelRunner).
    """
    vocab = int(model.config.vocab_size)
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(min(100, vocab - 1), vocab, (context + max(sizes),),
                        generator=generator).tolist()
    runner = ModelRunner(model, cache)
    runner.predict(ids[:context])  # the cached context, untimed
    device = runner.device
    costs = []
    for n in sizes:
        times = []
        for i in range(repeats + 1):  # the first pass of each size is a warm-up
            synchronize(device)
            started = time.perf_counter()
            # The runner crops its cache back to `context`, then feeds 1 + (n - 1) tokens.
            runner.predict(ids[:context + 1], ids[context + 1:context + n])
            synchronize(device)
            if i:
                times.append(time.perf_counter() - started)
        costs.append(PassCost(n, min(times) if fastest else statistics.median(times)))
    return costs


def calibrate(model: Any) -> PassCostCurve:
    """Measure the curve with a handful of passes (about 8 greedy steps' worth)."""
    costs = measure_pass_costs(model, context=CALIBRATION_CONTEXT, sizes=CALIBRATION_SIZES,
                               repeats=CALIBRATION_REPEATS, fastest=True)
    return fit_curve(costs)


def curve_from_environment() -> PassCostCurve | None:
    """SPECEDIT_PASS_COST="a,b" (seconds), or None when unset; a bad value is refused."""
    value = os.environ.get(PASS_COST_ENV, "").strip()
    if not value:
        return None
    try:
        fixed, per_token = (float(v) for v in value.split(","))
    except ValueError:
        raise InvalidRequestError(f"{PASS_COST_ENV}={value!r}: write two numbers of seconds, "
                                  "a,b for t(n) = a + b*n, e.g. 0.05,0.002") from None
    if fixed <= 0 or per_token < 0:
        raise InvalidRequestError(f"{PASS_COST_ENV}={value!r}: a must be > 0 and b >= 0")
    return PassCostCurve(fixed, per_token, "environment")


def declared_curve(model: Any) -> PassCostCurve | None:
    declared = getattr(model, DECLARED_ATTRIBUTE, None)
    return declared if isinstance(declared, PassCostCurve) else None


# Models without a LoadedModel (the synthetic benchmark) are measured once per object.
_measured: weakref.WeakKeyDictionary[Any, PassCostCurve] = weakref.WeakKeyDictionary()


def model_pass_cost(model: Any) -> PassCostCurve:
    """The curve for a bare model object: environment, declared, remembered or measured."""
    curve = curve_from_environment() or declared_curve(model)
    if curve is not None:
        return curve
    if model not in _measured:
        _measured[model] = calibrate(model)
    return _measured[model]


def _forward_kind(model: Any) -> str:
    """Which forward pass a curve was measured on: the native decoder's (by how it holds
    weights), or transformers' with packed or plain linear layers."""
    storage = getattr(model, "storage", None)
    if isinstance(storage, str):
        from .kernels.build import build

        # The kernels' library name carries their source's hash: new kernels, a new curve.
        return f"native-{storage}-{build().name}"
    from .row_attention import uses_row_attention

    rows = "-rows" if uses_row_attention(model) else ""
    return ("packed" if is_packed(model) else "linear") + rows


def _disk_path(loaded: LoadedModel) -> Path | None:
    """Where a catalog model's curve is kept; None for other models (folders change)."""
    try:
        from . import catalog
    except ImportError:
        return None
    if loaded.name not in catalog.CATALOG:
        return None
    # The machine matters as much as the model: a copied cache must not carry its curve.
    key = "|".join([loaded.name, str(loaded.device), str(loaded.dtype), platform.node(),
                    platform.machine(), str(torch.get_num_threads()), torch.__version__,
                    _forward_kind(loaded.model)])
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return catalog.cache_root() / "pass-cost" / f"{loaded.name}-{digest}.json"


def _read_disk(path: Path) -> PassCostCurve | None:
    try:
        data = json.loads(path.read_text())
        # Curves written before the one-token pass was kept apart lack it: measure again.
        single = data["single_seconds"]
        return PassCostCurve(float(data["fixed_seconds"]), float(data["seconds_per_token"]),
                             "disk", None if single is None else float(single))
    except (OSError, ValueError, KeyError, TypeError):
        return None  # absent or unreadable: measure again


def _write_disk(path: Path, curve: PassCostCurve) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(curve)))
    except OSError:
        pass  # a read-only cache only costs a calibration per process


def pass_cost(loaded: LoadedModel) -> PassCostCurve:
    """The curve for a loaded model at torch's current thread count, measured at most once per
    LoadedModel and thread count (and per machine for catalog models, kept on disk)."""
    curve = curve_from_environment() or declared_curve(loaded.model)
    if curve is not None:
        return curve
    threads = torch.get_num_threads()
    if threads not in loaded.pass_cost:
        path = _disk_path(loaded)
        curve = _read_disk(path) if path is not None else None
        if curve is None:
            curve = calibrate(loaded.model)
            if path is not None:
                _write_disk(path, curve)
        loaded.pass_cost[threads] = curve
    return loaded.pass_cost[threads]
