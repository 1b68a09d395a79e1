"""The synthetic vocabulary of a stand-in: a sentencepiece-style one of the preset's size,
for every architecture, since tokenizer values do not change speed."""

from __future__ import annotations

import itertools
import string
from typing import Iterator

from benchkit.core.errors import BenchkitError


def synthetic_vocab(n_vocab: int) -> tuple[list[str], list[float], list[int]]:
    """<unk>, <s>, </s>, the 256 byte tokens, then word pieces up to `n_vocab`.

    With byte fallback any text tokenizes; the pieces (printable characters, then letter
    pairs and triples with and without the word-start mark) make English split into a few
    characters per token, about as a real vocabulary does, so a chat prompt has a
    realistic token count. Scores favour earlier (shorter) pieces.
    """
    from gguf import TokenType

    if n_vocab < 259 + 1:
        raise BenchkitError(f"vocabulary of {n_vocab} is too small for a synthetic tokenizer "
                            "(needs at least 260)", field="n_vocab")
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    types = [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL] + [TokenType.BYTE] * 256
    seen = set(tokens)
    for piece in _pieces():
        if len(tokens) >= n_vocab:
            break
        if piece not in seen:
            seen.add(piece)
            tokens.append(piece)
            types.append(TokenType.NORMAL)
    scores = [0.0] * 259 + [-float(i) for i in range(len(tokens) - 259)]
    return tokens, scores, [int(t) for t in types]


def _pieces() -> Iterator[str]:
    singles = [chr(c) for c in range(33, 127)]
    yield "\u2581"
    yield from singles
    yield from ("\u2581" + c for c in singles)
    for n in itertools.count(2):
        for combo in itertools.product(string.ascii_lowercase, repeat=n):
            word = "".join(combo)
            yield "\u2581" + word
            yield word
