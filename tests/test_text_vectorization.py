"""TextVectorization: vocabulary order, standardization, splitting, n-grams, padding, errors,
and Keras' layer on a few corpora where Keras (with TensorFlow) is installed."""

import numpy as np
import pytest
from keras_reference import import_keras

import deepcore as dc
from deepcore.layers import TextVectorization

CORPUS = [
    "The cat sat on the mat.",
    "The DOG ate my homework!",
    "Élan ÄPFEL naïve\u00a0x\u2003y\tz\x1cw\x0bv\x0cu\rt\ns",
    "a-b c_d e'f",
    "",
    "dog dog cat",
    "  lead  trail  ",
    "[UNK] unk UNK",
]


def test_vocabulary_order_by_hand():
    layer = TextVectorization()
    layer.adapt(["b a c a", "c b a", "d"])
    # a: 3, then b and c tie at 2 (decreasing bytes: c before b), then d
    assert layer.get_vocabulary() == ["", "[UNK]", "a", "c", "b", "d"]
    assert layer.get_vocabulary(include_special_tokens=False) == ["a", "c", "b", "d"]
    assert layer.vocabulary_size() == 6
    out = layer(["a b z", "d"])
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out, [[2, 4, 1], [5, 0, 0]])


def test_ties_use_utf8_bytes_and_max_tokens():
    layer = TextVectorization(max_tokens=4, standardize=None)
    layer.adapt(["Z a é b", "é a"])
    # é and a: 2 each (é's UTF-8 bytes 0xC3 0xA9 sort above a), Z and b: 1; 4 - 2 = 2 kept
    assert layer.get_vocabulary() == ["", "[UNK]", "é", "a"]


def test_standardization_is_ascii_as_in_tensorflow():
    layer = TextVectorization()
    layer.adapt(["Élan ÄPFEL Hello, World! it's a-b [x]"])
    vocab = set(layer.get_vocabulary())
    assert {"Élan", "Äpfel", "hello", "world", "its", "ab", "x"} <= vocab
    lower = TextVectorization(standardize="lower")
    lower.adapt(["Hi, THERE!"])
    assert set(lower.get_vocabulary()[2:]) == {"hi,", "there!"}
    strip = TextVectorization(standardize="strip_punctuation")
    strip.adapt(["Hi, THERE!"])
    assert set(strip.get_vocabulary()[2:]) == {"Hi", "THERE"}


def test_whitespace_split_is_ascii_whitespace():
    layer = TextVectorization(standardize=None)
    layer.adapt(["a\u00a0b c\td\ne\x0bf\x0cg\rh\x1ci  j"])
    assert set(layer.get_vocabulary()[2:]) == {"a\u00a0b", "c", "d", "e", "f", "g", "h\x1ci", "j"}


def test_character_split_and_ngrams():
    chars = TextVectorization(split="character", standardize=None)
    chars.adapt(["abca"])
    assert chars.get_vocabulary() == ["", "[UNK]", "a", "c", "b"]
    np.testing.assert_array_equal(chars(["ab", "d"]), [[2, 4], [1, 0]])
    grams = TextVectorization(ngrams=2)
    grams.adapt(["x y z"])
    assert set(grams.get_vocabulary()[2:]) == {"x", "y", "z", "x y", "y z"}
    out = grams(["x y z"])[0]
    vocab = grams.get_vocabulary()
    assert [vocab[i] for i in out] == ["x", "y", "z", "x y", "y z"]
    only = TextVectorization(ngrams=(2, 3))
    only.adapt(["x y z"])
    assert set(only.get_vocabulary()[2:]) == {"x y", "y z", "x y z"}


def test_output_sequence_length_shapes_and_inputs():
    layer = TextVectorization(output_sequence_length=3, vocabulary=["a", "b", "c"])
    np.testing.assert_array_equal(layer(["a b c a b", "c", ""]), [[2, 3, 4], [4, 0, 0], [0, 0, 0]])
    np.testing.assert_array_equal(layer(np.array([["a b"], ["c"]])), [[2, 3, 0], [4, 0, 0]])
    np.testing.assert_array_equal(layer(np.array([b"a", b"b c"])), [[2, 0, 0], [3, 4, 0]])
    np.testing.assert_array_equal(layer("c a"), [4, 2, 0])
    free = TextVectorization(vocabulary=["a"])
    assert free(["", ""]).shape == (2, 0)
    np.testing.assert_array_equal(free("a a q"), [2, 2, 1])
    ragged = TextVectorization(vocabulary=["a"], ragged=True)
    assert [r.tolist() for r in ragged(["a q", ""])] == [[2, 1], []]
    whole = TextVectorization(split=None, vocabulary=["a b"])
    np.testing.assert_array_equal(whole(["a b", "", "A B!", "q"]), [2, 0, 2, 1])


def test_callables():
    layer = TextVectorization(
        standardize=lambda a: np.char.upper(a),
        split=lambda a: [s.split("-") for s in a],
    )
    layer.adapt(["a-b", "b-c-b"])
    assert layer.get_vocabulary() == ["", "[UNK]", "B", "C", "A"]
    np.testing.assert_array_equal(layer(["c-a", "z"]), [[3, 4], [1, 0]])


def test_set_vocabulary_forms(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("\n[UNK]\nx\ny\n", encoding="utf-8")
    for vocab in (["x", "y"], ("", "[UNK]", "x", "y"), np.array(["x", "y"]), str(path), path):
        layer = TextVectorization(vocabulary=vocab)
        assert layer.get_vocabulary() == ["", "[UNK]", "x", "y"]
        np.testing.assert_array_equal(layer(["y x w"]), [[3, 2, 1]])
    layer = TextVectorization()
    layer.adapt(["q"])
    layer.set_vocabulary(["m", "n"])
    assert layer.get_vocabulary() == ["", "[UNK]", "m", "n"]


@pytest.mark.parametrize(
    "vocab, pattern",
    [
        ([], "cannot set an empty vocabulary"),
        (["a", "b", "a"], r"repeated tokens: \['a'\]"),
        (["a", ""], "the padding token '' can only be the first"),
        (["a", "b", "c"], "5 entries"),
        ("/nonexistent/vocab.txt", "does not exist"),
    ],
)
def test_vocabulary_errors(vocab, pattern):
    with pytest.raises(ValueError, match=pattern):
        TextVectorization(max_tokens=4, vocabulary=vocab)


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        ({"max_tokens": 1}, r"`max_tokens` must be an integer >= 2. Received: max_tokens=1"),
        ({"standardize": "upper"}, r"`standardize` must be one of .*standardize='upper'"),
        ({"split": "comma"}, r"`split` must be one of .*split='comma'"),
        ({"ngrams": 0}, r"`ngrams` must be None, an integer >= 1"),
        ({"ngrams": (1, "2")}, r"`ngrams` must be"),
        ({"ngrams": 2, "split": None}, r"`ngrams` needs a `split`"),
        ({"output_mode": "multi_hot"}, r"output_mode='multi_hot' is not implemented in deepcore"),
        ({"output_mode": "tf_idf"}, r"not implemented"),
        ({"output_mode": "words"}, r"`output_mode` must be one of"),
        ({"output_sequence_length": -1}, r"`output_sequence_length` must be an integer >= 0"),
        ({"sparse": True}, r"`sparse=True` is not supported"),
        ({"pad_to_max_tokens": True}, r"`pad_to_max_tokens=True` needs `max_tokens`"),
    ],
)
def test_argument_errors(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        TextVectorization(**kwargs)


def test_use_errors():
    layer = TextVectorization(name="tv")
    with pytest.raises(ValueError, match="'tv' has no vocabulary: call `adapt"):
        layer(["a"])
    layer.adapt(["a b"])
    with pytest.raises(
        ValueError, match=r"shape \(n,\) or \(n, 1\). Received: inputs.shape=\(2, 2\)"
    ):
        layer([["a", "b"], ["c", "d"]])
    with pytest.raises(ValueError, match="expected strings. Received an element of type int"):
        layer([1, 2])
    fixed = TextVectorization(vocabulary=["a"])
    with pytest.raises(ValueError, match="Cannot adapt layer .* after setting a static vocabulary"):
        fixed.adapt(["b"])


def test_adapt_batches_steps_and_reset():
    layer = TextVectorization()
    layer.adapt(iter([["a a"], np.array(["b"]), ["c c c"]]), steps=2)
    assert layer.get_vocabulary() == ["", "[UNK]", "a", "b"]
    layer.adapt("z")  # adapt starts afresh
    assert layer.get_vocabulary() == ["", "[UNK]", "z"]


def test_config_round_trip():
    layer = TextVectorization(max_tokens=10, ngrams=(1, 2), output_sequence_length=5, name="t")
    layer.adapt(["one two three two"])
    config = layer.get_config()
    assert config["vocabulary_size"] == layer.vocabulary_size()
    copy = TextVectorization.from_config({**config, "ngrams": [1, 2], "name": "t2"})
    assert copy.get_vocabulary() == layer.get_vocabulary()
    np.testing.assert_array_equal(copy(["two one"]), layer(["two one"]))


def test_not_a_model_layer():
    layer = TextVectorization(vocabulary=["a"], name="vec")
    with pytest.raises(ValueError, match="'vec' runs on the host before the model.*apply it"):
        dc.Sequential([layer, dc.layers.Dense(1)])
    model = dc.Sequential([dc.Input(shape=(3,))])
    with pytest.raises(ValueError, match="apply it to the data first"):
        model.add(layer)


def test_output_feeds_a_model():
    texts = ["good movie", "bad movie", "good good film", "bad film"] * 4
    labels = np.array([1, 0, 1, 0] * 4, dtype=np.float32)
    layer = TextVectorization(output_sequence_length=4)
    layer.adapt(texts)
    x = layer(texts).astype(np.float32)
    model = dc.Sequential([dc.Input(shape=(4,)), dc.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy")
    assert np.isfinite(model.fit(x, labels, epochs=2, verbose=0).history["loss"]).all()


KERAS_CASES = [
    {},
    {"ngrams": 2},
    {"ngrams": (2, 3)},
    {"split": "character", "max_tokens": 6},
    {"max_tokens": 5, "output_sequence_length": 4},
    {"standardize": "lower"},
    {"standardize": "strip_punctuation"},
    {"standardize": None},
    {"split": None},
    {"output_sequence_length": 9},
    {"standardize": None, "split": "character", "ngrams": 3},
]


@pytest.mark.parametrize("kwargs", KERAS_CASES)
def test_matches_keras(kwargs):
    keras = import_keras(need_tensorflow=True)
    queries = CORPUS + ["unseen words the cat", "x"]
    ref = keras.layers.TextVectorization(**kwargs)
    ref.adapt(CORPUS)
    layer = TextVectorization(**kwargs)
    layer.adapt(CORPUS)
    assert layer.get_vocabulary() == [str(t) for t in ref.get_vocabulary()]
    assert layer.vocabulary_size() == ref.vocabulary_size()
    expected = np.asarray(ref(queries))
    out = layer(queries)
    assert out.dtype == expected.dtype and out.shape == expected.shape
    np.testing.assert_array_equal(out, expected)


def test_matches_keras_on_generated_corpus(rng):
    keras = import_keras(need_tensorflow=True)
    words = ["alpha", "Beta", "gamma!", "delta,", "eps", "zeta", "ETA", "theta."]
    corpus = [" ".join(rng.choice(words, rng.integers(0, 12))) for _ in range(200)]
    for kwargs in ({"max_tokens": 6, "output_sequence_length": 7}, {"ngrams": 2}):
        ref = keras.layers.TextVectorization(**kwargs)
        ref.adapt(corpus)
        layer = TextVectorization(**kwargs)
        layer.adapt(corpus)
        assert layer.get_vocabulary() == [str(t) for t in ref.get_vocabulary()]
        np.testing.assert_array_equal(layer(corpus), np.asarray(ref(corpus)))
    fixed = ["x", "y", "[UNK]"]
    ref = keras.layers.TextVectorization(vocabulary=fixed)
    layer = TextVectorization(vocabulary=fixed)
    assert layer.get_vocabulary() == [str(t) for t in ref.get_vocabulary()]
    np.testing.assert_array_equal(layer(["x [UNK] q y"]), np.asarray(ref(["x [UNK] q y"])))
    np.testing.assert_array_equal(layer("y x"), np.asarray(ref("y x")))
