"""Real text as the truth: documents are token windows of a text collection (docs/theory.md §1–2).

The distribution of real text is unknown, so a `Corpus` can only be sampled (`exact = False`): it is
the p of the paired advantage estimator and of training, never of KL or TV. Its documents are windows
of `length` tokens taken `stride` tokens apart inside each text (never across two texts), after
tokenising every text with the model's tokenizer (no special tokens added: the model's start token is
added by the model, nextk/models/hf.py).

The texts are split once, by a seeded shuffle, into two disjoint parts: `fit` (what a learned
distinguisher or a statistic is fitted on) and `measure` (where advantages and the loss are measured);
no token position lies in a window of both (windows that would straddle the cut are dropped).

**Packing.** A file of short lines (texts shorter than a document) would give few or no windows inside
texts, so with `pack=True` the texts, in their seeded order, are one token stream cut into consecutive
documents that may span text ends, as language models are trained; `text_starts` records where each text
begins and `boundaries()` marks, per document, the positions where a new text starts. With the default
stride (= length) the measure and fit parts then tile the stream: the cut falls on a document edge, so no
token is lost between them or seen in both (only the last `num_tokens mod length` tokens are in no
document). `pack=None` (the default) packs when windows inside texts would use less than half the tokens.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import torch
from torch import Tensor

from nextk.errors import InputError, NotExactError
from nextk.lm import State, make_generator, normalize_prefix

DEFAULT_TEXT = "builtin:tales.txt"  # 240 generated fables shipped with nextk (nextk/data/make_tales.py)
PARTS = ("all", "fit", "measure")


def read_texts(path: str | Path, text_field: str = "text") -> list[str]:
    """The texts of a collection file: JSON lines (.jsonl/.json: one object per line, its `text_field`)
    or plain text (one text per non-empty line). "builtin:NAME" reads a text shipped in nextk/data."""
    name = str(path)
    if name.startswith("builtin:"):
        try:
            raw = resources.files("nextk.data").joinpath(name[8:]).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise InputError(f"nextk ships no text {name[8:]!r}") from None
    else:
        p = Path(name).expanduser()
        if not p.is_file():
            raise InputError(f"text file {name!r} does not exist")
        raw = read_utf8(p)
    lines = [line for line in raw.splitlines() if line.strip()]
    if not name.endswith((".jsonl", ".json")):
        return lines
    texts = []
    for i, line in enumerate(lines, 1):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputError(f"{name} line {i} is not JSON: {e}") from None
        if not isinstance(obj, dict) or not isinstance(obj.get(text_field), str):
            raise InputError(f"{name} line {i} has no string field {text_field!r}")
        texts.append(obj[text_field])
    return texts


def read_utf8(path: Path) -> str:
    """A file's text; a file that is not UTF-8 is refused in one line naming it and the first bad byte."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise InputError(
            f"text file {str(path)!r} is not UTF-8 (byte 0x{e.object[e.start]:02x} at offset {e.start}): "
            "convert it, e.g. iconv -f latin1 -t utf-8"
        ) from None


def tokenize(texts: list[str], tokenizer) -> tuple[list[list[int]], int | None, object]:
    """Token ids of every text, the tokenizer's vocabulary size (None if unknown) and the object that
    decodes. `tokenizer`: a nextk HuggingFace model (its tokenizer and vocabulary), a transformers
    tokenizer, a `tokenizers.Tokenizer`, or a callable str → list of ids."""
    if hasattr(tokenizer, "bos_token_id") and hasattr(tokenizer, "hf"):  # nextk.models.HuggingFace
        if tokenizer.tokenizer is None:
            raise InputError(f"{tokenizer.model_name!r} was loaded without a tokenizer: give one to the Corpus")
        ids, _, dec = tokenize(texts, tokenizer.tokenizer)
        return ids, tokenizer.vocab_size, dec
    if hasattr(tokenizer, "encode_batch") and hasattr(tokenizer, "get_vocab_size"):  # tokenizers.Tokenizer
        enc = tokenizer.encode_batch(texts, add_special_tokens=False)
        return [e.ids for e in enc], tokenizer.get_vocab_size(), tokenizer
    if hasattr(tokenizer, "convert_tokens_to_ids"):  # a transformers tokenizer
        ids = tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []
        return [list(i) for i in ids], len(tokenizer), tokenizer
    if callable(tokenizer):
        return [list(tokenizer(t)) for t in texts], None, None
    raise InputError(f"cannot tokenise with {type(tokenizer).__name__}: give a model, a tokenizer or a callable")


class Corpus:
    """Windows of `length` tokens of a text collection, sampled uniformly: the truth p when only
    samples of it exist. `Corpus(path_or_texts, tokenizer, length, stride=…, pack=…)` (pack: None = when the
    texts are mostly shorter than a document, module docstring); `.fit` and `.measure`
    are the disjoint parts (same object type, `part` set), `.documents()` every window of a part in a
    seeded order, `.sample(num, generator=…)` uniform draws with replacement.

    >>> c = Corpus(["abcdefgh", "ijkl"], lambda t: [ord(ch) - 97 for ch in t], 3, vocab_size=26)
    >>> c.num_documents, c.num_tokens                  # windows 3 apart inside each text: 2 + 1
    (3, 12)
    """

    exact = False

    def __init__(
        self,
        path_or_texts,
        tokenizer,
        length: int,
        *,
        stride: int | None = None,
        split: float = 0.5,
        seed: int = 0,
        text_field: str = "text",
        vocab_size: int | None = None,
        pack: bool | None = None,
    ):
        if not isinstance(length, int) or length < 1:
            raise InputError(f"length must be a positive number of tokens, got {length!r}")
        stride = length if stride is None else stride
        if not isinstance(stride, int) or stride < 1:
            raise InputError(f"stride must be a positive number of tokens, got {stride!r}")
        if not 0 <= split <= 1:
            raise InputError(f"split (the measure part's share) must be in [0, 1], got {split}")
        if isinstance(path_or_texts, (str, Path)):
            self.path, texts = str(path_or_texts), read_texts(path_or_texts, text_field)
        else:
            self.path, texts = "<texts>", [str(t) for t in path_or_texts]
        if not texts:
            raise InputError(f"{self.path} holds no text")
        ids, known, self._decoder = tokenize(texts, tokenizer)
        self.vocab_size = int(vocab_size or known or 1 + max((max(t) for t in ids if t), default=0))
        top = max((max(t) for t in ids if t), default=-1)
        if top >= self.vocab_size:
            raise InputError(f"the tokenizer produced token id {top}, outside the vocabulary 0..{self.vocab_size - 1}")
        lengths = [len(t) for t in ids]
        total = sum(lengths)
        if pack is None:  # packing by default when windows inside texts would leave most of the tokens unused
            pack = 2 * sum(t - t % length for t in lengths) < total
        if pack and total < length:
            raise InputError(f"{self.path}: {total:,} tokens in all, fewer than one document of {length} tokens")
        if not pack and max(lengths) < length:
            raise InputError(
                f"{self.path}: no text is as long as one document of {length} tokens (the longest has "
                f"{max(lengths)} tokens; {total:,} in all): pack the texts (pack=True, --pack) or use a shorter length"
            )
        self.length, self.stride, self.split, self.seed, self.text_field = length, stride, split, seed, text_field
        self.pack, self.num_texts, self.num_tokens = bool(pack), len(texts), total
        # texts in a seeded order, concatenated; unpacked windows never cross a text's end
        order = torch.randperm(len(ids), generator=make_generator(seed)).tolist()
        self.tokens = torch.tensor([tok for i in order for tok in ids[i]], dtype=torch.long)
        ordered = torch.tensor([lengths[i] for i in order], dtype=torch.long)
        self.text_starts = ordered.cumsum(0) - ordered  # where each text begins in `tokens` (the boundaries)
        cut = round(split * total)  # measure: tokens before the cut; fit: after it
        if pack:  # windows of the whole stream; the cut on a window edge so the parts tile it without a gap
            cut = round(split * total / stride) * stride if stride == length else cut
            starts = torch.arange(0, total - length + 1, stride)
        else:
            starts, offset = [], 0
            for i in order:
                starts += range(offset, offset + lengths[i] - length + 1, stride)
                offset += lengths[i]
            starts = torch.tensor(starts, dtype=torch.long)
        self._parts = {
            "all": starts,
            "measure": starts[starts + length <= cut],
            "fit": starts[starts >= cut],
        }
        self.part = "all"
        self.checks: dict = {}

    # ---- parts -------------------------------------------------------------------------------------------
    def view(self, part: str) -> Corpus:
        """The same corpus restricted to one part: "all", "fit" or "measure"."""
        if part not in PARTS:
            raise InputError(f"unknown part {part!r}; choose one of {list(PARTS)}")
        out = object.__new__(Corpus)
        out.__dict__.update(self.__dict__)
        out.part = part
        return out

    @property
    def fit(self) -> Corpus:
        """The part a distinguisher or statistic is fitted on (disjoint from `measure`)."""
        return self.view("fit")

    @property
    def measure(self) -> Corpus:
        """The part estimates are measured on."""
        return self.view("measure")

    @property
    def starts(self) -> Tensor:
        return self._parts[self.part]

    @property
    def num_documents(self) -> int:
        return len(self.starts)

    def boundaries(self) -> Tensor:
        """Where texts meet inside this part's documents (in `starts` order): bool (num_documents, length), True
        at position j > 0 when a new text begins there. All False unless the corpus is packed."""
        pos = self.starts.unsqueeze(1) + torch.arange(self.length)  # (D, length) positions in `tokens`
        begins = torch.zeros(len(self.tokens) + 1, dtype=torch.bool)
        begins[self.text_starts] = True
        out = begins[pos]
        out[:, 0] = False
        return out

    def info(self) -> dict:
        """What a results file records about the text: its counts, per part."""
        return {
            "path": self.path,
            "texts": self.num_texts,
            "tokens": self.num_tokens,
            "length": self.length,
            "stride": self.stride,
            "documents": len(self._parts["all"]),
            "fit_documents": len(self._parts["fit"]),
            "measure_documents": len(self._parts["measure"]),
            "split": self.split,
            "seed": self.seed,
            "packed": self.pack,
            "documents_spanning_texts": int(self.view("all").boundaries().any(1).sum()),
        }

    @property
    def params(self) -> dict:
        return {
            "path": self.path,
            "length": self.length,
            "stride": self.stride,
            "split": self.split,
            "seed": self.seed,
            "pack": self.pack,
        }

    def __repr__(self) -> str:
        return (
            f"Corpus(path={self.path!r}, length={self.length}, stride={self.stride}, pack={self.pack}, "
            f"part={self.part!r}: "
            f"{self.num_documents:,} documents, {self.num_texts:,} texts, {self.num_tokens:,} tokens)"
        )

    # ---- documents -----------------------------------------------------------------------------------------
    def _windows(self, idx: Tensor, length: int) -> Tensor:
        return self.tokens[self.starts[idx].unsqueeze(1) + torch.arange(length)]

    def _require(self, num: int) -> None:
        if self.num_documents == 0:
            raise InputError(f"the {self.part!r} part of {self.path} has no document of {self.length} tokens")
        if num < 0:
            raise InputError(f"num must be non-negative, got {num}")

    def documents(self, num: int | None = None, *, seed: int | torch.Generator = 0) -> Tensor:
        """Distinct windows of this part in a seeded order: all of them (num=None) or the first num."""
        available = self.num_documents
        num = available if num is None else num
        self._require(num)
        if num > available:
            raise InputError(f"asked for {num} documents but the {self.part!r} part has {available}")
        order = torch.randperm(available, generator=make_generator(seed))[:num]
        return self._windows(order, self.length)

    def sample(self, num: int, length: int | None = None, *, generator=None, prefix=None) -> Tensor:
        """num windows drawn uniformly with replacement (reproducible with a seed or generator)."""
        length = self.length if length is None else length
        if not 0 <= length <= self.length:
            raise InputError(f"length={length} but this corpus's documents have {self.length} tokens")
        if prefix is not None and normalize_prefix(prefix, num, self.vocab_size).shape[1] > 0:
            raise NotExactError("a Corpus cannot sample continuations of a prefix: real text has no known conditionals")
        self._require(num)
        idx = torch.randint(0, self.num_documents, (num,), generator=make_generator(generator))
        return self._windows(idx, length)

    def decode(self, tokens: Tensor):
        tokens = torch.as_tensor(tokens)
        if tokens.dim() == 2:
            return [self.decode(r) for r in tokens]
        if self._decoder is None:
            raise InputError("this corpus's tokenizer cannot decode")
        return self._decoder.decode(tokens.tolist())

    # ---- no exact probabilities ------------------------------------------------------------------------------
    def _no_exact(self, *args, **kwargs):
        raise NotExactError(f"{self!r} has no exact probabilities: use it as samples (training, paired advantage)")

    log_probs = log_prob = start = _no_exact

    def step(self, state: State, tokens: Tensor):
        self._no_exact()
