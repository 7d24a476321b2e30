"""Hugging Face causal LMs (nextk.models.hf), real text (nextk.sources.corpus), text distinguishers
(nextk.distinguishers.text), SMC boosting (nextk.smc) and `nextk eval hf:…` (issue 11).

Every model is built offline from a tiny config, saved with save_pretrained and loaded back through
`HuggingFace.from_pretrained` (the real loading path); the tokenizer is a BPE trained with `tokenizers`
on the text nextk ships. References are independent of the adapter: a plain transformers forward, and
brute-force enumeration over Σ^n (tests/references.py) fed by that forward.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
import warnings

import pytest
import torch

transformers = pytest.importorskip("transformers")

from nextk.advantage import advantage, tv_advantage, window_log_probs  # noqa: E402
from nextk.boost import Boosted  # noqa: E402
from nextk.distinguishers import LearnedDistinguisher  # noqa: E402
from nextk.distinguishers.text import (  # noqa: E402
    BUILTIN,
    NgramRepeat,
    PrefixCopy,
    RareTokens,
    SeenInPrefix,
    resolve,
    validate,
)
from nextk.errors import CheckpointError, InputError, NotExactError  # noqa: E402
from nextk.lm import LanguageModel, State, states_along  # noqa: E402
from nextk.measure import all_strings  # noqa: E402
from nextk.models.hf import HuggingFace, paired_advantages  # noqa: E402
from nextk.smc import block_log_z, smc_gain, smc_sample  # noqa: E402
from nextk.sources import HMM, Corpus  # noqa: E402
from tests import hf_tools  # noqa: E402
from tests import references as ref  # noqa: E402
from tests.cli_tools import cli, cli_json  # noqa: E402
from tests.test_advantage import RandomD  # noqa: E402

N = 6
TRUTH = HMM.random(2, 3, N, seed=4, stay=0.7)  # V = 3


class PlainForward:
    """The reference for a saved model: transformers' own forward on [start, x_0, …, x_{n−2}], read
    as whole-string log-probabilities (nothing of the adapter but the folder)."""

    def __init__(self, folder, bos: int):
        from transformers import AutoModelForCausalLM

        self.model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
        self.bos = bos

    @torch.no_grad()
    def log_probs(self, x):
        inputs = torch.cat([torch.full_like(x[:, :1], self.bos), x[:, :-1]], 1)
        return torch.log_softmax(self.model(input_ids=inputs).logits.double(), -1)

    def log_prob(self, x):
        return self.log_probs(x).gather(-1, x.unsqueeze(-1)).squeeze(-1).sum(1)


@pytest.fixture(scope="module", params=["gpt2", "llama"])
def tiny(request):
    """(adapter, plain-forward reference) for a V = 3 model of each architecture."""
    model = hf_tools.tiny_model(request.param, 3)
    return model, PlainForward(hf_tools.cached_folder(request.param, 3), model.bos_token_id)


@pytest.fixture(scope="module")
def with_tokenizer(tmp_path_factory):
    """A GPT-2 of vocabulary 300 saved with a BPE tokenizer trained on nextk's tales."""
    folder = tmp_path_factory.mktemp("gpt2-300")
    hf_tools.save_tiny(folder, "gpt2", 300, context=32, tokenizer=hf_tools.trained_tokenizer(300))
    return folder


# ---- the adapter -----------------------------------------------------------------------------------------


def test_import_nextk_does_not_import_transformers():
    code = "import sys, nextk, nextk.models, nextk.sources, nextk.cli, nextk.smc; print('transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_loaded_model_scores_as_transformers_does(tiny):
    model, plain = tiny
    assert isinstance(model, LanguageModel) and model.exact and model.length is None
    assert model.vocab_size == 3 and model.context == 16 and model.bos_token_id == 2  # the config's BOS
    x = TRUTH.sample(5, generator=0)
    assert torch.allclose(model.log_probs(x), plain.log_probs(x), atol=1e-6, rtol=0)
    assert torch.allclose(model.log_prob(x), plain.log_prob(x), atol=1e-5, rtol=0)
    assert model.logits(x).shape == (5, N, 3) and model.logits(x).requires_grad  # for fine-tuning


def test_no_deprecation_warning_from_transformers(tiny):
    """transformers ≥ 5.2x deprecates `past_key_values` (removed in 5.40): as a FutureWarning for the argument
    and a logged warning for the output's attribute. Both are errors here, so the adapter must use `cache`."""
    import logging

    from transformers.utils import logging as hf_logging

    model, _ = tiny
    records = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append
    hf_logging.get_logger("transformers").addHandler(handler)
    hf_logging.warning_once.cache_clear()  # a warning already given once in this session must show again
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", FutureWarning)  # transformers' deprecations are FutureWarnings
            state = model.start(2)
            model.step(state, torch.tensor([0, 1]))
            model.sample(2, 3, generator=0)
            model.branch_windows(torch.tensor([[0, 1, 2, 1]]), [1, 3], 2, num=2, generator=0)
            HuggingFace(model.hf, None)  # the probe forward
    finally:
        hf_logging.get_logger("transformers").removeHandler(handler)
    assert not [r.getMessage() for r in records if "deprecat" in r.getMessage().lower()]


def test_padded_cache_rows_step_as_alone(tiny):
    """Rows read to positions 0, 3 and 7 concatenated (their caches right-padded with zeros by
    State.cat), then stepped twice together: each equals the full forward at its own position."""
    model, plain = tiny
    x = torch.randint(0, 3, (3, 10), generator=torch.Generator().manual_seed(1))
    states = states_along(model, x[:, :9])
    mixed = State.cat([states[0][0], states[3][1], states[7][2]])
    assert mixed.tensors["kv"].shape[4] == 8 and mixed.tensors["kv"][0, :, :, :, 1:].abs().max() == 0
    full = plain.log_probs(x)
    pos = torch.tensor([0, 3, 7])
    for _ in range(2):
        tok = x[torch.arange(3), pos]
        mixed, lp = model.step(mixed, tok)
        pos = pos + 1
        assert torch.allclose(lp, full[torch.arange(3), pos], atol=2e-6, rtol=0)


def test_sample_and_branch_windows_follow_the_model(tiny):
    """Samples and branched windows against q's exact window law (chi-square), and branch_windows'
    log-probabilities against the plain forward."""
    model, plain = tiny
    x = model.sample(4000, 3, generator=0)
    probs = dict(zip(map(tuple, all_strings(3, 3).tolist()), plain.log_prob(all_strings(3, 3)).exp().tolist()))
    assert ref.chi_square_pvalue(x, probs) > 1e-3
    prefix = torch.tensor([[0, 2, 1, 1, 0]])
    w, lw = model.branch_windows(prefix, [1, 4], 2, num=3000, generator=1, return_log_probs=True)
    for j, i in enumerate([1, 4]):
        full = torch.cat([prefix[:, :i].expand(3000, -1), w[0, j]], 1)
        assert torch.allclose(lw[0, j], plain.log_probs(full)[:, i:].gather(-1, w[0, j, :, :, None]).sum((1, 2)))
        cond = window_log_probs(model, states_along(model, prefix[:, :i])[-1], 2).exp()[0]
        wins = dict(zip(map(tuple, all_strings(3, 2).tolist()), cond.tolist()))
        assert ref.chi_square_pvalue(w[0, j], wins) > 1e-3


def test_windows_sampled_through_the_adapter_follow_the_exact_window_law(tiny):
    """sample_windows on the adapter (its own sampler, sample_next) against q's exact window law from the plain
    forward, after a prefix: chi-square over the 27 windows of 3 tokens."""
    from nextk.advantage import sample_windows

    model, plain = tiny
    prefix = torch.tensor([1, 0, 2])
    state = states_along(model, prefix[None].expand(6000, -1))[-1]
    w = sample_windows(model, state, 3, torch.Generator().manual_seed(4))
    assert w.device.type == "cpu" and w.shape == (6000, 3)
    wins = all_strings(3, 3)
    full = torch.cat([prefix.expand(len(wins), -1), wins], 1)
    law = plain.log_probs(full)[:, 3:].gather(-1, wins[..., None]).sum((1, 2)).exp()
    assert ref.chi_square_pvalue(w, dict(zip(map(tuple, wins.tolist()), law.tolist()))) > 1e-3


@pytest.mark.parametrize("v", [3, 300, 1000])
def test_two_level_sampler_draws_the_softmax(v):
    """categorical (blocks of 256 tokens, then a token inside the block) against softmax(logits), with
    zero-probability tokens (never drawn) and a vocabulary that is not a whole number of blocks."""
    from nextk.models.hf import categorical

    logits = torch.randn(2, v, generator=torch.Generator().manual_seed(v)) * 2
    logits[0, 1] = logits[1, v - 1] = -float("inf")
    x = categorical(logits, torch.Generator().manual_seed(1), 60_000)
    for r in range(2):
        probs = torch.softmax(logits[r].double(), -1)
        draws = x[r].unsqueeze(1)
        assert probs[x[r]].min() > 0
        assert ref.chi_square_pvalue(draws, {(i,): probs[i].item() for i in range(v) if probs[i] > 0}) > 1e-3


def test_advantage_tv_and_boost_equal_enumeration(tiny):
    """The estimators run unchanged on the adapter and equal brute force fed by the plain forward."""
    model, plain = tiny
    d, k = RandomD(3), 2
    a = advantage(d, TRUTH, model, k, estimator="exact").value
    assert abs(a - ref.advantage_exact(TRUTH, plain, d, k, 3, N)) < 1e-6
    assert abs(tv_advantage(TRUTH, model, k, estimator="exact").value - ref.tv_exact(TRUTH, plain, k, 3, N)) < 1e-6
    est = paired_advantages({"d": d}, model, TRUTH.sample(400, generator=2), k, seed=3)["d"]
    assert abs(est.value - a) <= 4 * est.stderr
    b = Boosted(model, d, k, offset=1, eta=1.2, length=4)
    expected = ref.boosted_probs(plain, d, k, 1, 1.2, 3, 4)
    xs = all_strings(3, 4)
    got = b.log_prob(xs).exp()
    assert max(abs(got[i].item() - expected[tuple(x)]) for i, x in enumerate(xs.tolist())) < 1e-6


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_estimators_with_the_model_on_cuda(with_tokenizer, tmp_path):
    """The model on the GPU, documents, windows and distinguishers on the CPU: every estimator runs and
    agrees with the same model on the CPU (exact ones to rounding, sampled ones within their intervals)."""
    folder = hf_tools.cached_folder("gpt2", 3)
    cpu, gpu = HuggingFace.from_pretrained(folder), HuggingFace.from_pretrained(folder, device="cuda")
    assert gpu.device.type == "cuda"
    d, k = RandomD(3), 2
    for estimator in ("exact", "rao_blackwell"):
        a_cpu = advantage(d, TRUTH, cpu, k, estimator=estimator, num_docs=64, seed=1).value
        assert abs(advantage(d, TRUTH, gpu, k, estimator=estimator, num_docs=64, seed=1).value - a_cpu) < 1e-5
    a_cpu, a_gpu = (advantage(d, TRUTH, q, k, estimator="paired", num_docs=400, seed=2) for q in (cpu, gpu))
    assert abs(a_cpu.value - a_gpu.value) <= 4 * (a_cpu.stderr**2 + a_gpu.stderr**2) ** 0.5
    learned = LearnedDistinguisher(3, hidden=8, steps=10, seed=0).fit(TRUTH, gpu, k, num_docs=32)
    assert advantage(learned, TRUTH, gpu, k, estimator="paired", num_docs=32, seed=3).n == 32
    fast = "--num-docs 16 --learned-steps 5 --learned-docs 16 --doc-length 12 --k 1,2"
    res = cli_json(f"eval hf:{with_tokenizer} {fast} --device cuda --out {tmp_path / 'run'}")
    assert res["device"].startswith("cuda") and res["loss"]["n"] == 16


def test_learned_distinguisher_at_v1000_finds_nothing_in_the_model_itself(tmp_path):
    """q against its own samples (p = q at length 10): the learned distinguisher's interval covers 0."""
    q = HuggingFace.from_pretrained(hf_tools.save_tiny(tmp_path, "gpt2", 1000, context=16))
    p = q.at_length(10)
    d = LearnedDistinguisher(1000, hidden=16, steps=30, seed=0).fit(p, q, 2, num_docs=64)
    a = advantage(d, p, q, 2, num_docs=96, estimator="paired", seed=1)
    assert a.low <= 0 <= a.high, a


def test_fine_tuning_with_train(with_tokenizer):
    from nextk.train import train

    q = HuggingFace.from_pretrained(with_tokenizer)
    corpus = Corpus("builtin:tales.txt", q, 16)
    before = {k: v.clone() for k, v in q.state_dict().items()}
    res = train(q, corpus.fit, steps=4, batch_size=8, lr=1e-2, eval_every=4, eval_docs=16)
    assert res.steps == 4 and torch.isfinite(torch.tensor(res.history[-1]["eval_loss"]["value"]))
    assert any(not torch.equal(before[k], v) for k, v in q.state_dict().items())


def test_bad_models_are_named(tmp_path, with_tokenizer):
    with pytest.raises(CheckpointError, match="holds no Hugging Face model"):
        HuggingFace.from_pretrained(tmp_path)
    with pytest.raises(CheckpointError, match="does not exist"):
        HuggingFace.from_pretrained(tmp_path / "nothing")
    small = hf_tools.save_tiny(tmp_path / "small", "gpt2", 200, context=16)
    with pytest.raises(CheckpointError, match="300 tokens but the model"):
        HuggingFace.from_pretrained(small, tokenizer=with_tokenizer)
    q = HuggingFace.from_pretrained(with_tokenizer)
    assert q.bos_token_id == q.tokenizer.bos_token_id == 0  # the tokenizer's BOS
    with pytest.raises(InputError, match="context"):
        q.log_prob(torch.zeros(1, 33, dtype=torch.long))


def test_truncated_weights_and_missing_local_folders_are_named_at_once(tmp_path, monkeypatch):
    folder = hf_tools.save_tiny(tmp_path / "cut", "gpt2", 50)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        HuggingFace.from_pretrained(folder)
    r = cli(f"eval hf:{folder} --text builtin:tales.txt")
    assert r.exit_code == 2 and "truncated or corrupt" in r.output and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    t0 = time.perf_counter()
    with pytest.raises(CheckpointError, match="runs/gpt2.*does not exist"):  # one "/", but runs/ is a folder here
        HuggingFace.from_pretrained("runs/gpt2")
    r = cli("eval hf:runs/gpt2 --text builtin:tales.txt")
    assert r.exit_code == 2 and "does not exist" in r.output
    assert time.perf_counter() - t0 < 5  # checked on disk, never retried against the Hub


# ---- the corpus ------------------------------------------------------------------------------------------


def test_corpus_windows_parts_and_counts(with_tokenizer, tmp_path):
    q = HuggingFace.from_pretrained(with_tokenizer)
    texts = [f"{name} went to the mill and came back with bread." * 3 for name in ("Ada", "Bram", "Cora", "Dov")]
    path = tmp_path / "t.jsonl"
    path.write_text("\n".join(json.dumps({"text": t, "id": i}) for i, t in enumerate(texts)))
    c = Corpus(path, q, 8, stride=4, seed=1)
    ids = [q.encode(t).tolist() for t in texts]
    assert c.num_tokens == sum(map(len, ids)) and c.num_texts == 4 and c.vocab_size == 300
    assert c.num_documents == sum((len(t) - 8) // 4 + 1 for t in ids)
    windows = {tuple(w) for w in c.documents().tolist()}
    inside = {tuple(t[s : s + 8]) for t in ids for s in range(0, len(t) - 7, 4)}
    assert windows <= inside  # every document is a window of one text
    fit, measure = c.fit, c.measure
    assert fit.num_documents and measure.num_documents
    assert fit.num_documents + measure.num_documents <= c.num_documents
    cover = lambda part: {int(s) + j for s in part.starts for j in range(8)}  # noqa: E731
    assert not cover(fit) & cover(measure)  # disjoint token positions
    assert torch.equal(c.sample(20, generator=3), c.sample(20, generator=3)) and not c.exact
    with pytest.raises(NotExactError):
        c.log_prob(c.sample(2, generator=0))
    assert c.decode(c.documents(1)[0]) in "".join(texts)
    plain = tmp_path / "p.txt"
    plain.write_text("\n".join(texts) + "\n\n")
    assert Corpus(plain, q, 8, stride=4, seed=1).num_documents == c.num_documents  # one document per line


def test_corpus_bad_input(with_tokenizer, tmp_path):
    q = HuggingFace.from_pretrained(with_tokenizer)
    short = tmp_path / "short.txt"
    short.write_text("Too short.\n")
    with pytest.raises(InputError, match="tokens in all, fewer than one document of 64 tokens"):
        Corpus(short, q, 64)  # packed by default: too little text even then
    with pytest.raises(InputError, match="no text is as long as one document.*--pack"):
        Corpus(short, q, 64, pack=False)
    with pytest.raises(InputError, match="does not exist"):
        Corpus(tmp_path / "none.txt", q, 8)
    (tmp_path / "bad.jsonl").write_text('{"body": "x"}\n')
    with pytest.raises(InputError, match="no string field 'text'"):
        Corpus(tmp_path / "bad.jsonl", q, 8)


def test_corpus_takes_a_tokenizers_tokenizer():
    tok = hf_tools.trained_tokenizer(300)
    c = Corpus(["There was once a fox named Ada who lived near the mill."], tok.backend_tokenizer, 4, split=0)
    assert c.vocab_size == 300 and c.fit.num_documents == c.num_documents and c.measure.num_documents == 0


# ---- text distinguishers --------------------------------------------------------------------------------


def reference(name, x, start, k, rare=None):
    """The built-ins by their definitions, one row at a time in plain Python."""
    out = []
    for row, s in zip(x.tolist(), start.tolist()):
        pre, w = row[:s], row[s : s + k]
        if name == "repeated_bigram":
            grams = [tuple(w[i : i + 2]) for i in range(k - 1)]
            out.append(len(grams) != len(set(grams)))
        elif name == "prefix_copy":
            head = w[: min(4, k)]
            out.append(any(pre[i : i + len(head)] == head for i in range(len(pre) - len(head) + 1)))
        elif name == "seen_in_prefix":
            out.append(sum(t in pre for t in w) / k >= 0.5)
        elif name == "rare_tokens":
            out.append(sum(rare.log_freq[t].item() for t in w) / k < rare.threshold)
    return torch.tensor(out)


@pytest.mark.parametrize("k", [1, 3, 5])
def test_text_distinguishers_match_their_definitions(k):
    g = torch.Generator().manual_seed(k)
    x = torch.randint(0, 4, (300, 14), generator=g)
    start = torch.randint(0, 14 - k + 1, (300,), generator=g)
    rare = RareTokens(4).calibrate(torch.randint(0, 4, (50, 14), generator=g) ** 2 % 4, k)
    ds = {"repeated_bigram": NgramRepeat(2), "prefix_copy": PrefixCopy(4), "seen_in_prefix": SeenInPrefix(0.5)}
    for name, d in {**ds, "rare_tokens": rare}.items():
        got = validate(d, k, 4, name)(x, start, k)
        assert torch.equal(got, reference(name, x, start, k, rare)), name
        junk = x.clone()
        junk[torch.arange(14) >= (start + k)[:, None]] = 3  # nothing after the window may matter
        assert torch.equal(d(junk, start, k), got), name
    assert set(BUILTIN) >= set(ds) | {"rare_tokens"}


def test_user_distinguishers_load_and_are_checked(tmp_path, monkeypatch):
    (tmp_path / "userd.py").write_text(
        textwrap.dedent(
            """
            import torch
            from nextk.distinguishers.checks import clip
            def has_zero(x, start, k):
                x, s = clip(x, start, k)
                cols = torch.arange(x.shape[1])
                return ((x == 0) & (cols >= s[:, None])).any(1)
            def two_args(x, start):
                return x[:, 0] > 0
            def floats(x, start, k):
                return x[:, 0].float()
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    name, d = resolve("userd:has_zero", 5)
    assert validate(d, 2, 5)(torch.tensor([[1, 0, 1], [1, 1, 1]]), 1, 2).tolist() == [True, False]
    assert validate(resolve(f"{tmp_path}/userd.py:has_zero", 5)[1], 2, 5)
    with pytest.raises(InputError, match="three arguments"):
        validate(resolve("userd:two_args", 5)[1], 2, 5)
    with pytest.raises(InputError, match="BoolTensor"):
        validate(resolve("userd:floats", 5)[1], 2, 5)
    with pytest.raises(InputError, match="cannot import"):
        resolve("no_such_module_xyz:f", 5)
    with pytest.raises(InputError, match="has no"):
        resolve("userd:missing", 5)


# ---- SMC boosting against the exact trie ------------------------------------------------------------------


def test_smc_matches_the_trie():
    """log Z_s of every block within its interval of the trie's value, samples against the exact boosted
    law (chi-square), the importance-sampled gain Δ covering the exact gain under p. (GPT-2 only: the
    windows come from branch_windows, checked for both architectures above.)"""
    model = hf_tools.tiny_model("gpt2", 3)
    plain = PlainForward(hf_tools.cached_folder("gpt2", 3), model.bos_token_id)
    d = RandomD(5)
    b = Boosted(model, d, 2, offset=1, eta=1.5, length=5)
    x = TRUTH.sample(8, generator=1)[:, :5]
    lz, se, ess = block_log_z(b, x, particles=1000, seed=2)
    exact = torch.stack([b.trie(states_along(model, x[:, :s])[-1], x[:, :s])[:, 0] for s in b.block_starts], 1)
    assert ((lz - exact).abs() <= 4 * se).all() and (ess > 100).all()
    r = smc_sample(b, 1000, particles=32, seed=3)
    assert r.samples.shape == (1000, 5) and r.log_z.shape == (1000, 2) and r.method == "rejection"
    assert ref.chi_square_pvalue(r.samples, ref.boosted_probs(plain, d, 2, 1, 1.5, 3, 5)) > 1e-3
    p5 = HMM.random(2, 3, 5, seed=4, stay=0.7)
    xs = all_strings(3, 5)
    exact_gain = (p5.log_prob(xs).exp() * (b.log_prob(xs) - model.log_prob(xs))).sum().item()
    g = smc_gain(b, p5.sample(400, generator=5), particles=32, seed=6)
    assert g.low <= exact_gain <= g.high, (g, exact_gain)


def test_smc_on_a_generic_model_and_adaptive_particles():
    """Any LanguageModel (here an HMM: its state repeated N times): samples against the exact boosted law,
    log Z against the trie; SIR states its TV bound, and the biased ESS-conditioned redraw is refused."""
    q = HMM.random(3, 3, 6, seed=2, stay=0.5)
    b = Boosted(q, RandomD(5), 2, offset=0, eta=1.5, length=6)
    r = smc_sample(b, 2000, particles=64, seed=1)
    assert ref.chi_square_pvalue(r.samples, ref.boosted_probs(q, RandomD(5), 2, 0, 1.5, 3, 6)) > 1e-3
    x = q.sample(10, generator=0)
    lz, se, _ = block_log_z(b, x, particles=2000, seed=2)
    exact = torch.stack([b.trie(states_along(q, x[:, :s])[-1], x[:, :s])[:, 0] for s in b.block_starts], 1)
    assert ((lz - exact).abs() <= 4 * se).all()
    sharp = Boosted(q, RandomD(5), 2, offset=0, eta=6.0, length=6)
    r = smc_sample(sharp, 200, particles=4, method="sir", seed=1)
    assert (r.particles == 4).all() and 0.5 < r.tv_bound <= 1 and r.summary()["method"] == "sir"
    with pytest.raises(InputError, match="ess_threshold"):
        smc_sample(sharp, 200, particles=4, ess_threshold=0.9, seed=1)


# ---- nextk eval hf:… -------------------------------------------------------------------------------------


def test_eval_command_on_real_text(with_tokenizer, tmp_path, monkeypatch):
    (tmp_path / "userd2.py").write_text("def never(x, start, k):\n    return x[:, 0] < 0\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    fast = "--num-docs 24 --learned-steps 10 --learned-docs 32 --doc-length 12"
    res = cli_json(
        f"eval hf:{with_tokenizer} --k 1,3 {fast} --distinguisher repeated_bigram,prefix_copy "
        f"--distinguisher userd2:never --out {tmp_path / 'run'}"
    )
    assert res["kind"] == "text" and res["loss"]["n"] == 24 and res["loss"]["low"] < res["loss"]["value"]
    assert res["text"]["measure_documents"] > 0 and res["text"]["tokens"] > 10_000
    assert [w["k"] for w in res["windows"]] == [1, 3]
    w = res["windows"][1]
    assert set(w["distinguishers"]) == {"repeated_bigram", "prefix_copy", "userd2:never"}
    never = w["distinguishers"]["userd2:never"]
    assert never["value"] == 0 and never["n"] == 24 and "paired" in never["method"]
    assert "learned" in w and "train_accuracy" in w["learned"]
    assert (tmp_path / "run" / "advantage_vs_k.png").stat().st_size > 1000
    assert json.loads((tmp_path / "run" / "results.json").read_text())["loss"] == res["loss"]


def test_eval_command_packs_a_file_of_short_lines(with_tokenizer, tmp_path):
    """Every line shorter than a document: the command packs them (the default for such a file) and measures."""
    q = HuggingFace.from_pretrained(with_tokenizer)
    names = ("Ada", "Bram", "Cora", "Dov", "Eli", "Fay")
    lines = [f"{names[i % 6]} saw {i % 7} geese." for i in range(300)]
    assert max(len(q.encode(t)) for t in lines) < 16
    short = tmp_path / "short.txt"
    short.write_text("\n".join(lines) + "\n")
    res = cli_json(f"eval hf:{with_tokenizer} --text {short} --doc-length 16 --k 2 --num-docs 8 --no-learned")
    assert res["text"]["packed"] and res["text"]["measure_documents"] > 0 and res["loss"]["n"] == 8
    assert res["text"]["documents_spanning_texts"] == res["text"]["documents"]
    assert res["windows"][0]["k"] == 2 and res["windows"][0]["distinguishers"]


def test_eval_command_bad_input(with_tokenizer, tmp_path):
    short = tmp_path / "short.txt"
    short.write_text("Too short.\n")
    r = cli(f"eval hf:{with_tokenizer} --text {short} --doc-length 12")
    assert r.exit_code == 2 and "fewer than one document of 12 tokens" in r.output
    r = cli(f"eval hf:{with_tokenizer} --text {short} --doc-length 12 --no-pack")
    assert r.exit_code == 2 and "no text is as long as one document" in r.output
    r = cli(f"eval hf:{with_tokenizer} --k 40 --doc-length 12")
    assert r.exit_code == 2 and "longer than the model's context of 32 tokens" in r.output
    r = cli(f"eval hf:{tmp_path}")
    assert r.exit_code == 2 and "holds no Hugging Face model" in r.output
    r = cli(f"eval hf:{with_tokenizer} --distinguisher nosuchmod:f --doc-length 12 --k 1")
    assert r.exit_code == 2 and "cannot import" in r.output
