"""Tiny Hugging Face models and tokenizers for the tests, built offline from configs and loaded back
through `HuggingFace.from_pretrained` (the real loading path). transformers is imported inside the
functions, so importing this module never needs it; callers skip when it is missing."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import pytest
import torch

SPECIAL = "<|endoftext|>"


def transformers_or_skip():
    return pytest.importorskip("transformers")


def tiny_config(arch: str, vocab_size: int, context: int = 16, bos: int | None = None):
    """A 2-layer, 32-wide GPT-2 or Llama config (Llama: grouped-query attention, 4 heads over 2)."""
    transformers_or_skip()
    from transformers import GPT2Config, LlamaConfig

    bos = vocab_size - 1 if bos is None else bos
    if arch == "gpt2":
        return GPT2Config(
            n_layer=2,
            n_embd=32,
            n_head=2,
            vocab_size=vocab_size,
            n_positions=context,
            bos_token_id=bos,
            eos_token_id=bos,
        )
    if arch == "llama":
        return LlamaConfig(
            num_hidden_layers=2,
            hidden_size=32,
            intermediate_size=64,
            num_attention_heads=4,
            num_key_value_heads=2,
            vocab_size=vocab_size,
            max_position_embeddings=context,
            bos_token_id=bos,
            eos_token_id=bos,
        )
    raise ValueError(arch)


def save_tiny(folder: Path, arch: str, vocab_size: int, *, context: int = 16, seed: int = 1, tokenizer=None) -> Path:
    """A randomly initialised tiny model (fixed seed, global RNG untouched) saved with save_pretrained."""
    from transformers import AutoModelForCausalLM

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(tiny_config(arch, vocab_size, context))
    folder = Path(folder)
    model.save_pretrained(folder)
    if tokenizer is not None:
        tokenizer.save_pretrained(folder)
    return folder


@functools.lru_cache(maxsize=None)
def cached_folder(arch: str, vocab_size: int, context: int = 16, seed: int = 1) -> Path:
    """A tiny model folder made once per test session (models are read-only in the tests)."""
    return save_tiny(Path(tempfile.mkdtemp(prefix=f"nextk-{arch}-")), arch, vocab_size, context=context, seed=seed)


@functools.lru_cache(maxsize=None)
def tiny_model(arch: str, vocab_size: int, context: int = 16, seed: int = 1):
    transformers_or_skip()
    from nextk.models.hf import HuggingFace

    return HuggingFace.from_pretrained(cached_folder(arch, vocab_size, context, seed))


@functools.lru_cache(maxsize=None)
def trained_tokenizer(vocab_size: int = 300):
    """A byte-level BPE tokenizer trained with `tokenizers` on the text nextk ships (tales.txt)."""
    transformers_or_skip()
    from importlib import resources

    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    text = resources.files("nextk.data").joinpath("tales.txt").read_text(encoding="utf-8").splitlines()
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[SPECIAL],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(text, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=SPECIAL, eos_token=SPECIAL)


def contract_case(arch: str):
    """A SUITE entry of tests/test_contract.py: a tiny model over the 3-token alphabet of its TRUTH
    (token 2 doubles as the start token) and the float32 tolerance."""
    from tests.test_contract import FLOAT32, TRUTH

    return tiny_model(arch, TRUTH.vocab_size), TRUTH, FLOAT32
