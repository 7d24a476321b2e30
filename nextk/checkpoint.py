"""Checkpoints: tensors only (safetensors for weights, weights_only torch.load for training state),
written atomically (temp file + os.replace), loaded without executing code."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from nextk.errors import CheckpointError

BEST = "best.safetensors"  # the weights of the best held-out evaluation, beside model.safetensors (the last)


def atomic_write(path: Path, write) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def save_model(model, path: str | Path) -> Path:
    """Weights + {family, config} metadata in one safetensors file."""
    path = Path(path)
    tensors = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    meta = {"family": model.family, "config": json.dumps(model.config)}
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=meta))
    return path


def load_model(path: str | Path, vocab_size: int | None = None):
    """Rebuild a model from a checkpoint file or a run folder (its best.safetensors, the weights of the
    best held-out evaluation, else its model.safetensors), or "hf:PATH" (a Hugging Face causal LM);
    `vocab_size` guards against another source's vocabulary."""
    from safetensors import safe_open

    from nextk.models import MODELS

    if str(path).startswith("hf:"):  # a Hugging Face causal LM (nextk[hf]), loaded by its adapter
        from nextk.models.hf import HuggingFace

        model = HuggingFace.from_pretrained(str(path)[3:])
        if vocab_size is not None and model.vocab_size != vocab_size:
            raise CheckpointError(f"{path} scores {model.vocab_size} tokens, but the source has {vocab_size}")
        return model
    path = Path(path)
    if path.is_dir():
        path = path / BEST if (path / BEST).is_file() else path / "model.safetensors"
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(path))
        family, config = meta["family"], json.loads(meta["config"])
    except (SafetensorError, KeyError, ValueError, OSError) as e:
        raise CheckpointError(f"checkpoint {str(path)!r} is corrupt or not a nextk model: {e}") from None
    if family not in MODELS:
        raise CheckpointError(f"checkpoint {str(path)!r} holds unknown model family {family!r}")
    if vocab_size is not None and config.get("vocab_size") != vocab_size:
        raise CheckpointError(
            f"checkpoint {str(path)!r} is for vocabulary size {config.get('vocab_size')}, "
            f"but the source has {vocab_size} tokens"
        )
    model = MODELS[family](**config)
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"checkpoint {str(path)!r} does not fit its {family} config: {e}") from None
    return model


def save_state(state: dict, path: str | Path) -> None:
    atomic_write(Path(path), lambda tmp: torch.save(state, tmp))


def load_state(path: str | Path) -> dict:
    try:
        return torch.load(path, weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means a corrupt file
        raise CheckpointError(f"training state {str(path)!r} is corrupt: {e}") from None
