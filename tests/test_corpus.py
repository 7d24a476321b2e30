"""Corpus packing and text-file input (nextk/sources/corpus.py, nextk/sources/text.py), without transformers:
every line of the test files is tokenised to ids that name the line and the token's place in it, so where each
token of a document came from is known independently of the corpus code."""

import pytest
import torch
from cli_tools import cli

from nextk.errors import InputError
from nextk.sources import Corpus, Text

LINE = 24  # tokens per line


def line_tokens(text: str) -> list[int]:
    """Line "i" → the ids i·24 … i·24 + 23: every token of the file distinct, its line and place readable."""
    i = int(text)
    return list(range(i * LINE, (i + 1) * LINE))


def short_lines(tmp_path, lines: int = 400):
    """A plain-text file of `lines` lines of 24 tokens each (9,600 tokens for 400)."""
    path = tmp_path / "short.txt"
    path.write_text("\n".join(str(i) for i in range(lines)) + "\n")
    return path


def test_short_lines_are_packed_into_documents_of_the_requested_length(tmp_path):
    path = short_lines(tmp_path)
    c = Corpus(path, line_tokens, 64, vocab_size=400 * LINE)
    assert c.pack and c.num_tokens == 9600 and c.num_documents == 9600 // 64
    docs = c.documents()
    assert docs.shape == (150, 64)
    # consecutive documents continue each other: inside a line ids step by one
    inside = (docs[:, 1:] % LINE) != 0
    assert torch.equal((docs[:, 1:] - docs[:, :-1])[inside], torch.ones(int(inside.sum()), dtype=torch.long))
    with pytest.raises(InputError, match="no text is as long as one document of 64 tokens.*--pack"):
        Corpus(path, line_tokens, 64, vocab_size=400 * LINE, pack=False)
    unpacked = Corpus(path, line_tokens, 16, vocab_size=400 * LINE)  # 16 of 24 tokens per line in windows: no pack
    assert not unpacked.pack and unpacked.num_documents == 400


@pytest.mark.parametrize("lines,split", [(400, 0.5), (401, 0.3)])
def test_fit_and_measure_parts_lose_and_repeat_no_token(tmp_path, lines, split):
    c = Corpus(short_lines(tmp_path, lines), line_tokens, 64, vocab_size=lines * LINE, split=split, seed=3)
    measure = c.measure.documents().flatten().tolist()
    fit = c.fit.documents().flatten().tolist()
    seen = measure + fit
    assert len(seen) == len(set(seen))  # no token in two documents, nor in both parts
    whole = (lines * LINE) // 64 * 64  # only the tail beyond the last whole document is in none
    assert len(seen) == whole and lines * LINE - whole < 64
    assert abs(len(measure) / whole - split) <= 64 / whole


def test_boundaries_mark_where_each_line_begins(tmp_path):
    c = Corpus(short_lines(tmp_path), line_tokens, 64, vocab_size=400 * LINE, seed=1)
    for part in ("all", "fit", "measure"):
        view = c.view(part)
        docs = view.tokens[view.starts.unsqueeze(1) + torch.arange(64)]
        expected = docs % LINE == 0  # a line's first token
        expected[:, 0] = False
        assert torch.equal(view.boundaries(), expected)
    assert c.info()["packed"] and c.info()["documents_spanning_texts"] == 150  # 64 > 24: every one spans lines
    assert c.text_starts.tolist() == sorted(c.text_starts.tolist()) and len(c.text_starts) == 400


def test_too_little_text_even_packed_is_named(tmp_path):
    with pytest.raises(InputError, match="48 tokens in all, fewer than one document of 64"):
        Corpus(short_lines(tmp_path, 2), line_tokens, 64, vocab_size=48)


def test_non_utf8_text_is_named_in_one_line(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("café au lait\n".encode("latin-1") * 10)
    for build in (lambda: Corpus(path, list, 4, vocab_size=256), lambda: Text(path, length=4)):
        with pytest.raises(InputError, match=r"latin1.txt' is not UTF-8 \(byte 0xe9 at offset 3\)"):
            build()
    r = cli(f"sample text --path {path}")
    assert r.exit_code == 2 and "is not UTF-8" in r.output and len(r.output.strip().splitlines()) == 1
