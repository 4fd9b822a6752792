"""`TextVectorization`: strings to integer token sequences, on the host, before the model.

Keras runs its TextVectorization inside the model (on TensorFlow string ops); deepcore's
engine holds only numbers, so this layer is applied to the data first and its integer
output goes to the model:

    vectorize = TextVectorization(max_tokens=20000, output_sequence_length=200)
    vectorize.adapt(train_texts)
    model.fit(vectorize(train_texts), y_train)
"""

from __future__ import annotations

import collections
import os
import re
import string
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .._registry import check_int

__all__ = ["TextVectorization"]

_PAD, _OOV = "", "[UNK]"
_STANDARDIZE = ("lower_and_strip_punctuation", "lower", "strip_punctuation")
_SPLIT = ("whitespace", "character")
_OTHER_MODES = ("one_hot", "multi_hot", "count", "tf_idf", "binary", "tf-idf")

# TensorFlow's lower-casing (tf.strings.lower without an encoding) changes ASCII letters
# only; Keras' punctuation regex is exactly string.punctuation.
_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
_STRIP = str.maketrans("", "", string.punctuation)
_LOWER_STRIP = str.maketrans(string.ascii_uppercase, string.ascii_lowercase, string.punctuation)
_TABLES = {
    "lower_and_strip_punctuation": _LOWER_STRIP,
    "lower": _LOWER,
    "strip_punctuation": _STRIP,
}
# tf.strings.split without a separator splits at runs of ASCII whitespace.
_TOKEN = re.compile(r"[^ \t\n\v\f\r]+")

_counter: collections.Counter = collections.Counter()


def _auto_name() -> str:
    _counter["text_vectorization"] += 1
    n = _counter["text_vectorization"]
    return "text_vectorization" if n == 1 else f"text_vectorization_{n - 1}"


class TextVectorization:
    """Maps strings to sequences of integer token indices, as `keras.layers.TextVectorization`
    with `output_mode="int"`.

    Each string is standardized (by default: ASCII letters lower-cased, ASCII punctuation
    `!"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~` removed), split into tokens (by default at runs of
    ASCII whitespace), optionally joined into n-grams, and each token replaced by its index
    in the vocabulary: 0 is the padding token "", 1 the out-of-vocabulary token "[UNK]",
    then the learned tokens. `adapt(texts)` learns the vocabulary as Keras does: tokens by
    decreasing count, ties in decreasing order of their UTF-8 bytes, at most
    `max_tokens - 2` of them. The rows are padded with 0 at the end to the longest row of
    the batch, or padded/truncated to `output_sequence_length`.

    The layer runs in Python on NumPy arrays: apply it to the data and give its output to the
    model (it cannot be added to a `Sequential`, whose engine holds only numbers):

        vectorize = TextVectorization(max_tokens=10000, output_sequence_length=100)
        vectorize.adapt(train_texts)
        x_train = vectorize(train_texts)   # int64 array (n, 100)

    Args:
        max_tokens: The largest vocabulary, the padding and OOV tokens included (an int
            >= 2), or None for no limit.
        standardize: "lower_and_strip_punctuation", "lower", "strip_punctuation", None, or
            a callable taking a 1-D NumPy array of str and returning one of the same length
            (as Keras on its non-TensorFlow backends).
        split: "whitespace", "character" (one token per Unicode code point), None (the
            whole string is one token), or a callable taking a 1-D NumPy array of str and
            returning one sequence of tokens per string.
        ngrams: None, an int n (all n-grams of 1..n tokens) or a tuple of ints (those
            widths): each n-gram is its tokens joined by a space, listed width by width.
        output_mode: "int". ("one_hot", "multi_hot", "count" and "tf_idf" are not in
            deepcore yet and raise a ValueError.)
        output_sequence_length: The length of every output row (padded with 0 at the end or
            truncated), or None: the longest row of each call.
        vocabulary: A list (or 1-D array) of tokens, or the path of a text file with one
            token per line; "" and "[UNK]" may open it in that order. A layer given a
            vocabulary cannot be adapted.
        ragged: Whether to return a list of 1-D int64 arrays (one per string, unpadded)
            instead of a padded array (Keras: a `tf.RaggedTensor`).
        encoding: The encoding of `bytes` inputs.
        name: The layer's name.

    Differences from Keras: inputs and outputs are NumPy arrays; `get_config()` holds the
    vocabulary learned by `adapt` too (Keras keeps it in the saved model's assets), so
    `from_config` gives a ready layer; n-grams need a `split`.
    """

    def __init__(
        self,
        max_tokens: int | None = None,
        standardize: str | Callable[[np.ndarray], Any] | None = "lower_and_strip_punctuation",
        split: str | Callable[[np.ndarray], Any] | None = "whitespace",
        ngrams: int | Sequence[int] | None = None,
        output_mode: str = "int",
        output_sequence_length: int | None = None,
        pad_to_max_tokens: bool = False,
        vocabulary: Sequence[str] | np.ndarray | str | os.PathLike[str] | None = None,
        idf_weights: Any = None,
        sparse: bool = False,
        ragged: bool = False,
        encoding: str = "utf-8",
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.pop("vocabulary_size", None)  # in Keras' configs
        kwargs.pop("dtype", None)
        kwargs.pop("trainable", None)
        if kwargs:
            raise TypeError(f"Unrecognized keyword arguments passed to TextVectorization: {kwargs}")
        self.name = name or _auto_name()
        owner = f"TextVectorization {self.name!r}"
        self._owner = owner
        if max_tokens is not None:
            max_tokens = check_int("max_tokens", max_tokens, 2, owner=owner)
        if not (standardize is None or callable(standardize) or standardize in _STANDARDIZE):
            raise ValueError(
                f"{owner}: `standardize` must be one of {_STANDARDIZE}, None or a callable. "
                f"Received: standardize={standardize!r}"
            )
        if not (split is None or callable(split) or split in _SPLIT):
            raise ValueError(
                f"{owner}: `split` must be one of {_SPLIT}, None or a callable. "
                f"Received: split={split!r}"
            )
        if isinstance(ngrams, list):
            ngrams = tuple(ngrams)
        widths = _ngram_widths(ngrams, owner)
        if widths is not None and split is None:
            raise ValueError(
                f"{owner}: `ngrams` needs a `split` to make tokens. Received: ngrams={ngrams!r} "
                "with split=None"
            )
        if output_mode in _OTHER_MODES:
            raise ValueError(
                f"{owner}: output_mode={output_mode!r} is not implemented in deepcore yet; "
                'only output_mode="int" is. Received: output_mode=' + repr(output_mode)
            )
        if output_mode != "int":
            raise ValueError(
                f"{owner}: `output_mode` must be one of ('int', 'one_hot', 'multi_hot', "
                f"'count', 'tf_idf'). Received: output_mode={output_mode!r}"
            )
        if output_sequence_length is not None:
            output_sequence_length = check_int(
                "output_sequence_length", output_sequence_length, 0, owner=owner
            )
        if idf_weights is not None:
            raise ValueError(
                f"{owner}: `idf_weights` is only for output_mode='tf_idf'. "
                f"Received: output_mode={output_mode!r} and idf_weights={idf_weights!r}"
            )
        if sparse:
            raise ValueError(f"{owner}: `sparse=True` is not supported. Received: sparse={sparse}")
        if pad_to_max_tokens and max_tokens is None:
            raise ValueError(
                f"{owner}: `pad_to_max_tokens=True` needs `max_tokens`. "
                f"Received: max_tokens={max_tokens}"
            )
        self.max_tokens = max_tokens
        self.standardize = standardize
        self.split = split
        self.ngrams = ngrams
        self._widths = widths
        self.output_mode = output_mode
        self.output_sequence_length = output_sequence_length
        self.pad_to_max_tokens = bool(pad_to_max_tokens)
        self.ragged = bool(ragged)
        self.encoding = encoding
        self._vocab: list[str] | None = None  # learned tokens, without "" and "[UNK]"
        self._index: dict[str, int] = {}
        self._has_input_vocabulary = vocabulary is not None
        if vocabulary is not None:
            self.set_vocabulary(vocabulary)

    # --- vocabulary
    def adapt(self, data, batch_size=None, steps=None) -> None:
        """Learns the vocabulary from `data`: the tokens by decreasing count (ties in
        decreasing order of their UTF-8 bytes), at most `max_tokens - 2` of them.

        Args:
            data: Strings: a list, tuple or NumPy array (shape `(n,)` or `(n, 1)`), one
                string, or any other iterable of such batches (a generator, say).
            batch_size: Ignored (Keras' argument; arrays are read at once).
            steps: With an iterable of batches, how many batches to read (all when None).
        """
        if self._has_input_vocabulary:
            raise ValueError(
                f"Cannot adapt layer {self.name!r} after setting a static vocabulary via "
                "the `vocabulary` argument or the `set_vocabulary()` method."
            )
        if steps is not None:
            steps = check_int("steps", steps, 0, owner=self._owner)
        counts: collections.Counter = collections.Counter()
        if isinstance(data, (list, tuple, np.ndarray, str, bytes)):
            batches = [data]
        elif hasattr(data, "__iter__"):
            batches = data
        else:
            raise ValueError(
                f"{self._owner}: `adapt` expects strings (a list, an array, or an iterable of "
                f"batches of strings). Received: {type(data).__name__}"
            )
        for i, batch in enumerate(batches):
            if steps is not None and i >= steps:
                break
            tokens, _ = self._tokenize(batch)
            for row in tokens:
                counts.update(row)
        counts.pop(_PAD, None)
        counts.pop(_OOV, None)
        # Keras: np.lexsort((tokens, counts))[::-1] on UTF-8 bytes
        ranked = sorted(counts.items(), key=lambda kv: (kv[1], kv[0].encode("utf-8")))[::-1]
        if self.max_tokens is not None:
            ranked = ranked[: self.max_tokens - 2]
        self._set_tokens([token for token, _ in ranked])

    def set_vocabulary(self, vocabulary, idf_weights=None) -> None:
        """Sets the vocabulary: a list, tuple or 1-D array of tokens, or the path of a text
        file holding one token per line. It may start with "" and "[UNK]" (in that order);
        otherwise they are added in front.

        Raises:
            ValueError: an empty vocabulary, a repeated token, "" elsewhere than first, more
                tokens than `max_tokens`, or `idf_weights` (output_mode "tf_idf" only).
        """
        if idf_weights is not None:
            raise ValueError(
                f"{self._owner}: `idf_weights` is only for output_mode='tf_idf'. "
                f"Received: output_mode={self.output_mode!r}"
            )
        if isinstance(vocabulary, (str, os.PathLike)):
            path = os.fspath(vocabulary)
            if not os.path.isfile(path):
                raise ValueError(f"{self._owner}: vocabulary file {path} does not exist.")
            with open(path, encoding=self.encoding) as f:
                vocabulary = f.read().split("\n")
            if vocabulary and vocabulary[-1] == "":
                vocabulary.pop()  # the last line's newline
        tokens = [_as_str(t, self.encoding) for t in np.asarray(vocabulary, dtype=object).ravel()]
        if not tokens:
            raise ValueError(
                f"{self._owner}: cannot set an empty vocabulary. Received: vocabulary={vocabulary}"
            )
        if tokens[:2] == [_PAD, _OOV]:
            tokens = tokens[2:]
        repeated = sorted({t for t, c in collections.Counter(tokens).items() if c > 1})
        if repeated:
            raise ValueError(
                f"{self._owner}: the vocabulary has repeated tokens: {repeated}. Each token "
                "must appear once."
            )
        if _PAD in tokens:
            raise ValueError(
                f"{self._owner}: the padding token '' can only be the first vocabulary entry, "
                f"followed by '[UNK]'. Received '' at vocabulary index {tokens.index(_PAD)} "
                "(of the tokens after the special ones). A vocabulary need not list '' and "
                "'[UNK]'."
            )
        if self.max_tokens is not None and len(tokens) + 2 > self.max_tokens:
            raise ValueError(
                f"{self._owner}: the vocabulary has {len(tokens) + 2} entries (with '' and "
                f"'[UNK]'), more than max_tokens={self.max_tokens}."
            )
        self._has_input_vocabulary = True
        self._set_tokens(tokens)

    def _set_tokens(self, tokens: list[str]) -> None:
        self._vocab = list(tokens)
        self._index = {t: i + 2 for i, t in enumerate(self._vocab)}
        self._index[_PAD] = 0

    def get_vocabulary(self, include_special_tokens: bool = True) -> list[str]:
        """The vocabulary: with the special tokens, `get_vocabulary()[i]` is the token that
        index `i` stands for ("" for 0, "[UNK]" for 1)."""
        tokens = list(self._vocab or [])
        return [_PAD, _OOV] + tokens if include_special_tokens else tokens

    def vocabulary_size(self) -> int:
        """The number of indices the layer outputs: the vocabulary with "" and "[UNK]"."""
        return len(self._vocab or []) + 2

    # --- calling
    def __call__(self, texts):
        """The token indices of `texts`.

        Args:
            texts: One string, or strings of shape `(n,)` or `(n, 1)` (list, tuple, NumPy
                array of str, bytes or objects).

        Returns:
            An int64 array: `(n, output_sequence_length)` (or the longest row when that is
            None) for a batch, `(length,)` for one string; with `ragged=True` a list of
            1-D arrays. With `split=None` each string is one token and the output has the
            input's shape.
        """
        if self._vocab is None:
            raise ValueError(
                f"{self._owner} has no vocabulary: call `adapt(texts)` or pass "
                "`vocabulary=` (or call `set_vocabulary`) before using it."
            )
        rows, shape = self._tokenize(texts)
        index = self._index
        ids = [np.fromiter((index.get(t, 1) for t in row), np.int64, len(row)) for row in rows]
        if self.split is None:
            out = np.array([r[0] for r in ids], dtype=np.int64).reshape(shape)
            return self._fit_length(out) if self.output_sequence_length is not None else out
        if shape == ():
            ids = ids[0]
            if self.ragged or self.output_sequence_length is None:
                return ids
            return self._fit_length(ids)
        if self.ragged:
            return ids
        length = self.output_sequence_length
        if length is None:
            length = max((len(r) for r in ids), default=0)
        out = np.zeros((len(ids), length), dtype=np.int64)
        for i, r in enumerate(ids):
            r = r[:length]
            out[i, : len(r)] = r
        return out

    def _fit_length(self, out: np.ndarray) -> np.ndarray:
        """`out` truncated or padded with 0 on its last axis to output_sequence_length."""
        length = self.output_sequence_length
        out = out[..., :length]
        pad = [(0, 0)] * (out.ndim - 1) + [(0, length - out.shape[-1])]
        return np.pad(out, pad)

    def _tokenize(self, texts):
        """The token lists of `texts` (one per string) and the shape of the strings (the
        batch shape, `(n, 1)` squeezed unless split is None)."""
        strings, shape = self._strings(texts)
        if self.standardize in _TABLES:
            table = _TABLES[self.standardize]
            strings = [s.translate(table) for s in strings]
        elif callable(self.standardize):
            result = self.standardize(np.array(strings, dtype=str).reshape(-1))
            strings = [_as_str(s, self.encoding) for s in np.asarray(result, dtype=object).ravel()]
            if len(strings) != int(np.prod(shape, dtype=np.int64)):
                raise ValueError(
                    f"{self._owner}: the `standardize` callable returned {len(strings)} "
                    f"strings for {int(np.prod(shape, dtype=np.int64))} inputs."
                )
        if self.split is None:
            return [[s] for s in strings], shape
        if len(shape) == 2:
            if shape[1] != 1:
                raise ValueError(
                    f"{self._owner}: to split strings into tokens, the input must have shape "
                    f"(n,) or (n, 1). Received: inputs.shape={shape}"
                )
            shape = shape[:1]
        if self.split == "whitespace":
            rows = [_TOKEN.findall(s) for s in strings]
        elif self.split == "character":
            rows = [list(s) for s in strings]
        else:
            result = self.split(np.array(strings, dtype=str).reshape(-1))
            rows = [[_as_str(t, self.encoding) for t in row] for row in result]
            if len(rows) != len(strings):
                raise ValueError(
                    f"{self._owner}: the `split` callable returned {len(rows)} token lists "
                    f"for {len(strings)} strings."
                )
        if self._widths is not None:
            rows = [_ngrams(row, self._widths) for row in rows]
        return rows, shape

    def _strings(self, texts):
        """`texts` as a flat list of str and the shape they came in."""
        if isinstance(texts, (str, bytes)):
            return [_as_str(texts, self.encoding)], ()
        try:
            arr = np.asarray(texts, dtype=object)
        except ValueError as e:
            raise ValueError(f"{self._owner}: the inputs are not an array of strings: {e}") from e
        if arr.ndim > 2:
            raise ValueError(
                f"{self._owner}: expected strings of shape (n,) or (n, 1). "
                f"Received: inputs.shape={arr.shape}"
            )
        flat = []
        for s in arr.ravel():
            if not isinstance(s, (str, bytes, np.str_, np.bytes_)):
                raise ValueError(
                    f"{self._owner}: expected strings. Received an element of type "
                    f"{type(s).__name__}: {s!r}"
                )
            flat.append(_as_str(s, self.encoding))
        return flat, arr.shape

    # --- configuration
    def get_config(self) -> dict:
        """The constructor's arguments (Keras' keys), with the current vocabulary."""
        return {
            "name": self.name,
            "max_tokens": self.max_tokens,
            "standardize": self.standardize,
            "split": self.split,
            "ngrams": self.ngrams,
            "output_mode": self.output_mode,
            "output_sequence_length": self.output_sequence_length,
            "pad_to_max_tokens": self.pad_to_max_tokens,
            "sparse": False,
            "ragged": self.ragged,
            "vocabulary": None if self._vocab is None else list(self._vocab),
            "idf_weights": None,
            "encoding": self.encoding,
            "vocabulary_size": self.vocabulary_size(),
        }

    @classmethod
    def from_config(cls, config: dict) -> TextVectorization:
        config = dict(config)
        if isinstance(config.get("ngrams"), list):
            config["ngrams"] = tuple(config["ngrams"])
        return cls(**config)

    def add_to(self, engine) -> None:
        """Not a model layer: raises the error that says to apply it to the data."""
        raise ValueError(_NOT_IN_MODEL.format(name=self.name))

    def __repr__(self) -> str:
        return f"<TextVectorization name={self.name!r}, vocabulary_size={self.vocabulary_size()}>"


_NOT_IN_MODEL = (
    "TextVectorization {name!r} runs on the host before the model, not inside it: apply it "
    "to the data first and give the model its integer output, e.g. "
    "`x = vectorize(texts); model.fit(x, y)`."
)


def _as_str(value, encoding: str) -> str:
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode(encoding)
    return str(value)


def _ngram_widths(ngrams, owner: str):
    """The n-gram widths (a tuple) of the `ngrams` argument, or None."""
    if ngrams is None:
        return None
    if isinstance(ngrams, (int, np.integer)) and not isinstance(ngrams, bool) and ngrams >= 1:
        return tuple(range(1, int(ngrams) + 1))
    if (
        isinstance(ngrams, tuple)
        and ngrams
        and all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) for n in ngrams)
        and all(n >= 1 for n in ngrams)
    ):
        return tuple(int(n) for n in ngrams)
    raise ValueError(
        f"{owner}: `ngrams` must be None, an integer >= 1, or a tuple of integers >= 1. "
        f"Received: ngrams={ngrams!r}"
    )


def _ngrams(tokens: list[str], widths: tuple) -> list[str]:
    """All n-grams of `tokens` for each width in turn, as tf.strings.ngrams(separator=" ")."""
    out: list[str] = []
    for w in widths:
        out.extend(" ".join(tokens[i : i + w]) for i in range(len(tokens) - w + 1))
    return out
