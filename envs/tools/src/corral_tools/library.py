"""The library the ``search`` tool reads: thirty short made-up documents shipped as package data, ranked by BM25.

The documents describe invented places, ships and people, so an agent cannot answer from memory: it has to
search. Each document has ``facts`` (a label and a value, each also stated in its text); the questions ask
for those facts.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections import Counter
from dataclasses import dataclass
from importlib import resources
from typing import Any

_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset({
    "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "has", "have", "in", "is", "it", "its", "of",
    "on", "or", "the", "to", "was", "were", "what", "which", "who", "with",
})
#: BM25's usual constants: term-frequency saturation and length normalisation.
_K1, _B = 1.5, 0.75


def words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in _STOP]


@dataclass(frozen=True)
class Document:
    id: str
    title: str
    text: str
    facts: dict[str, Any]

    @property
    def year_label(self) -> str:
        """The label of the document's one dated fact (a value between 1000 and 2100)."""
        return next(label for label, value in self.facts.items() if isinstance(value, int) and 1000 <= value <= 2100)

    def hit(self, score: float) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "text": self.text, "facts": dict(self.facts),
                "score": round(score, 3)}


class Library:
    """Documents and a BM25 index over their titles (counted twice) and texts."""

    def __init__(self, documents: list[Document]) -> None:
        self.documents = documents
        self.by_id = {doc.id: doc for doc in documents}
        self._terms = [Counter(words(f"{doc.title} {doc.title} {doc.text}")) for doc in documents]
        self._lengths = [sum(terms.values()) for terms in self._terms]
        self._average = sum(self._lengths) / len(self._lengths)
        frequency = Counter(term for terms in self._terms for term in terms)
        n = len(documents)
        self._idf = {term: math.log(1 + (n - df + 0.5) / (df + 0.5)) for term, df in frequency.items()}

    def search(self, query: str, k: int) -> list[dict[str, Any]]:
        """The ``k`` best matches for ``query``, best first (ties by id); documents sharing no word are left out."""
        terms = words(query)
        scored = []
        for doc, counts, length in zip(self.documents, self._terms, self._lengths, strict=True):
            score = 0.0
            for term in terms:
                tf = counts.get(term, 0)
                if tf:
                    score += self._idf[term] * tf * (_K1 + 1) / (tf + _K1 * (1 - _B + _B * length / self._average))
            if score > 0:
                scored.append((-score, doc.id, doc))
        scored.sort(key=lambda item: (item[0], item[1]))
        return [doc.hit(-negative) for negative, _, doc in scored[:k]]


@functools.cache
def library() -> Library:
    """The shipped library (``library.json``), loaded once per process and shared by every session."""
    raw = json.loads(resources.files(__package__).joinpath("library.json").read_text(encoding="utf-8"))
    return Library([Document(item["id"], item["title"], item["text"], item["facts"]) for item in raw])
