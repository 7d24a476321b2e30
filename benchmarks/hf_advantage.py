"""Advantage estimation on a Hugging Face causal LM (paired Monte Carlo, every start of every document):
windows judged per second by `nextk.models.hf.paired_advantages` against the loop a user would write
with `transformers`, and the model tokens/s of that estimator as a fraction of the model's raw batched
forward tokens/s in the same run.

Model: a GPT-2 built from its config (random weights, nothing downloaded): 4 layers, width 256, 4
heads, vocabulary 50,257, context 128 (≈ 16M parameters, most of them the 50,257-row head).
Documents: 16 of n = 64 random tokens, k = 4, so m = 61 starts and 976 windows; the distinguisher is
"the window's token sum is even" (cheap, so the model's work is what is timed).

- nextk: `paired_advantages`: per batch of documents one teacher-forced pass along the prefixes, then
  k − 1 forwards that read the latest token of every start's window at once (branched decoding with a
  4-D attention mask), judged in one call per batch. Model tokens per document: m·k.
- Baseline, the plain transformers loop: per document one forward with `use_cache=True`; per start i
  the cache cut to its first i + 1 slots (a copy of the tensors), the window's first token drawn from
  the logits at slot i, then k − 1 single-token forwards reusing past_key_values; true and sampled
  windows judged in one call per document. Timed on 4 documents (its rate does not depend on how many).
- Limit: model tokens/s of nextk (m·k per document) ÷ `model(input_ids)` tokens/s on a (16, 64) batch
  and on a (976, 4) batch, the better of the two.

Run: .venv/bin/python benchmarks/hf_advantage.py      (BENCH_SMALL=1 or --small: a quick check)
     .venv/bin/python benchmarks/hf_advantage.py --device cuda --model gpt2   (a GPU and a real model)
"""

import sys
from pathlib import Path

import torch
from common import best_of, fmt, setup, size

from nextk.distinguishers.checks import clip
from nextk.distinguishers.text import window_tokens
from nextk.stats import mean_estimate

HEADER = (
    "| advantage on an HF model, paired | nextk | plain transformers loop | ratio | model tok/s ÷ raw forward tok/s "
    "| estimates |\n|---|---|---|---|---|---|"
)


def even_sum(x, start, k):
    """1 iff the window's token ids sum to an even number (reads the window only)."""
    x, starts = clip(x, start, k)
    return window_tokens(x, starts, k).sum(1) % 2 == 0


def option(name: str, default=None):
    """`--name value` from the command line."""
    flag = f"--{name}"
    return sys.argv[sys.argv.index(flag) + 1] if flag in sys.argv[:-1] else default


def build(layers: int, width: int, vocab: int, context: int, device: str = "cpu", folder_only: bool = False):
    """A randomly initialised GPT-2 saved and loaded back through HuggingFace.from_pretrained (or its folder,
    saved with a tokenizer: a byte-level BPE trained on nextk's tales, padded with unused tokens to `vocab`)."""
    import tempfile

    from transformers import AutoModelForCausalLM, GPT2Config

    from nextk.models.hf import HuggingFace

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        cfg = GPT2Config(
            n_layer=layers,
            n_embd=width,
            n_head=4,
            vocab_size=vocab,
            n_positions=context,
            bos_token_id=0,
            eos_token_id=0,
        )
        model = AutoModelForCausalLM.from_config(cfg)
    folder = tempfile.mkdtemp(prefix="nextk-bench-gpt2-")
    model.save_pretrained(folder)
    if folder_only:
        tokenizer()(vocab).save_pretrained(folder)
        return folder
    return HuggingFace.from_pretrained(folder, device=device)


def tokenizer():
    """A function vocab → a BPE trained on nextk's tales (tests/hf_tools.py), padded to `vocab` tokens."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.hf_tools import trained_tokenizer

    def make(vocab: int):
        tok = trained_tokenizer(min(vocab, 1000))
        tok.add_tokens([f"<|unused{i}|>" for i in range(vocab - len(tok))], special_tokens=True)
        return tok

    return make


def eval_vs_forward(folder: str, ks: str, num_docs: int, length: int, repeats: int) -> dict:
    """Wall time of `nextk eval hf:FOLDER` (a fresh process, default text and options but --k, --num-docs,
    --doc-length and --no-learned: the learned distinguisher's fit trains its own GRU, not model forwards)
    against the time of the model forward passes it needs: the same run in this process with hooks on the
    network that time every forward and count its tokens, and those tokens at the raw forward rate."""
    import subprocess
    import time

    from nextk.models.hf import HuggingFace
    from nextk.runs.eval import Config, run_text

    args = ["--k", ks, "--num-docs", str(num_docs), "--doc-length", str(length), "--no-learned"]
    nextk = str(Path(sys.executable).with_name("nextk"))
    t0 = time.perf_counter()
    out = subprocess.run([nextk, "eval", f"hf:{folder}", *args, "--json"], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise RuntimeError(f"nextk eval failed: {out.stdout[-1500:]}{out.stderr[-1500:]}")
    spent = {"forward_s": 0.0, "tokens": 0, "calls": 0}
    original = HuggingFace.from_pretrained.__func__

    def hooked(cls, *a, **kw):
        q = original(cls, *a, **kw)
        spent["model"] = q

        def before(module, args, kwargs):
            ids = kwargs.get("input_ids", args[0] if args else None)
            spent["tokens"] += ids.numel()
            spent["calls"] += 1
            spent["t0"] = time.perf_counter()

        def after(module, args, output):
            spent["forward_s"] += time.perf_counter() - spent["t0"]

        spent["hooks"] = [q.hf.register_forward_pre_hook(before, with_kwargs=True), q.hf.register_forward_hook(after)]
        return q

    HuggingFace.from_pretrained = classmethod(hooked)
    try:
        t0 = time.perf_counter()
        ks_ = [int(k) for k in ks.split(",")]
        run_text(Config(checkpoint=f"hf:{folder}", ks=ks_, num_docs=num_docs, length=length, learned=False))
        inside = time.perf_counter() - t0
    finally:
        HuggingFace.from_pretrained = classmethod(original)
    for hook in spent.get("hooks", []):  # the raw forward below is not the run's
        hook.remove()
    q = spent["model"]
    raw = raw_forward(q.hf, q.vocab_size, max(1, 2**14 // length), length, repeats)
    at_raw = spent["tokens"] / raw
    print(
        f"| `nextk eval hf:` {q.num_parameters / 1e6:.1f}M-parameter GPT-2, {' '.join(args)} | wall {wall:.1f} s "
        f"(in-process run {inside:.1f} s) | model forwards {spent['forward_s']:.1f} s ({spent['calls']:,} calls, "
        f"{spent['tokens']:,} tokens; {at_raw:.1f} s at the raw rate {fmt(raw)} tok/s) "
        f"| wall ÷ forwards **{wall / spent['forward_s']:.1f}×** (target ≤ 3×), ÷ raw-rate forwards "
        f"{wall / at_raw:.1f}× |"
    )
    return {"eval_wall_s": wall, "eval_run_s": inside, "forward_s": spent["forward_s"], "forward_at_raw_s": at_raw}


@torch.no_grad()
def plain_loop(hf, bos: int, d, x: torch.Tensor, k: int, seed: int):
    """The baseline a transformers user writes: one cached forward per document, the cache cut per start,
    k − 1 single-token steps per window."""
    from transformers import DynamicCache

    from nextk.models.hf import cache_kwarg, out_cache

    dev = next(hf.parameters()).device
    g = torch.Generator(device=dev).manual_seed(seed)
    x = x.to(dev)
    n = x.shape[1]
    m = n - k + 1
    per = []
    for doc in x:
        ids = torch.cat([torch.tensor([bos], device=dev), doc[: m - 1]])[None]
        out = hf(input_ids=ids, use_cache=True)
        layers = [(layer.keys, layer.values) for layer in out_cache(out).layers]
        fake = doc.repeat(m, 1)
        for i in range(m):
            cache = DynamicCache([(kk[:, :, : i + 1].clone(), vv[:, :, : i + 1].clone()) for kk, vv in layers])
            probs = torch.softmax(out.logits[0, i].double(), -1)
            tok = torch.multinomial(probs, 1, generator=g)
            fake[i, i] = tok[0]
            for j in range(1, k):
                res = hf(
                    input_ids=tok[None],
                    **{cache_kwarg(hf): cache},
                    position_ids=torch.tensor([[i + j]], device=dev),
                    use_cache=True,
                )
                cache = out_cache(res)
                tok = torch.multinomial(torch.softmax(res.logits[0, -1].double(), -1), 1, generator=g)
                fake[i, i + j] = tok[0]
        starts = torch.arange(m, device=dev)
        per.append((d(doc.repeat(m, 1), starts, k).double() - d(fake, starts, k).double()).mean().cpu())
    return mean_estimate(torch.stack(per), "plain transformers loop")


@torch.no_grad()
def raw_forward(hf, vocab: int, batch: int, length: int, repeats: int) -> float:
    dev = next(hf.parameters()).device
    x = torch.randint(0, vocab, (batch, length), generator=torch.Generator().manual_seed(0)).to(dev)

    def forward():
        out = hf(input_ids=x, use_cache=False).logits
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        return out

    t, _ = best_of({"f": forward}, repeats, rounds=1)["f"]
    return batch * length / t


def main(k=None, docs=None, length=None, base_docs=None, repeats=None):
    setup()
    from nextk.models.hf import paired_advantages

    k, docs, length = k or size(4, 2), docs or size(16, 4), length or size(64, 16)
    base_docs, repeats = base_docs or size(4, 2), repeats or 1
    layers, width, vocab = size(4, 2), size(256, 64), size(50257, 1000)
    device, name = option("device", "cpu"), option("model")
    if name is None:
        q = build(layers, width, vocab, max(128, length), device)
        label = f"GPT-2 {layers}×{width}, V={vocab:,}"
    else:
        from nextk.models.hf import HuggingFace

        q = HuggingFace.from_pretrained(name, device=device)
        vocab, label = q.vocab_size, f"{q.name}, V={q.vocab_size:,}"
    x = torch.randint(1, vocab, (docs, length), generator=torch.Generator().manual_seed(1))
    d = even_sum
    m = length - k + 1
    fast = lambda: paired_advantages({"d": d}, q, x, k, seed=0)["d"]  # noqa: E731
    loop = lambda: plain_loop(q.hf, q.bos_token_id, d, x[:base_docs], k, 0)  # noqa: E731
    t = best_of({"nextk": fast, "loop": loop}, repeats, warmup=False)
    w_fast, w_loop = docs * m / t["nextk"][0], base_docs * m / t["loop"][0]
    tokens = docs * m * k  # m prefix positions + m·(k − 1) window tokens per document
    rate = tokens / t["nextk"][0]
    raw = max(raw_forward(q.hf, vocab, docs, length, repeats), raw_forward(q.hf, vocab, docs * m, k, repeats))
    frac = rate / raw
    r = w_fast / w_loop
    print(
        f"| {label} ({q.num_parameters / 1e6:.1f}M params, {device}), n={length}, k={k}, "
        f"{docs} docs, {docs * m:,} windows | {fmt(w_fast)} windows/s | {fmt(w_loop)} windows/s | **{r:.1f}×** "
        f"| {fmt(rate)} ÷ {fmt(raw)} = **{frac:.2f}** | {t['nextk'][1].value:+.3f} vs {t['loop'][1].value:+.3f} |"
    )
    print(
        f"  {k} model tokens per window ({m} prefix positions + {m * (k - 1)} window tokens per document); "
        f"raw forward = best of `model(input_ids)` on ({docs}, {length}) and ({docs * m}, {k}); at the raw rate the "
        f"limit is {fmt(raw / k)} windows/s; baseline timed on {base_docs} documents; {device}, "
        f"{torch.get_num_threads()} CPU threads"
    )
    result = {"ratio": r, "fraction": frac, "windows_per_s": w_fast, "raw_tokens_per_s": raw}
    if name is None and device == "cpu":  # the command itself on the same model, with a tokenizer
        folder = build(layers, width, vocab, max(128, length), folder_only=True)
        result |= eval_vs_forward(folder, size("1,2,4,8", "1,2"), size(64, 8), size(64, 16), repeats)
    return result


if __name__ == "__main__":
    print(HEADER)
    main()
