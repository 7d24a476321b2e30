"""The sweeps behind `nextk reproduce` (docs/reproduce.md): `SPECS[budget](source, source_params)`.

`quick` fits in 15 minutes on 2 CPU cores (tiny Dyck languages, GRU widths 2–16, a few seeds, a reduced barrier
report); `full` is meant for a cluster. A user's source (`UserSource`: a `regex`, `pfsa`, `pcfg`, or any exact source
with a length) takes Dyck's place (and, in the full budget, the HMM's) in every section that measures a trained model;
grids over n take multiples of the source's own length. The barrier keeps its own sources.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from nextk.errors import InputError, check_option

BUDGETS = ("quick", "full")
DYCK = {"n_types": 1, "max_depth": 3}
# Each budget's document lengths as multiples of its base n (Dyck's: 12 quick, 24 full) and the largest window k it
# measures: the quick grids are n·{2/3, 1, 4/3, 5/3} = 8, 12, 16, 20; the full ones n·{1/3, 2/3, 1, 4/3, 2}.
SCALES = {
    "quick": (tuple(Fraction(a, 3) for a in (2, 3, 4, 5)), 4),
    "full": (tuple(Fraction(a, 3) for a in (1, 2, 3, 4, 6)), 8),
}
SNAP = 3  # a multiple at which the language is empty moves to the nearest length within this many tokens


@dataclass(frozen=True)
class UserSource:
    """A user's source in place of Dyck: its registry name, its parameters (the length included) and the
    document length of each multiple of n a budget's grids use. Made by `of`, which builds the source once at
    its own length and once at each multiple, so a bad parameter is one line before any folder exists."""

    name: str
    params: dict
    lengths: dict  # Fraction → document length

    @classmethod
    def of(cls, name: str, params: dict | None, budget: str) -> UserSource:
        from nextk.sources import SOURCES, make_source

        check_option("budget", budget, BUDGETS)
        if name not in SOURCES:
            raise InputError(f"unknown source {name!r}; choose one of {sorted(SOURCES)}")
        params = dict(params or {})
        try:
            src = make_source(name, **params)  # the user's parameters as given: their errors are theirs
        except TypeError as e:  # a parameter the source does not take (the Python API; the CLI names it earlier)
            raise InputError(f"source {name!r}: {e}") from None
        if not getattr(src, "exact", True):
            raise InputError(f"source {name!r} has no exact probabilities: reproduce measures KL, TV and Theorem 3")
        if "length" not in src.params:
            raise InputError(
                f"source {name!r} has no length parameter: reproduce varies the document length (takes a source "
                f"with one, e.g. regex, pfsa, pcfg, dyck, hmm, parity)"
            )
        n = src.length
        params = {**params, "length": n}
        factors, k_max = SCALES[budget]
        lengths = {f: n if f == 1 else cls._nearest(name, params, max(1, round(n * f))) for f in factors}
        if min(lengths.values()) < k_max:
            need = min(m for m in range(k_max, 10 * k_max) if round(m * min(factors)) >= k_max)
            raise InputError(
                f"reproduce --budget {budget} measures windows up to k = {k_max} at n·{min(factors)} = "
                f"{min(lengths.values())} tokens: give {name} --length ≥ {need} (it is {n})"
            )
        return cls(name, params, lengths)

    @staticmethod
    def _nearest(name: str, params: dict, target: int) -> int:
        """`target`, or the nearest length within SNAP tokens at which the source builds (a language empty at
        `target`: a pattern of even lengths at an odd one); none: the error at `target`, naming it."""
        from nextk.sources import make_source

        first = None
        for d in (0, *(s * i for i in range(1, SNAP + 1) for s in (1, -1))):
            if target + d < 1:
                continue
            try:
                make_source(name, **{**params, "length": target + d})
                return target + d
            except InputError as e:
                first = first or e
        raise InputError(f"reproduce needs {name} at about {target} tokens (a multiple of its length): {first}")

    def at(self, f: Fraction) -> dict:
        """{"source", "source_params"} at the multiple `f` of the source's length."""
        return {"source": self.name, "source_params": {**self.params, "length": self.lengths[f]}}

    def grid(self, *fs: Fraction) -> list[int]:
        return sorted({self.lengths[f] for f in fs})


def own(source: str | None, source_params: dict | None, budget: str) -> UserSource | None:
    """The checked user source of a spec (None: the budget's own Dyck and HMM)."""
    return None if source is None else UserSource.of(source, source_params, budget)


F = Fraction


def quick_spec(source: str | None = None, source_params: dict | None = None) -> dict:
    """≤ 15 minutes on 2 CPU cores: Dyck languages of length 8–20 (or a user's source at 2/3–5/3 of its length),
    GRU widths 2–16, two seeds."""
    user = own(source, source_params, "quick")

    def on(f: Fraction) -> dict:  # the source of a section at n·f
        return user.at(f) if user else {"source": "dyck", "source_params": DYCK | {"length": int(12 * f)}}

    def lengths(*fs: Fraction) -> list[int]:
        return user.grid(*fs) if user else [int(12 * f) for f in fs]

    demo = {
        "source": "dyck",
        "model": "gru",
        "steps": 300,
        "eval_every": 100,
        "ks": [1, 2, 4],
        "num_docs": 100,
        "learned_steps": 80,
        "learned_docs": 384,
    }
    train = {**on(F(1)), "model": "gru", "steps": 200, "eval_every": 100}
    boosts = [
        {"run": "boost", "k": k, "distinguisher": d, "num_docs": 256}
        for k, d in ((2, "check"), (2, "optimal"), (4, "optimal"))
    ]
    search = {**on(F(2, 3)), "eps": 0.3, "k": 2, "family": "gru", "steps": 120, "max_sizes": 3, "num_docs": 100}
    rnn = {
        **(user.at(F(1)) if user else {"source": "dyck", "source_params": dict(DYCK)}),
        "model": "paper_rnn",
        "width": 4,
        "steps": 300,
        "eval_every": 100,
        "lr": 5e-3,
    }
    bits = {"run": "bits", "int_bits": 3, "frac_bits": [1, 2, 3, 4, 6, 8, 12], "k": 2, "num_docs": 100}
    barrier = {
        "sampling_digits": [2, 4, 6, 8, 10, 12, 14, 16],
        "sampling_budget_s": 40.0,
        "prime_digits": [2, 3, 4, 5, 6],
        "prime_budget_s": 8.0,
        "learn_digits": [1, 2],
        "hidden": 32,
        "steps": 400,
        "seed_bits": 10,  # 1024 hidden seeds: the visible TV enumerates seeds × documents
        "eval_samples": 400,
    }
    return {
        "name": "reproduce-quick" + (f"-{user.name}" if user else ""),
        "retries": 1,
        "part": [  # the longest cell first, so it runs beside the others
            {"name": "barrier", "run": "barrier", "base": barrier, "grid": {"seed": [0]}},
            {
                "name": "sizes",
                "run": "demo",
                "base": demo | on(F(1)),
                "grid": {"sizes": [[2], [4], [8], [16]], "seed": [0, 1]},
            },
            {
                "name": "lengths",
                "run": "demo",
                "base": demo | (user.at(F(1)) if user else {"source_params": dict(DYCK)}) | {"sizes": [8]},
                "grid": {"source_params.length": lengths(F(2, 3), F(1), F(4, 3), F(5, 3)), "seed": [0, 1]},
            },
            {
                "name": "lemma1",
                "run": "pipeline",
                "base": {"train": train, "then": boosts_for(boosts, user)},
                "grid": {"train.width": [2, 8], "train.seed": [0]},
            },
            {"name": "lemma4", "run": "search", "base": search, "grid": {"seed": list(range(6))}},
            {
                "name": "theorem2",
                "run": "pipeline",
                "base": {"train": rnn, "then": [bits]},
                "grid": {"train.source_params.length": lengths(F(2, 3), F(1), F(4, 3))},
            },
            {
                "name": "algorithm2",
                "run": "search",
                "base": search | {"family": "paper_rnn", "bits": True},
                "grid": {"seed": [0, 1]},
            },
        ],
    }


def boosts_for(boosts: list[dict], user: UserSource | None) -> list[dict]:
    """The boosting follow-ups a source can take: the checker's only where the source has a checker."""
    if user is None:
        return boosts
    from nextk.sources import make_source

    has_check = bool(getattr(make_source(user.name, **user.params), "checks", None))
    return [b for b in boosts if has_check or b["distinguisher"] != "check"]


def full_spec(source: str | None = None, source_params: dict | None = None) -> dict:
    """For a cluster: Dyck and HMM sources (or a user's source), GRU and LSTM widths 2–64, five seeds, k up to 8,
    the full barrier."""
    user = own(source, source_params, "full")
    demo = {
        "model": "gru",
        "steps": 2000,
        "eval_every": 200,
        "ks": [1, 2, 4, 8],
        "num_docs": 400,
        "learned_steps": 400,
        "learned_docs": 2048,
    }
    dyck = user.at(F(1)) if user else {"source": "dyck", "source_params": {"n_types": 2, "max_depth": 4, "length": 24}}
    hmm = {"source": "hmm", "source_params": {"n_states": 8, "vocab_size": 4, "length": 32}}
    train = {**dyck, "model": "gru", "steps": 1000, "eval_every": 200}
    boosts = [
        {"run": "boost", "k": k, "distinguisher": d, "num_docs": 1024}
        for k in (2, 4)
        for d in ("check", "learned", "optimal")
    ]
    search = {
        **(
            user.at(F(2, 3))
            if user
            else {"source": "dyck", "source_params": {"n_types": 1, "max_depth": 4, "length": 16}}
        ),
        "eps": 0.2,
        "k": 2,
        "family": "gru",
        "steps": 600,
        "max_sizes": 6,
        "num_docs": 400,
    }
    rnn = {
        **(user.at(F(1)) if user else {"source": "dyck", "source_params": {"n_types": 1, "max_depth": 4}}),
        "model": "paper_rnn",
        "width": 8,
        "steps": 1500,
        "eval_every": 250,
        "lr": 5e-3,
    }
    bits = {"run": "bits", "int_bits": 3, "frac_bits": [1, 2, 3, 4, 5, 6, 8, 10, 12, 16], "k": 2, "num_docs": 400}
    seeds = list(range(5))
    lengths = user.grid(*SCALES["full"][0]) if user else [8, 16, 24, 32, 48]
    rnn_lengths = user.grid(F(1, 3), F(2, 3), F(1), F(4, 3)) if user else [8, 16, 24, 32]
    sizes_hmm = {
        "name": "sizes-hmm",
        "run": "demo",
        "base": demo | {"ks": [1, 2, 4]} | hmm,
        "grid": {"sizes": [[2], [4], [8], [16], [32], [64]], "seed": seeds},
    }
    return {
        "name": "reproduce-full" + (f"-{user.name}" if user else ""),
        "retries": 2,
        "part": [
            {"name": "barrier", "run": "barrier", "base": {"hard_digits": [3]}, "grid": {"seed": [0]}},
            {
                "name": "sizes",
                "run": "demo",
                "base": demo,
                "grid": {
                    "source": [dyck["source"]],
                    "source_params": [dyck["source_params"]],
                    "model": ["gru", "lstm"],
                    "sizes": [[2], [4], [8], [16], [32], [64]],
                    "seed": seeds,
                },
            },
            *([] if user else [sizes_hmm]),  # a user's source stands in for both Dyck and the HMM
            {
                "name": "lengths",
                "run": "demo",
                "base": demo
                | {"sizes": [32]}
                | (user.at(F(1)) if user else {"source": "dyck", "source_params": {"n_types": 2, "max_depth": 4}}),
                "grid": {"source_params.length": lengths, "seed": seeds},
            },
            {
                "name": "lemma1",
                "run": "pipeline",
                "base": {"train": train, "then": boosts_for(boosts, user)},
                "grid": {"train.width": [2, 8, 32], "train.seed": [0, 1, 2]},
            },
            {"name": "lemma4", "run": "search", "base": search, "grid": {"seed": list(range(40))}},
            {  # Lemma 4's premise met: j₀ from 1..N (N = 64 at ε = 1), so its verdict can hold or be violated
                "name": "lemma4-premise",
                "run": "search",
                "base": search | {"eps": 1.0, "max_start": premise_start(search | {"eps": 1.0}), "measure": False},
                "grid": {"seed": list(range(40))},
            },
            {
                "name": "theorem2",
                "run": "pipeline",
                "base": {"train": rnn, "then": [bits]},
                "grid": {"train.source_params.length": rnn_lengths, "train.seed": [0, 1, 2]},
            },
            {
                "name": "algorithm2",
                "run": "search",
                "base": search | {"family": "paper_rnn", "bits": True},
                "grid": {"seed": list(range(10))},
            },
        ],
    }


def premise_start(search: dict) -> int:
    """Lemma 4's N = ⌈10 log V/δ⌉ for a search config: j₀ drawn from 1..N meets the lemma's premise."""
    from nextk.bounds import search_max_start
    from nextk.sources import make_source

    src = make_source(search["source"], **search["source_params"])
    return search_max_start(search["eps"], search["k"], src.length, src.vocab_size)


SPECS = {"quick": quick_spec, "full": full_spec}  # budget → spec(source=None, source_params=None)
