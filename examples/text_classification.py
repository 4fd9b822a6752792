"""Classifies short generated reviews as positive or negative:
TextVectorization -> pad_sequences -> Embedding -> LSTM -> Dense(1, sigmoid).

The reviews are built here from word lists, so the data ships with the example: each
mixes neutral words with one to three opinion words, some after "not", which turns the
opinion around ("not bad" is positive). A review is positive when its opinions sum above
zero (ties are left out). The LSTM has to read words in order to get "not" right.

    python examples/text_classification.py       # ~5 s on one core
    TEXT_EPOCHS=5 python examples/text_classification.py
"""

import os
import time

import numpy as np

import deepcore as dc

POSITIVE = "good great excellent wonderful lovely superb enjoyable brilliant fine pleasant".split()
NEGATIVE = "bad awful terrible boring dull poor horrible weak bland annoying".split()
NEUTRAL = (
    "the film movie plot story acting cast music ending scene was is and a it this "
    "really quite very with some of its director script characters overall"
).split()
MAX_LEN = 16


def make_reviews(n, seed):
    """`n` reviews and their labels (1 positive, 0 negative)."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    while len(texts) < n:
        # Phrases stay whole: an insertion never lands between "not" and its word.
        phrases = [[str(w)] for w in rng.choice(NEUTRAL, rng.integers(4, 10))]
        score = 0
        for _ in range(rng.integers(1, 4)):
            positive = rng.random() < 0.5
            phrase = [str(rng.choice(POSITIVE if positive else NEGATIVE))]
            sign = 1 if positive else -1
            if rng.random() < 0.3:
                phrase.insert(0, "not")
                sign = -sign
            score += sign
            phrases.insert(int(rng.integers(0, len(phrases) + 1)), phrase)
        if score == 0:
            continue
        text = " ".join(word for phrase in phrases for word in phrase)
        texts.append(text.capitalize() + rng.choice([".", "!", "..."]))
        labels.append(int(score > 0))
    return texts, np.array(labels, np.float32)


def main(epochs=None, n_train=3000, verbose=True):
    """Trains and evaluates the model; returns the test accuracy."""
    epochs = int(epochs or os.environ.get("TEXT_EPOCHS", 10))
    dc.utils.set_random_seed(0)
    train_texts, y_train = make_reviews(n_train, seed=1)
    test_texts, y_test = make_reviews(1000, seed=2)

    vectorize = dc.layers.TextVectorization(max_tokens=200)
    vectorize.adapt(train_texts)
    vocab = vectorize.vocabulary_size()

    def encode(texts):
        # Ragged token lists (padding 0 stripped), then one array padded in front.
        tokens = [row[row > 0] for row in np.asarray(vectorize(texts))]
        return dc.utils.pad_sequences(tokens, maxlen=MAX_LEN)

    x_train, x_test = encode(train_texts), encode(test_texts)

    model = dc.Sequential(
        [
            dc.Input(shape=(MAX_LEN,)),
            dc.layers.Embedding(vocab, 16),
            dc.layers.LSTM(32),
            dc.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(
        optimizer=dc.optimizers.Adam(3e-3), loss="binary_crossentropy", metrics=["accuracy"]
    )
    start = time.perf_counter()
    model.fit(x_train, y_train, batch_size=32, epochs=epochs, verbose=0)
    seconds = time.perf_counter() - start
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    if verbose:
        print(
            f"examples: {train_texts[0]!r} -> {int(y_train[0])}, {train_texts[1]!r} -> "
            f"{int(y_train[1])}"
        )
        print(f"vocabulary: {vocab} tokens; train {len(x_train)}, test {len(x_test)} reviews")
        print(f"training: {epochs} epochs in {seconds:.1f} s")
        print(f"test accuracy: {accuracy:.4f} (chance {max(y_test.mean(), 1 - y_test.mean()):.2f})")
    return float(accuracy)


if __name__ == "__main__":
    main()
