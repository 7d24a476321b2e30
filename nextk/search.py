"""Self-boosting by loss minimisation over a size schedule (docs/theory.md §5; Lemma 4, Algorithm 1)
and with bit size in the schedule (docs/theory.md §6; Algorithm 2).

Draw j₀ uniformly from {1, …, N}; train sizes j₀ and j₀+1; while L(q_j) − L(q_{j+1}) > δ move to
j+1; output q_j. δ(ε, k, n) = max(1, ⌊m/k⌋) ε² / (4n) and N = ⌈10 log V / δ⌉ (nextk.bounds). The
paper writes ⌊m/k⌋, which is 0 for k > (n+1)/2, where Lemma 1 still guarantees one block (docs/theory.md §4):
every 1 ≤ k ≤ n is accepted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from nextk import bounds
from nextk.console import quiet
from nextk.errors import InputError, check_option
from nextk.evaluation import measure_model
from nextk.lm import make_generator
from nextk.models import MODELS
from nextk.quantize import bit_size, quantize
from nextk.stats import fmt, wilson
from nextk.train import train

FAMILIES = ("paper_rnn", "gru", "lstm", "transformer")  # the trainable families with a size schedule


def default_schedule(family: str, bits: bool = False) -> Callable[[int], dict]:
    """Index j → constructor arguments: the family's own schedule (`MODELS[family].schedule`, e.g.
    PaperRNN: hidden nodes 2j, size 2j + 2j², docs/theory.md §5). With bits, "bits": (3, j + 1) — b = 5 + j
    bits grows with j (Algorithm 2)."""
    check_option("family", family, FAMILIES)
    family_schedule = MODELS[family].schedule

    def at(j: int) -> dict:
        if j < 1:
            raise InputError(f"size index must be ≥ 1, got {j}")
        return {**family_schedule(j), **({"bits": (3, j + 1)} if bits else {})}

    return at


def run_schedule(loss_at: Callable[[int], float], j0: int, delta: float, max_sizes: int) -> tuple[list[int], int]:
    """The stopping rule alone: returns (indices tried, output index). Trains j₀ and j₀+1, then moves
    up while the loss falls by more than δ; at most `max_sizes` indices are tried."""
    tried = [j0, j0 + 1]
    losses = {j: loss_at(j) for j in tried}
    j = j0
    while losses[j] - losses[j + 1] > delta:
        if len(tried) >= max_sizes:
            return tried, j + 1  # budget exhausted: the largest trained size
        j += 1
        tried.append(j + 1)
        losses[j + 1] = loss_at(j + 1)
    return tried, j


@dataclass(repr=False)
class SearchResult:
    """Outcome of Algorithm 1/2: the output model, every index tried with its loss, and the theory."""

    model: object
    tried: list[int]
    losses: dict[int, dict]  # held-out per-token loss Estimate (dict) per index
    excess: dict[int, dict]  # exact excess loss per index (exact sources)
    configs: dict[int, dict]
    parameters: dict[int, int]
    delta: float
    j0: int
    stop_index: int
    max_start: int
    theoretical_max_start: int
    eps: float
    k: int
    departs: str
    measurement: dict = field(default_factory=dict)

    @property
    def sizes_tried(self) -> int:
        return len(self.tried)

    def __repr__(self) -> str:
        losses = ", ".join(f"j={j}: {fmt(self.losses[j], 5)}" for j in self.tried)
        return (
            f"SearchResult(output j={self.stop_index} ({self.model.name}), "
            f"tried {self.tried} from j₀={self.j0}, δ={self.delta:.3g}; held-out loss {losses})"
        )

    def decreases(self) -> dict[int, float]:
        return {j: self.losses[j]["value"] - self.losses[j + 1]["value"] for j in self.tried if j + 1 in self.losses}

    def to_dict(self) -> dict:
        return {
            "tried": self.tried,
            "losses": self.losses,
            "excess": self.excess,
            "configs": self.configs,
            "parameters": self.parameters,
            "delta": self.delta,
            "j0": self.j0,
            "stop_index": self.stop_index,
            "max_start": self.max_start,
            "theoretical_max_start": self.theoretical_max_start,
            "eps": self.eps,
            "k": self.k,
            "decreases": self.decreases(),
            "sizes_tried": self.sizes_tried,
            "departs": self.departs,
            "measurement": self.measurement,
        }


def build(family: str, vocab_size: int, cfg: dict, seed: int):
    """The model of a schedule entry: the family's constructor, quantised when the entry has "bits"."""
    cfg = dict(cfg)
    bits = cfg.pop("bits", None)
    model = MODELS[family](vocab_size, **cfg, seed=seed)
    return model if bits is None else quantize(model, *bits, ste=True)


def search(
    source,
    *,
    eps: float,
    k: int,
    family: str = "paper_rnn",
    schedule: Callable[[int], dict] | None = None,
    max_start: int | None = None,
    max_sizes: int = 6,
    seed: int = 0,
    steps: int | None = None,
    train_kwargs: dict | None = None,
    measure: bool = True,
    num_docs: int = 200,
    log=quiet,
) -> SearchResult:
    """Algorithm 1 (Algorithm 2 when the schedule carries "bits"). Returns the model at the stopping
    index with the whole record; `measure` adds its advantages at window k (checkers, learned, TV).
    `steps` is the training budget per size (a shortcut for train_kwargs={"steps": …}); quiet unless
    given `log=print` (or any callable taking a string)."""
    log = log or quiet  # log=None is quiet too
    n, v = source.length, source.vocab_size
    if not eps > 0:
        raise InputError(f"accuracy eps must be > 0, got {eps}")
    bounds.check_window(k, n)
    train_kwargs = {**(train_kwargs or {}), **({"steps": steps} if steps is not None else {})}
    delta = bounds.search_delta(eps, k, n)
    n_theory = bounds.search_max_start(eps, k, n, v)
    schedule = schedule or default_schedule(family)
    max_start = max_start or min(n_theory, 3)
    departs = (
        ""
        if max_start >= n_theory
        else f"j₀ is drawn from 1..{max_start}, not 1..{n_theory} as Lemma 4 needs for its 0.9 guarantee; "
    )
    departs += (
        "training approximates the loss minimiser (finite steps of AdamW), so the theorem's exact-"
        "minimisation premise is not met; sizes past the schedule's cap are not tried"
    )
    g = make_generator(seed)
    j0 = int(torch.randint(1, max_start + 1, (1,), generator=g))
    kwargs = {"steps": 300, "batch_size": 64, "lr": 5e-3, "eval_every": 100, "progress": False, **train_kwargs}
    models, losses, excess, configs, params = {}, {}, {}, {}, {}

    def loss_at(j: int) -> float:
        configs[j] = schedule(j)
        models[j] = build(family, v, configs[j], seed + j)
        res = train(models[j], source, seed=seed, **kwargs)  # same seed: same data, same held-out set
        last = res.history[-1]
        losses[j], params[j] = last["eval_loss"], models[j].num_parameters
        if "excess_loss" in last:
            excess[j] = last["excess_loss"]
        half = losses[j]["high"] - losses[j]["value"]
        log(f"  size j={j} {configs[j]}: held-out loss {losses[j]['value']:.5f} ± {half:.5f}")
        return losses[j]["value"]

    tried, stop = run_schedule(loss_at, j0, delta, max_sizes)
    result = SearchResult(
        model=models[stop],
        tried=tried,
        losses=losses,
        excess=excess,
        configs=configs,
        parameters=params,
        delta=delta,
        j0=j0,
        stop_index=stop,
        max_start=max_start,
        theoretical_max_start=n_theory,
        eps=eps,
        k=k,
        departs=departs,
    )
    if measure:
        result.measurement = {
            j: measure_model(source, models[j], [k], num_docs=num_docs, seed=seed, log=log) for j in tried
        }
    return result


def search_repeats(source, repeats: int, *, seed: int = 0, log=quiet, **kwargs) -> dict:
    """R runs with seeds seed … seed+R−1: how often two sizes sufficed, with a Wilson interval."""
    runs = [search(source, seed=seed + r, log=log, **kwargs) for r in range(repeats)]
    two = sum(1 for r in runs if r.sizes_tried == 2)
    return {
        "repeats": repeats,
        "two_sizes": wilson(two, repeats, "runs that stopped after two sizes").to_dict(),
        "runs": [r.to_dict() for r in runs],
        "bit_size": [bit_size(*r.configs[r.stop_index]["bits"]) for r in runs if "bits" in r.configs[r.stop_index]],
    }
