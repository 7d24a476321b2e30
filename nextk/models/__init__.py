"""Models satisfying nextk.LanguageModel. Registry: `MODELS` (family name → constructor)."""

from nextk.models.ngram import NGram
from nextk.models.paper_rnn import PaperRNN
from nextk.models.recurrent import GRU, LSTM, RecurrentLM
from nextk.models.transformer import Transformer

MODELS = {"gru": GRU, "lstm": LSTM, "paper_rnn": PaperRNN, "transformer": Transformer, "ngram": NGram}

__all__ = ["GRU", "LSTM", "PaperRNN", "Transformer", "NGram", "RecurrentLM", "MODELS"]
