"""Exact HMM log-probability of many strings: nextk's batched forward (`HMM.log_prob`) against
hmmlearn scoring all strings in ONE call (`score(X, lengths=[T] * N)`, the faster of its two
implementations) and against a plain batched NumPy forward written here, with nextk's achieved
GFLOP/s as a fraction of the machine's float64 matmul throughput for the same (N, S) @ (S, S) product.

Same HMM (16 states, 16 symbols), 1,000 strings of length 256, all timed in one run.
Run: .venv/bin/python benchmarks/hmm_throughput.py      (BENCH_SMALL=1 or --small: a quick check)
"""

import numpy as np
import torch
from common import best_of, fmt, setup, size

from nextk.sources import HMM

HEADER = (
    "| HMM log-prob | nextk | hmmlearn `score(X, lengths)` | ratio | NumPy batched forward | ratio "
    "| nextk GFLOP/s ÷ same-shape matmul GFLOP/s | check |\n|---|---|---|---|---|---|---|---|"
)


def numpy_forward(start: np.ndarray, trans: np.ndarray, emit: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Scaled forward algorithm over all N strings at once: α (N, S) @ trans per token, times the emission
    column of each string's token, normalised every step; log p = Σ_t log c_t. float64 (N,)."""
    n, t_len = x.shape
    emit_t = np.ascontiguousarray(emit.T)  # (V, S)
    xt = np.ascontiguousarray(x.T)  # (T, N): one contiguous row of tokens per step
    alpha = np.broadcast_to(start, (n, len(start))).copy()
    joint = np.empty_like(alpha)
    scale = np.empty((t_len, n))
    for t in range(t_len):
        np.multiply(alpha, emit_t[xt[t]], out=joint)
        c = joint.sum(1)
        scale[t] = c
        joint /= c[:, None]
        np.matmul(joint, trans, out=alpha)
    return np.log(scale).sum(0)


def forward_flops(n_states: int) -> int:
    """Floating-point operations per token of the scaled forward: α @ trans (S² multiply-adds = 2S²),
    the emission product (S), the normaliser's sum (S) and the division (S); the one log per token is
    not counted."""
    return 2 * n_states * n_states + 3 * n_states


def machine_limits(num: int, n_states: int, length: int, repeats: int) -> dict:
    """float64 throughput measured now: the forward's own matmul shape (N, S) @ (S, S), called `length`
    times in a loop as a stepwise forward must (cache-resident: α is N·S·8 bytes); the large-matmul
    peak; and memory bandwidth (a large copy), for reference."""
    g = torch.Generator().manual_seed(0)
    a = torch.rand(num, n_states, dtype=torch.float64, generator=g)
    b = torch.rand(n_states, n_states, dtype=torch.float64, generator=g)
    c = torch.empty_like(a)

    def loop():
        for _ in range(length):
            torch.mm(a, b, out=c)

    big = size(1024, 256)
    p = torch.rand(big, big, dtype=torch.float64, generator=g)
    r = torch.empty_like(p)
    src = torch.rand(size(1 << 25, 1 << 20), dtype=torch.float64, generator=g)  # 256 MiB (small: 8 MiB)
    dst = torch.empty_like(src)
    t = best_of({"shape": loop, "peak": lambda: torch.mm(p, p, out=r), "copy": lambda: dst.copy_(src)}, repeats)
    return {
        "matmul_gflops": 2 * num * n_states**2 * length / t["shape"][0] / 1e9,
        "peak_gflops": 2 * big**3 / t["peak"][0] / 1e9,
        "bandwidth_gbs": 2 * src.numel() * 8 / t["copy"][0] / 1e9,
    }


def main(n_states=16, vocab=16, num=None, length=None, repeats=None):
    setup()
    num, length, repeats = num or size(1000, 50), length or size(256, 32), repeats or size(3, 2)
    src = HMM.random(n_states, vocab, length, seed=0)
    x = src.sample(num, generator=0)
    from hmmlearn.hmm import CategoricalHMM

    refs = {}
    for impl in ("scaling", "log"):  # hmmlearn's two forward implementations; the faster one is the baseline
        ref = CategoricalHMM(n_components=n_states, init_params="", params="", implementation=impl)
        ref.startprob_, ref.transmat_, ref.emissionprob_ = src.start_p.numpy(), src.trans.numpy(), src.emit.numpy()
        ref.n_features = vocab
        refs[impl] = ref
    flat, lengths = x.numpy().reshape(-1, 1), np.full(num, length)
    sp, tr, em, xs = src.start_p.numpy(), src.trans.numpy(), src.emit.numpy(), x.numpy()
    t = best_of(
        {
            "nextk": lambda: src.log_prob(x),
            "scaling": lambda: refs["scaling"].score(flat, lengths=lengths),
            "log": lambda: refs["log"].score(flat, lengths=lengths),
            "numpy": lambda: numpy_forward(sp, tr, em, xs),
        },
        repeats,
    )
    lim = machine_limits(num, n_states, length, repeats)
    impl = min(("scaling", "log"), key=lambda i: t[i][0])
    tokens = num * length
    ours = t["nextk"][1].numpy()
    total_err = abs(ours.sum() - t[impl][1])
    np_err = np.abs(ours - t["numpy"][1]).max()
    gflops = tokens * forward_flops(n_states) / t["nextk"][0] / 1e9
    frac = gflops / lim["matmul_gflops"]
    r_ref, r_np = t[impl][0] / t["nextk"][0], t["numpy"][0] / t["nextk"][0]
    print(
        f"| {n_states} states, {vocab} symbols, {num:,} × {length} | {fmt(tokens / t['nextk'][0])} tok/s "
        f"| {fmt(tokens / t[impl][0])} tok/s ({impl}) | **{r_ref:.1f}×** | {fmt(tokens / t['numpy'][0])} tok/s "
        f"| {r_np:.2f}× | {gflops:.3g} ÷ {lim['matmul_gflops']:.3g} = **{frac:.2f}** "
        f"| \\|Δ Σ log p\\| {total_err:.1e} vs hmmlearn, max \\|Δ log p\\| {np_err:.1e} vs NumPy |"
    )
    print(
        f"  hmmlearn scaling {fmt(tokens / t['scaling'][0])} tok/s, log {fmt(tokens / t['log'][0])} tok/s; "
        f"{forward_flops(n_states)} flop/token; large-matmul peak {lim['peak_gflops']:.1f} GFLOP/s "
        f"(nextk at {gflops / lim['peak_gflops']:.3f} of it); copy bandwidth {lim['bandwidth_gbs']:.1f} GB/s "
        f"(not binding: α is {num * n_states * 8 / 1024:,.0f} KiB, cache-resident)"
    )
    return {"ratio_hmmlearn": r_ref, "ratio_numpy": r_np, "fraction": frac, "gflops": gflops, **lim}


if __name__ == "__main__":
    print(HEADER)
    main()
