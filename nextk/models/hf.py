"""Any Hugging Face causal language model as a nextk LanguageModel (docs/theory.md §1–2).

`HuggingFace.from_pretrained(name_or_path)` loads a `transformers` causal LM and its tokenizer and
wraps them: exact conditionals (`exact = True`, a network's own probabilities), teacher-forced
`log_probs`/`log_prob`/`logits` in batches, `sample`, and `start`/`step` over the key/value cache with
every row at its own position (the State contract, nextk/lm.py), so `advantage`, `tv_advantage`,
`boost`, `train` and `nextk eval` run on it unchanged. `transformers` is imported only here, and this
module is imported only when the adapter is used (`pip install nextk[hf]`).

**The empty prefix.** A transformer needs at least one input to give q(x_0 | ∅). nextk feeds one
start token at position 0 and x_t at position t + 1: the model's BOS token when it has one (tokenizer
first, then the model config); otherwise its EOS token, the document separator such models are trained
with (GPT-2's `<|endoftext|>` is both); otherwise the `bos_token_id=` given to `from_pretrained`, or an
error. So q(x_0 | ∅) is "the first token of a document", and a document of n tokens uses positions
0 … n − 1: n ≤ the model's context (`context`).

**The state** of a batch: "kv" (B, layers, 2, kv_heads, T, head_dim) keys and values in the model's
dtype, and "len" (B,) the slots row b has filled (start token included; its next position). Slots from
len[b] on are padding: zeros, exactly what `State.cat` adds when it right-pads caches of different
lengths. Each `step` rebuilds a `transformers.DynamicCache` from "kv", passes an attention mask that
hides every padding slot and the row's own position as `position_ids`, and writes the new key/value
into slot len[b]. Rows therefore step exactly as they would alone, whatever else is in the batch.

**Vocabulary.** `vocab_size` is the model's output size. A tokenizer may be smaller by the padding
models add to their embedding matrix (≤ max(128, V/50) ids, e.g. Pythia's 50,277 of 50,304; those ids
are never produced by the tokenizer); a larger tokenizer, or one much smaller, is another model's and
is refused.

**Devices.** `device="cuda"` puts the model there; every tensor the adapter creates (states, masks,
positions, samples) is made on the model's device, tokens given on another device are moved once per
call, and sampling uses a generator on the model's device when given a seed.
"""

from __future__ import annotations

import copy
import inspect
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nextk.errors import CheckpointError, InputError
from nextk.lm import State, check_tokens, normalize_prefix
from nextk.stats import mean_estimate

CALL_TOKENS = 64  # tokens of a typical forward call, for the thread policy's work estimate
LOGIT_BUDGET = 2**26  # logits materialised per forward chunk (elements: 256 MiB of float32)
BLOCK = 256  # tokens per block of the two-level sampler (`categorical`)
ATTENTION_BUDGET = 2**24  # query × key scores per row and head in one branched forward
CONTEXT_ATTRS = ("n_positions", "max_position_embeddings", "n_ctx", "max_seq_len", "seq_length", "max_sequence_length")
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.json",
    "tokenizer.model",
    "spiece.model",
    "vocab.txt",
)
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16, "float64": torch.float64}


def require_transformers():
    """Import transformers, or say how to install it."""
    try:
        import transformers
    except ImportError:  # pragma: no cover - exercised only without the extra
        raise InputError("Hugging Face models need the hf extra: pip install 'nextk[hf]'") from None
    return transformers


def device_generator(seed: int | torch.Generator | None, device) -> torch.Generator:
    """A generator on `device` from a seed (an explicit generator is returned as it is)."""
    if isinstance(seed, torch.Generator):
        return seed
    g = torch.Generator(device=device)
    g.manual_seed(0 if seed is None else int(seed))
    return g


def categorical(logits: Tensor, generator: torch.Generator | None, num: int = 1) -> Tensor:
    """`num` draws (with replacement) per row from softmax(logits) (rows, V) → (rows, num), on the rows'
    device; log-probabilities are logits too. Inverse-CDF sampling in two levels, far cheaper at V = 50k
    than `torch.multinomial` or a full cumulative sum: one uniform per draw picks a block of `BLOCK`
    tokens by the cumulative block masses (float64), then the token inside it by the block's own
    cumulative sum; P(token) = P(block) · P(token | block) exactly, and a zero-probability token is
    never drawn. A generator on another device draws the uniforms there (one small copy)."""
    rows, v = logits.shape
    dev = logits.device
    gen_dev = generator.device if generator is not None else dev
    u = torch.rand(rows, num, generator=generator, dtype=torch.float64, device=gen_dev).to(dev)
    z = logits.float()
    w = (z - z.amax(-1, keepdim=True)).exp_()  # (rows, V), the largest weight is 1
    full = v // BLOCK  # whole blocks (a view, no copy), then the remainder as one short block
    mass = w[:, : full * BLOCK].reshape(rows, full, BLOCK).sum(-1)
    if v > full * BLOCK:
        mass = torch.cat([mass, w[:, full * BLOCK :].sum(-1, keepdim=True)], 1)
    cum = mass.double().cumsum(-1)  # (rows, blocks)
    target = u * cum[:, -1:]
    b = torch.searchsorted(cum, target, right=True).clamp_(max=cum.shape[1] - 1)  # (rows, num)
    before = torch.where(b > 0, cum.gather(1, (b - 1).clamp(min=0)), torch.zeros_like(target))
    share = ((target - before) / (cum.gather(1, b) - before)).clamp_(0, 1 - 1e-12)  # uniform inside the block
    cols = b.unsqueeze(-1) * BLOCK + torch.arange(BLOCK, device=dev)  # (rows, num, BLOCK)
    inside = w.gather(1, cols.clamp(max=v - 1).view(rows, -1)).view(rows, num, BLOCK) * (cols < v)
    inner = inside.cumsum(-1, dtype=torch.float64)
    j = torch.searchsorted(inner, (share * inner[..., -1]).unsqueeze(-1), right=True).squeeze(-1)
    return (b * BLOCK + j.clamp_(max=BLOCK - 1)).clamp_(max=v - 1)


def picked_log_probs(logits: Tensor, tokens: Tensor) -> Tensor:
    """log softmax(logits)[tokens] in float64 without a float64 copy of the whole (…, V) tensor beyond one
    logsumexp: logits (…, V), tokens (…, num) → (…, num)."""
    return logits.gather(-1, tokens).double() - torch.logsumexp(logits.double(), dim=-1, keepdim=True)


def _cache_tensors(cache) -> list[tuple[Tensor, Tensor]]:
    """(keys, values) per layer, each (B, kv_heads, T, head_dim), from a transformers cache."""
    if hasattr(cache, "layers"):
        return [(layer.keys, layer.values) for layer in cache.layers]
    if hasattr(cache, "key_cache"):  # transformers < 4.56
        return list(zip(cache.key_cache, cache.value_cache))
    return [(k, v) for k, v, *_ in cache]  # legacy tuples


def cache_kwarg(model) -> str:
    """The name the model's forward takes its key/value cache by: `cache` (transformers ≥ 5.2x, where
    `past_key_values` is deprecated and removed in 5.40) or `past_key_values` (earlier releases)."""
    try:
        params = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):  # a forward without a readable signature: the newer name
        return "cache"
    return "past_key_values" if "past_key_values" in params and "cache" not in params else "cache"


def out_cache(out):
    """The key/value cache of a forward's output under either name, without touching the deprecated
    `past_key_values` property of newer releases (it logs a deprecation warning)."""
    found = out.get("cache") if hasattr(out, "get") else getattr(out, "cache", None)
    return found if found is not None else out["past_key_values"]


def _make_cache(layers: list[tuple[Tensor, Tensor]]):
    from transformers import DynamicCache

    if hasattr(DynamicCache, "from_legacy_cache"):  # transformers < 5
        return DynamicCache.from_legacy_cache(tuple(layers))
    return DynamicCache(layers)


def _looks_local(name: str) -> bool:
    """A path rather than a Hub id: it exists, starts like a path, has more than one "/", or its first part is a
    folder here (`runs/gpt2` beside a `runs/` folder). Such a name is checked on disk and never sent to the Hub."""
    first = name.split("/", 1)[0]
    return (
        os.path.exists(name)
        or name.startswith((".", "/", "~"))
        or (os.sep in name and name.count("/") != 1)
        or ("/" in name and bool(first) and os.path.isdir(first))
    )


def _check_hub_name(name: str, revision: str | None) -> None:
    """A Hub id that is not in the local cache needs the Hub: when it cannot be reached, say so at once instead of
    letting huggingface_hub retry for half a minute (skipped offline-mode settings and proxies decide themselves)."""
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants, try_to_load_from_cache

    cached = try_to_load_from_cache(name, "config.json", revision=revision)
    if isinstance(cached, str) or constants.HF_HUB_OFFLINE:
        return
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return  # the Hub may be reachable through the proxy only
    url = urlparse(constants.ENDPOINT)
    try:
        socket.create_connection((url.hostname, url.port or 443), timeout=3).close()
    except OSError:
        raise CheckpointError(
            f"{name!r} is neither a local model folder nor in the Hugging Face cache, and the Hub "
            f"({url.hostname}) cannot be reached: give the path of a saved model (save_pretrained)"
        ) from None


class HuggingFace(nn.Module):
    """A `transformers` causal LM (and its tokenizer) as a nextk LanguageModel. Build it with
    `HuggingFace.from_pretrained(name_or_path)`, or wrap a model object: `HuggingFace(model, tokenizer)`.

    `vocab_size`: the model's output size; `exact = True`; `length`: None (strings of any length up to
    `context`), or the document length of a view made by `at_length(n)` (a model used as the truth);
    `context`: the most positions the model reads (start token included), None when unbounded;
    `bos_token_id`: the token read before x_0 (module docstring).
    """

    exact = True
    family = "hf"

    def __init__(self, model, tokenizer=None, *, bos_token_id: int | None = None, name: str | None = None):
        super().__init__()
        self.hf = model
        self.tokenizer = tokenizer
        cfg = model.config
        text_cfg = cfg.get_text_config() if hasattr(cfg, "get_text_config") else cfg
        out = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
        weight = getattr(out, "weight", None)
        self.vocab_size = int(weight.shape[0]) if weight is not None else int(text_cfg.vocab_size)
        self.context = next((int(v) for a in CONTEXT_ATTRS if isinstance(v := getattr(text_cfg, a, None), int)), None)
        self.length: int | None = None
        self.model_name = name or getattr(cfg, "_name_or_path", "") or cfg.model_type
        self.bos_token_id = self._resolve_bos(bos_token_id)
        window = getattr(text_cfg, "sliding_window", None)
        if isinstance(window, int) and window > 0 and (self.context is None or window < self.context):
            raise CheckpointError(
                f"{self.model_name}: sliding-window attention ({window} tokens) is not supported: nextk's per-row "
                "cache has padding slots, and a window counted in slots would not be a window in positions"
            )
        self.config = {"name_or_path": self.model_name, "bos_token_id": self.bos_token_id}
        self.cache_kwarg = cache_kwarg(model)
        self._probe()

    # ---- loading --------------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | Path,
        *,
        device: str | torch.device = "cpu",
        dtype: str | torch.dtype | None = None,
        revision: str | None = None,
        tokenizer=None,
        bos_token_id: int | None = None,
    ) -> HuggingFace:
        """Load a causal LM (a local folder from `save_pretrained`, or a Hub name when online) and its
        tokenizer. `dtype`: None = float32 (the estimators' default), or "bfloat16", "float16", … or a
        torch dtype; "auto" keeps the checkpoint's. `tokenizer`: another tokenizer (a path or an
        object) instead of the model's own. Missing or unusable models raise CheckpointError."""
        require_transformers()
        from safetensors import SafetensorError
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        name = str(name_or_path)
        if _looks_local(name):
            path = Path(name).expanduser()
            if not path.exists():
                raise CheckpointError(f"model folder {name!r} does not exist")
            if not path.is_dir() or not (path / "config.json").is_file():
                raise CheckpointError(
                    f"{name!r} holds no Hugging Face model: a model folder (save_pretrained) has config.json "
                    "and weights"
                )
            name = str(path)
        else:
            _check_hub_name(name, revision)
        if isinstance(dtype, str) and dtype != "auto":
            if dtype not in DTYPES:
                raise InputError(f"unknown dtype {dtype!r}; choose one of {sorted(DTYPES)} or 'auto'")
            dtype = DTYPES[dtype]
        dtype = torch.float32 if dtype is None else dtype
        bar = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        try:
            model = AutoModelForCausalLM.from_pretrained(name, revision=revision, **_dtype_kwarg(dtype))
        except (OSError, ValueError, KeyError, RuntimeError, SafetensorError) as e:  # RuntimeError: torch's unpickling
            why = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            if isinstance(e, SafetensorError):
                why = f"its weights file is truncated or corrupt ({why})"
            raise CheckpointError(f"cannot load a causal language model from {name!r}: {why}") from None
        finally:
            if bar:
                hf_logging.enable_progress_bar()
        if tokenizer is None and _looks_local(name) and not any((Path(name) / f).is_file() for f in TOKENIZER_FILES):
            pass  # a model folder without a tokenizer: work on token ids (AutoTokenizer would invent an empty one)
        elif tokenizer is None or isinstance(tokenizer, (str, Path)):
            where = name if tokenizer is None else str(tokenizer)
            try:
                tokenizer = AutoTokenizer.from_pretrained(where, revision=revision if tokenizer is None else None)
            except (OSError, ValueError, KeyError, TypeError) as e:
                if where != name:
                    raise CheckpointError(f"cannot load a tokenizer from {where!r}: {e}") from None
                tokenizer = None  # a model without a tokenizer works on token ids
        model.to(device)
        model.eval()
        out = cls(model, tokenizer, bos_token_id=bos_token_id, name=str(name_or_path))
        if out.device.type == "cpu":  # a large network gains from the idle cores (the thread policy, nextk/threads.py)
            from nextk.threads import threads_for_work

            threads_for_work(2 * out.num_parameters * CALL_TOKENS)
        return out

    def _resolve_bos(self, given: int | None) -> int:
        tok, cfg = self.tokenizer, self.hf.config
        if tok is not None:
            size = len(tok)
            if size > self.vocab_size or self.vocab_size - size > max(128, self.vocab_size // 50):
                raise CheckpointError(
                    f"the tokenizer has {size:,} tokens but the model {self.model_name!r} scores {self.vocab_size:,}: "
                    "they belong to different models (a model may pad its vocabulary by a little, not by more)"
                )
        candidates = [
            ("bos_token_id=", given),
            ("the tokenizer's BOS", getattr(tok, "bos_token_id", None)),
            ("the config's bos_token_id", getattr(cfg, "bos_token_id", None)),
            ("the tokenizer's EOS", getattr(tok, "eos_token_id", None)),
            ("the config's eos_token_id", getattr(cfg, "eos_token_id", None)),
        ]
        for what, tid in candidates:
            if isinstance(tid, (list, tuple)):
                tid = tid[0] if tid else None
            if tid is None:
                continue
            if not 0 <= int(tid) < self.vocab_size:
                raise CheckpointError(f"{what} is {tid}, outside the model's vocabulary 0..{self.vocab_size - 1}")
            return int(tid)
        raise CheckpointError(
            f"{self.model_name!r} has no BOS or EOS token to read before the first token; pass bos_token_id="
        )

    @torch.no_grad()
    def _probe(self) -> None:
        """One forward of the start token: the architecture must keep a key/value cache nextk can use."""
        ids = torch.full((1, 1), self.bos_token_id, dtype=torch.long, device=self.device)
        try:
            out = self.hf(input_ids=ids, use_cache=True)
            layers = _cache_tensors(out_cache(out))
        except Exception as e:  # noqa: BLE001 - any failure here means "not a usable causal LM"
            raise CheckpointError(
                f"{self.model_name!r} does not run as a causal LM with a key/value cache: {e}"
            ) from None
        if not layers or any(k is None or k.dim() != 4 for k, _ in layers):
            raise CheckpointError(f"{self.model_name!r} keeps no per-layer key/value cache (not an attention model?)")
        if out.logits.shape[-1] < self.vocab_size:
            raise CheckpointError(
                f"{self.model_name!r} outputs {out.logits.shape[-1]} logits, fewer than its vocabulary"
            )

    # ---- plain properties -----------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.hf.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.hf.parameters()).dtype

    @property
    def name(self) -> str:
        base = Path(self.model_name.rstrip("/")).name or self.model_name
        return f"hf-{base}"

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.hf.parameters())

    def __repr__(self) -> str:
        return (
            f"HuggingFace({self.model_name!r}, vocab_size={self.vocab_size}, context={self.context}, "
            f"bos={self.bos_token_id}, device={self.device}, dtype={self.dtype})"
        )

    def at_length(self, n: int) -> HuggingFace:
        """The same model (shared weights) as a distribution over documents of n tokens: `length = n`,
        `sample` defaults to n tokens. What a model needs to serve as the truth p of an estimator."""
        self._check_positions(n)
        view = copy.copy(self)
        view.length = n
        return view

    # ---- text ------------------------------------------------------------------------------------------
    def encode(self, text: str) -> Tensor:
        """Token ids of `text` (no special tokens added), LongTensor (pos,)."""
        if self.tokenizer is None:
            raise InputError(f"{self.model_name!r} was loaded without a tokenizer")
        return torch.tensor(self.tokenizer(text, add_special_tokens=False)["input_ids"], dtype=torch.long)

    def decode(self, tokens: Tensor):
        if self.tokenizer is None:
            raise InputError(f"{self.model_name!r} was loaded without a tokenizer")
        tokens = torch.as_tensor(tokens)
        if tokens.dim() == 2:
            return [self.decode(r) for r in tokens]
        return self.tokenizer.decode(tokens.tolist())

    # ---- teacher forcing -------------------------------------------------------------------------------
    def _check_positions(self, positions: int) -> None:
        if self.context is not None and positions > self.context:
            raise InputError(
                f"{positions} positions exceed the context of {self.model_name!r}: {self.context} tokens "
                f"(the start token included, so documents of at most {self.context} tokens)"
            )

    def _inputs(self, x: Tensor) -> Tensor:
        """[start, x_0, …, x_{T−2}] on the model's device."""
        x = x.to(self.device)
        return torch.cat([torch.full_like(x[:, :1], self.bos_token_id), x[:, :-1]], dim=1)

    def logits(self, x: Tensor) -> Tensor:
        """Teacher-forced logits (B, T, V) in the model's dtype, with gradients when enabled (training)."""
        x = check_tokens(x, self.vocab_size)
        self._check_positions(x.shape[1])
        out = self.hf(input_ids=self._inputs(x), use_cache=False)
        return out.logits[..., : self.vocab_size]

    def _chunks(self, x: Tensor):
        rows = max(1, LOGIT_BUDGET // max(1, x.shape[1] * self.vocab_size))
        for i in range(0, x.shape[0], rows):
            yield x[i : i + rows]

    @torch.no_grad()
    def log_probs(self, x: Tensor) -> Tensor:
        """log q(v | x_{<t}) for every t, float64 (B, T, V) on the model's device (in row chunks)."""
        x = check_tokens(x, self.vocab_size, self.length)
        if x.shape[1] == 0 or x.shape[0] == 0:
            return torch.zeros(x.shape[0], x.shape[1], self.vocab_size, dtype=torch.float64, device=self.device)
        return torch.cat([torch.log_softmax(self.logits(c).double(), dim=-1) for c in self._chunks(x)])

    @torch.no_grad()
    def log_prob(self, x: Tensor) -> Tensor:
        """log q̄(x) for whole strings, float64 (B,) on the model's device; no (B, T, V) float64 tensor
        is kept beyond one chunk."""
        x = check_tokens(x, self.vocab_size, self.length)
        if x.shape[1] == 0 or x.shape[0] == 0:
            return torch.zeros(x.shape[0], dtype=torch.float64, device=self.device)
        out = []
        for c in self._chunks(x):
            out.append(picked_log_probs(self.logits(c), c.to(self.device).unsqueeze(-1)).squeeze(-1).sum(1))
        return torch.cat(out)

    # ---- incremental decoding (the State contract) ----------------------------------------------------
    @torch.no_grad()
    def start(self, batch: int) -> State:
        """Every row reads the start token at position 0: q(· | empty prefix)."""
        ids = torch.full((batch, 1), self.bos_token_id, dtype=torch.long, device=self.device)
        if batch == 0:
            return self._empty_state()
        out = self.hf(input_ids=ids, position_ids=torch.zeros_like(ids), use_cache=True)
        kv = torch.stack([torch.stack(pair, 1) for pair in _cache_tensors(out_cache(out))], 1)  # (B, L, 2, H, 1, dh)
        lp = torch.log_softmax(out.logits[:, -1, : self.vocab_size].double(), dim=-1)
        return State({"log_probs": lp, "kv": kv, "len": torch.ones(batch, dtype=torch.long, device=self.device)})

    def _empty_state(self) -> State:
        probe = self.start(1)
        return State({k: v[:0] for k, v in probe.tensors.items()})

    @torch.no_grad()
    def step(self, state: State, tokens: Tensor) -> tuple[State, Tensor]:
        """Read one token per row, each row at its own position len[b] (padding slots masked out)."""
        kv, n = state.tensors["kv"], state.tensors["len"]
        b, layers, _, _, t, _ = kv.shape
        tokens = torch.as_tensor(tokens).to(self.device).long().reshape(b)
        if b == 0:
            return state, state.log_probs
        if tokens.min() < 0 or tokens.max() >= self.vocab_size:
            raise InputError(f"token ids must be in 0..{self.vocab_size - 1}")
        self._check_positions(int(n.max()) + 1)
        cache = _make_cache([(kv[:, i, 0], kv[:, i, 1]) for i in range(layers)])
        slots = torch.arange(t, device=self.device)
        mask = torch.cat([slots < n[:, None], torch.ones(b, 1, dtype=torch.bool, device=self.device)], 1).long()
        out = self.hf(
            input_ids=tokens[:, None],
            **{self.cache_kwarg: cache},
            attention_mask=mask,
            position_ids=n[:, None],
            use_cache=True,
        )
        new = torch.stack([torch.stack((k[:, :, -1], v[:, :, -1]), 1) for k, v in _cache_tensors(out_cache(out))], 1)
        width = max(t, int(n.max()) + 1)
        kv = F.pad(kv, (0, 0, 0, width - t)) if width > t else kv.clone()  # never write into the caller's state
        kv[torch.arange(b, device=self.device), :, :, :, n] = new  # (B, L, 2, H, dh) into slot len[b]
        lp = torch.log_softmax(out.logits[:, -1, : self.vocab_size].double(), dim=-1)
        new_state = State({"log_probs": lp, "kv": kv, "len": n + 1})
        return new_state, lp

    # ---- sampling ---------------------------------------------------------------------------------------
    def sample_next(self, log_probs: Tensor, generator: torch.Generator | None) -> Tensor:
        """One draw per row from exp(log_probs) (batch, V) → (batch,) on the generator's device (nextk.advantage
        .sample_windows uses it): the two-level inverse CDF `categorical`, exact, and at V = 50k far cheaper
        than torch.multinomial over float64 rows."""
        tok = categorical(log_probs, generator)[:, 0]
        return tok.to(generator.device) if generator is not None else tok

    @torch.no_grad()
    def sample(self, num: int, length: int | None = None, *, generator=None, prefix=None) -> Tensor:
        """num strings of `length` tokens (default: `length` of an `at_length` view), ancestral sampling
        with the key/value cache; the prefix (pos0,) or (num, pos0) is read, then kept in the output.
        Returned on the model's device."""
        length = self.length if length is None else length
        if length is None:
            raise InputError("a model has no length of its own: pass length= (or use model.at_length(n))")
        if length < 0 or num < 0:
            raise InputError(f"num and length must be non-negative, got num={num}, length={length}")
        self._check_positions(length)
        prefix = normalize_prefix(prefix, num, self.vocab_size).to(self.device)
        if prefix.shape[1] > length:
            raise InputError(f"prefix has {prefix.shape[1]} tokens, more than length={length}")
        g = device_generator(generator, self.device)
        out = torch.empty(num, length, dtype=torch.long, device=self.device)
        out[:, : prefix.shape[1]] = prefix
        if num == 0 or length == prefix.shape[1]:
            return out
        ids = torch.cat([torch.full((num, 1), self.bos_token_id, dtype=torch.long, device=self.device), prefix], 1)
        pos = torch.arange(ids.shape[1], device=self.device).expand(num, -1)
        res = self.hf(input_ids=ids, position_ids=pos, use_cache=True)
        cache = out_cache(res)
        for t in range(prefix.shape[1], length):
            out[:, t] = categorical(res.logits[:, -1, : self.vocab_size], g)[:, 0]
            if t + 1 < length:
                res = self.hf(
                    input_ids=out[:, t : t + 1],
                    **{self.cache_kwarg: cache},
                    position_ids=torch.full((num, 1), t + 1, device=self.device),
                    use_cache=True,
                )
                cache = out_cache(res)
        return out

    # ---- many windows from one pass along each document (branched decoding) ---------------------------
    @torch.no_grad()
    def branch_windows(
        self, x: Tensor, starts, k: int, num: int = 1, *, generator=None, return_log_probs: bool = False
    ):
        """For every document row b of x and every start i in `starts` (ints shared by all rows), draw
        `num` windows w ∼ q(· | x_{<i}) of k tokens: LongTensor (B, S, num, k) on the model's device
        (and their log q(w | x_{<i}), float64 (B, S, num), with `return_log_probs`).

        One teacher-forced pass reads [start, x_0, …, x_{max(starts)−1}] and keeps its cache; then k − 1
        forwards each read the latest token of every (start, draw) at once, as extra keys of the same
        document: a query at start i and depth j sees the document's slots 0…i and its own earlier window
        tokens only (a custom 4-D attention mask), at position i + j. Model work: max(starts) + S·num·k
        tokens per document, the same as stepping every window alone but in k batched calls."""
        starts = [int(i) for i in starts]
        x = check_tokens(x, self.vocab_size).to(self.device)
        if k < 1 or not starts or min(starts) < 0 or max(starts) > x.shape[1]:
            raise InputError(f"starts must lie in 0..{x.shape[1]} and k ≥ 1, got starts={starts[:5]}…, k={k}")
        self._check_positions(max(starts) + k)
        g = device_generator(generator, self.device)
        b, s_count, t0 = x.shape[0], len(starts), max(starts)
        dev, dt = self.device, self.dtype
        # queries per row: `group` draws of every start; the draws split into groups of identical layout
        draws = next(
            (
                d
                for d in range(num, 0, -1)
                if num % d == 0 and s_count * d * (t0 + 1 + s_count * d * k) <= ATTENTION_BUDGET
            ),
            1,
        )
        groups, q_len = num // draws, s_count * draws
        ids = torch.cat([torch.full((b, 1), self.bos_token_id, dtype=torch.long, device=dev), x[:, :t0]], 1)
        out = self.hf(input_ids=ids, position_ids=torch.arange(t0 + 1, device=dev).expand(b, -1), use_cache=True)
        logits0 = out.logits[:, starts, : self.vocab_size]  # (B, S, V): q(· | x_{<i}) for every start
        tok = categorical(logits0.reshape(b * s_count, -1), g, num).reshape(b, s_count, num)
        total = picked_log_probs(logits0, tok) if return_log_probs else None
        windows = [tok]
        if k > 1:
            # rows (document, group): group-major inside each document; queries (start, draw) start-major
            layers = [
                (kk.repeat_interleave(groups, 0), vv.repeat_interleave(groups, 0))
                for kk, vv in _cache_tensors(out_cache(out))
            ]
            cache = _make_cache(layers)
            start_q = torch.tensor(starts, device=dev).repeat_interleave(draws)  # (Q,)
            doc_ok = torch.arange(t0 + 1, device=dev)[None, :] <= start_q[:, None]  # (Q, t0+1)
            eye = torch.eye(q_len, dtype=torch.bool, device=dev)
            low = torch.finfo(dt).min
            for j in range(1, k):
                prev = windows[-1].reshape(b, s_count, groups, draws).permute(0, 2, 1, 3).reshape(b * groups, q_len)
                allowed = torch.cat([doc_ok, eye.repeat(1, j)], 1)  # (Q, t0+1+Q·j)
                mask = torch.zeros(allowed.shape, dtype=dt, device=dev).masked_fill_(~allowed, low)
                res = self.hf(
                    input_ids=prev,
                    **{self.cache_kwarg: cache},
                    attention_mask=mask[None, None].expand(b * groups, 1, -1, -1),
                    position_ids=(start_q + j).expand(b * groups, -1),
                    use_cache=True,
                )
                cache = out_cache(res)
                logits = res.logits[..., : self.vocab_size]  # (B·G, Q, V)
                nxt = categorical(logits.reshape(b * groups * q_len, -1), g)[:, 0].reshape(b * groups, q_len)
                if return_log_probs:
                    picked = picked_log_probs(logits, nxt.unsqueeze(-1)).squeeze(-1)
                    total = total + _ungroup(picked, b, groups, s_count, draws)
                windows.append(_ungroup(nxt, b, groups, s_count, draws))
        w = torch.stack(windows, -1)  # (B, S, num, k)
        return (w, total) if return_log_probs else w


def _ungroup(t: Tensor, b: int, groups: int, s_count: int, draws: int) -> Tensor:
    """(B·G, S·D) in (document, group) × (start, draw) order → (B, S, G·D)."""
    return t.reshape(b, groups, s_count, draws).permute(0, 2, 1, 3).reshape(b, s_count, groups * draws)


def _dtype_kwarg(dtype) -> dict:
    import transformers

    major, minor = (int(v) for v in transformers.__version__.split(".")[:2])
    return {"dtype": dtype} if (major, minor) >= (4, 56) else {"torch_dtype": dtype}


# ---- the paired estimator on given documents, every distinguisher on the same windows ----------------


@torch.no_grad()
def paired_advantages(
    distinguishers: dict,
    q,
    x: Tensor,
    k: int,
    *,
    seed: int | torch.Generator = 0,
    batch_docs: int | None = None,
    progress=None,
) -> dict:
    """The paired Monte-Carlo advantage (docs/theory.md §2) of every distinguisher in `distinguishers`
    (name → d) for documents x (N, n) of the truth p (e.g. corpus windows): per document and start i,
    d(x_{<i}, x_{i:i+k}) − d(x_{<i}, w) with one window w ∼ q(· | x_{<i}); the same windows serve every
    distinguisher. Mean over the m = n − k + 1 starts per document, normal 95% interval over documents.
    Windows come from `q.branch_windows` (one pass per document) when q has it, else from q's states
    branched at every start (nextk.advantage's paired path). Returns name → Estimate."""
    from nextk.advantage import sample_windows
    from nextk.bounds import check_window
    from nextk.lm import State, states_along

    n = x.shape[1]
    m = check_window(k, n)
    num_docs = x.shape[0]
    if num_docs == 0:
        raise InputError("no documents to measure the advantage on")
    device = getattr(q, "device", torch.device("cpu"))
    g = device_generator(seed, device) if hasattr(q, "branch_windows") else _cpu_generator(seed)
    if batch_docs is None:  # bounded token rows and logits per forward
        batch_docs = max(1, min(2**16 // (m * max(1, n)), LOGIT_BUDGET // (m * q.vocab_size)))
    per = {name: torch.zeros(num_docs, m, dtype=torch.float64) for name in distinguishers}
    starts = torch.arange(m)
    for lo in range(0, num_docs, batch_docs):
        xb = x[lo : lo + batch_docs]
        b = xb.shape[0]
        if hasattr(q, "branch_windows"):
            w = q.branch_windows(xb, range(m), k, 1, generator=g)[:, :, 0].cpu()  # (B, m, k)
        else:
            states = states_along(q, xb[:, : m - 1])
            batch = State.cat([states[i] for i in range(m)])  # start-major rows
            w = sample_windows(q, batch, k, g).reshape(m, b, k).transpose(0, 1)
        true = xb.cpu().repeat_interleave(m, 0)  # (B·m, n): document-major, start-minor
        st = starts.repeat(b)
        fake = true.clone()
        fake.scatter_(1, st[:, None] + torch.arange(k), w.reshape(b * m, k))
        for name, d in distinguishers.items():
            diff = _judge(d, true, st, k) - _judge(d, fake, st, k)
            per[name][lo : lo + b] = diff.reshape(b, m)
        if progress is not None:
            progress(b)
    method = f"paired monte carlo: one q window per (document, start), {m} starts per document"
    return {name: mean_estimate(v.mean(1), method) for name, v in per.items()}


def _judge(d, x: Tensor, starts: Tensor, k: int) -> Tensor:
    out = d(x, starts, k)
    if not isinstance(out, Tensor) or out.shape != (x.shape[0],):
        raise InputError(
            f"a distinguisher must return a tensor of shape ({x.shape[0]},), got {getattr(out, 'shape', out)}"
        )
    return out.double().cpu()


def _cpu_generator(seed) -> torch.Generator:
    from nextk.lm import make_generator

    return make_generator(seed)
