"""Models satisfying nextk.LanguageModel. Registry: `MODELS` (family name → constructor)."""

from nextk.models.ngram import NGram
from nextk.models.paper_rnn import PaperRNN
from nextk.models.recurrent import GRU, LSTM, RecurrentLM
from nextk.models.transformer import Transformer

MODELS = {"gru": GRU, "lstm": LSTM, "paper_rnn": PaperRNN, "transformer": Transformer, "ngram": NGram}
# the families trained by gradient descent; each owns its size schedule (`schedule`, `sized`) and
# the mapping from command-line options to its constructor (`from_options`)
TRAINABLE = {name: MODELS[name] for name in ("gru", "lstm", "paper_rnn", "transformer")}


def __getattr__(name: str):
    """`HuggingFace` (nextk/models/hf.py) loads on first use: `import nextk.models` never imports transformers."""
    if name == "HuggingFace":
        from nextk.models.hf import HuggingFace

        return HuggingFace
    raise AttributeError(f"module 'nextk.models' has no attribute {name!r}")


__all__ = ["GRU", "LSTM", "PaperRNN", "Transformer", "NGram", "RecurrentLM", "MODELS", "TRAINABLE", "HuggingFace"]
