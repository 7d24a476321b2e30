"""Models satisfying nextk.LanguageModel. Registry: `MODELS` (family name → constructor)."""

from nextk.errors import checked_arguments
from nextk.models.ngram import NGram
from nextk.models.paper_rnn import PaperRNN
from nextk.models.recurrent import GRU, LSTM, RecurrentLM
from nextk.models.transformer import Transformer

MODELS = {"gru": GRU, "lstm": LSTM, "paper_rnn": PaperRNN, "transformer": Transformer, "ngram": NGram}
# the families trained by gradient descent; each owns its size schedule (`schedule`, `sized`) and
# the mapping from command-line options to its constructor (`from_options`)
TRAINABLE = {name: MODELS[name] for name in ("gru", "lstm", "paper_rnn", "transformer")}

# every family's constructor checks its arguments' types first: GRU(hidden="8") is an InputError naming the
# parameter (importing any nextk.models.* module runs this file first, so no constructor is left unchecked)
for _family in (*MODELS.values(), RecurrentLM):
    if "__init__" in _family.__dict__ and not getattr(_family.__init__, "__nextk_checked__", False):
        _family.__init__ = checked_arguments(_family.__init__)


def __getattr__(name: str):
    """`HuggingFace` (nextk/models/hf.py) loads on first use: `import nextk.models` never imports transformers."""
    if name == "HuggingFace":
        from nextk.models.hf import HuggingFace

        return HuggingFace
    raise AttributeError(f"module 'nextk.models' has no attribute {name!r}")


__all__ = ["GRU", "LSTM", "PaperRNN", "Transformer", "NGram", "RecurrentLM", "MODELS", "TRAINABLE", "HuggingFace"]
