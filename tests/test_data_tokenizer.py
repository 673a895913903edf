"""Tests of the word tokenizer (xcloud.data.tokenizer)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xcloud.data import DIGITS, SPECIAL_TOKENS, DataIntegrityError, WordTokenizer, generate_corpus, tokenize

TEXTS = [
    "Vitals: HR 92, BP 148/86, SpO2 95% on 2L NC.",
    "pt 58f w/ urosepsis. lactate 4.1, wbc 18.2.",
    "Plan: cardiology consult; serial troponins.",
]


@pytest.fixture(scope="module")
def corpus_tokenizer() -> tuple[list[str], WordTokenizer]:
    texts = generate_corpus(hospitals=4, notes_per_hospital=60, seed=1).texts()
    return texts, WordTokenizer.build(texts)


def test_tokenize_lowercases_and_splits_numbers_into_digits() -> None:
    # Execute
    tokens = tokenize("BP 148/86, SpO2 95%")

    # Assert
    assert tokens == ["bp", "1", "4", "8", "/", "8", "6", ",", "spo", "2", "9", "5", "%"]


def test_tokenize_keeps_written_special_tokens_whole() -> None:
    # Execute / Assert
    assert tokenize("<bos> hr 7 <eos>") == ["<bos>", "hr", "7", "<eos>"]


def test_special_tokens_and_digits_have_fixed_ids_even_without_digits_in_the_text() -> None:
    # Execute
    tok = WordTokenizer.build(["no numbers here at all"])

    # Assert
    assert tok.vocab[:4] == SPECIAL_TOKENS
    assert (tok.pad_id, tok.unk_id, tok.bos_id, tok.eos_id) == (0, 1, 2, 3)
    assert tok.digit_ids == tuple(range(4, 14))
    assert [tok.id_to_token(i) for i in tok.digit_ids] == list(DIGITS)
    assert tok.vocab_size == 14 + 5


def test_vocab_order_is_frequency_then_lexicographic() -> None:
    # Prepare
    texts = ["b a c a b a", "d c"]

    # Execute
    tok = WordTokenizer.build(texts)

    # Assert: a x3, b x2, c x2, d x1
    assert tok.vocab[14:] == ("a", "b", "c", "d")


def test_same_texts_in_any_order_give_the_same_ids(corpus_tokenizer: tuple[list[str], WordTokenizer]) -> None:
    # Prepare
    texts, tok = corpus_tokenizer

    # Execute
    again = WordTokenizer.build(list(reversed(texts)))

    # Assert
    assert again == tok
    assert again.vocab_hash() == tok.vocab_hash()


def test_decode_of_encode_is_the_token_sequence(corpus_tokenizer: tuple[list[str], WordTokenizer]) -> None:
    # Prepare
    texts, tok = corpus_tokenizer

    # Execute / Assert
    for text in texts:
        ids = tok.encode(text)
        assert tok.unk_id not in ids
        assert tok.decode(ids) == " ".join(tokenize(text))
        assert tok.encode(tok.decode(ids)) == ids


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(TEXTS) * 20), max_size=40))
def test_encode_inverts_decode_with_special_tokens(ids: list[int]) -> None:
    # Prepare
    tok = WordTokenizer.build(TEXTS)
    ids = [i % tok.vocab_size for i in ids]

    # Execute
    text = tok.decode(ids, skip_special=False)

    # Assert
    assert tok.encode(text) == ids


def test_encode_adds_bos_and_eos_on_request() -> None:
    # Prepare
    tok = WordTokenizer.build(TEXTS)

    # Execute
    ids = tok.encode("hr 92", add_bos=True, add_eos=True)

    # Assert
    assert ids == [tok.bos_id, tok.token_to_id("hr"), 4 + 9, 4 + 2, tok.eos_id]
    assert tok.decode(ids) == "hr 9 2"


def test_unknown_and_rare_words_become_unk() -> None:
    # Prepare
    tok = WordTokenizer.build(["alpha alpha beta"], min_freq=2)

    # Execute
    ids = tok.encode("alpha beta gamma")

    # Assert
    assert ids == [tok.token_to_id("alpha"), tok.unk_id, tok.unk_id]


def test_max_vocab_caps_the_vocabulary_keeping_the_most_frequent() -> None:
    # Execute
    tok = WordTokenizer.build(["a a a b b c"], max_vocab=16)

    # Assert
    assert tok.vocab_size == 16
    assert tok.vocab[14:] == ("a", "b")


def test_always_include_keeps_canary_words_whatever_their_frequency() -> None:
    # Prepare
    corpus = generate_corpus(hospitals=2, notes_per_hospital=40, seed=0)
    prefixes = [c.prefix for c in corpus.canaries]

    # Execute
    tok = WordTokenizer.build(corpus.texts(), min_freq=10**6, always_include=prefixes)

    # Assert
    for canary in corpus.canaries:
        ids = tok.encode(canary.phrase)
        assert tok.unk_id not in ids
        assert ids[-len(canary.digits) :] == [tok.digit_ids[d] for d in canary.digits]


def test_json_round_trip(corpus_tokenizer: tuple[list[str], WordTokenizer]) -> None:
    # Prepare
    _, tok = corpus_tokenizer

    # Execute
    loaded = WordTokenizer.from_json(tok.to_json())

    # Assert
    assert loaded == tok
    assert loaded.vocab_hash() == tok.vocab_hash()


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("{not json", "malformed"),
        (json.dumps({"format": "other", "version": 1, "vocab": []}), "xcloud-word-tokenizer"),
        (json.dumps({"format": "xcloud-word-tokenizer", "version": 2, "vocab": []}), "version"),
        (json.dumps({"format": "xcloud-word-tokenizer", "version": 1}), "vocab"),
        (
            json.dumps({"format": "xcloud-word-tokenizer", "version": 1, "vocab": [*SPECIAL_TOKENS, "a"]}),
            "digits",
        ),
    ],
)
def test_from_json_rejects_bad_documents(document: str, message: str) -> None:
    # Execute / Assert
    with pytest.raises(DataIntegrityError, match=message):
        WordTokenizer.from_json(document)


@pytest.mark.parametrize(
    ("vocab", "message"),
    [
        (["a", *SPECIAL_TOKENS, *DIGITS], "start with"),
        ([*SPECIAL_TOKENS, *DIGITS, "a", "a"], "duplicates"),
        ([*SPECIAL_TOKENS, *DIGITS, "two words"], "single"),
        ([*SPECIAL_TOKENS, *DIGITS, "Upper"], "single"),
        ([*SPECIAL_TOKENS, *DIGITS[:9]], "digits"),
    ],
)
def test_constructor_rejects_bad_vocabularies(vocab: list[str], message: str) -> None:
    # Execute / Assert
    with pytest.raises(ValueError, match=message):
        WordTokenizer(vocab)


def test_build_rejects_impossible_sizes() -> None:
    # Execute / Assert
    with pytest.raises(ValueError, match="max_vocab"):
        WordTokenizer.build(TEXTS, max_vocab=13)
    with pytest.raises(ValueError, match="min_freq"):
        WordTokenizer.build(TEXTS, min_freq=0)


def test_out_of_range_ids_are_rejected() -> None:
    # Prepare
    tok = WordTokenizer.build(TEXTS)

    # Execute / Assert
    with pytest.raises(ValueError, match="outside"):
        tok.decode([tok.vocab_size])
    with pytest.raises(ValueError, match="outside"):
        tok.id_to_token(-1)
