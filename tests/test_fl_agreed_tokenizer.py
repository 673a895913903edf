"""A word vocabulary agreed in advance (``--tokenizer FILE``, ``xcloud tokenizer``), not built from the notes."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from tiny_config import TINY

from xcloud.cli.main import main
from xcloud.cli.run import load_checkpoint, run_training
from xcloud.data import DataIntegrityError, WordTokenizer, generate_corpus
from xcloud.fl.simulation import FederatedRun

# Public text: reference sentences that share the notes' common words but none of one hospital's own.
PUBLIC = [
    "the patient has a blood pressure of 1 2 0 / 8 0 and a heart rate of 7 2 .",
    "labs : sodium , potassium , creatinine , white count , hemoglobin , platelets .",
    "plan : continue monitoring , repeat labs in the morning , wean oxygen as tolerated .",
]


def _public_dir(tmp_path):
    d = tmp_path / "public"
    d.mkdir()
    (d / "reference.txt").write_text("\n\n".join(PUBLIC))
    return d


def test_save_and_load_round_trip_and_bad_files(tmp_path):
    tok = WordTokenizer.build(PUBLIC)
    path = tmp_path / "vocab.json"
    tok.save(path)
    assert WordTokenizer.load(path) == tok
    assert WordTokenizer.load(path).vocab_hash() == tok.vocab_hash()
    path.write_text('{"format": "xcloud-word-tokenizer", "version": 1, "vocab": ["<pad>"]}')
    with pytest.raises(DataIntegrityError, match="vocab.json"):
        WordTokenizer.load(path)
    path.write_bytes(b"\xff\xfe not utf-8")
    with pytest.raises(DataIntegrityError, match="not valid UTF-8"):
        WordTokenizer.load(path)
    path.write_text(tok.to_json()[:-5])  # truncated
    with pytest.raises(DataIntegrityError, match="malformed"):
        WordTokenizer.load(path)
    with pytest.raises(FileNotFoundError):
        WordTokenizer.load(tmp_path / "missing.json")


def test_a_run_uses_the_agreed_vocabulary_not_the_notes(tmp_path):
    agreed = WordTokenizer.build(PUBLIC)
    path = tmp_path / "vocab.json"
    agreed.save(path)
    run = run_training(replace(TINY, method="fedavg", rounds=1, tokenizer=str(path)), tmp_path / "run", quiet=True)
    assert run.tokenizer == agreed
    assert run.gpt_config.vocab_size == agreed.vocab_size
    assert WordTokenizer.load(tmp_path / "run" / "tokenizer.json") == agreed  # kept beside the run
    # A word that only the notes use is unknown to the agreed vocabulary; the default one has it.
    corpus = generate_corpus(hospitals=TINY.clouds, notes_per_hospital=TINY.notes_per_hospital, seed=TINY.seed)
    built = WordTokenizer.build(corpus.texts(), max_vocab=TINY.vocab_size)
    only_in_notes = next(t for t in built.vocab[14:] if t not in agreed.vocab)
    assert agreed.token_to_id(only_in_notes) == agreed.unk_id
    default = FederatedRun(replace(TINY, method="fedavg"), tmp_path / "default")
    assert default.tokenizer == built
    assert default.tokenizer.token_to_id(only_in_notes) != built.unk_id
    assert run.metrics[0].accepted == TINY.clouds


def test_a_refused_resume_leaves_the_runs_vocabulary_and_config_as_they_were(tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_training(replace(TINY, method="fedavg", rounds=1), run_dir, quiet=True)
    before = {name: (run_dir / name).read_bytes() for name in ("tokenizer.json", "config.toml")}
    other = tmp_path / "other.json"
    WordTokenizer.build(PUBLIC).save(other)
    assert main(["run", "--resume", str(run_dir), "--rounds", "2", "--tokenizer", str(other)]) == 2
    assert "does not match this run's model" in capsys.readouterr().err  # another vocabulary size: another layout
    assert {name: (run_dir / name).read_bytes() for name in before} == before
    # A moved copy of the same vocabulary is accepted.
    moved = tmp_path / "moved.json"
    moved.write_bytes(before["tokenizer.json"])
    assert main(["run", "--resume", str(run_dir), "--rounds", "2", "--tokenizer", str(moved)]) == 0


def test_resume_refuses_another_vocabulary(tmp_path):
    path = tmp_path / "vocab.json"
    WordTokenizer.build(PUBLIC).save(path)
    cfg = replace(TINY, method="fedavg", rounds=1, tokenizer=str(path))
    run_training(cfg, tmp_path / "run", quiet=True)
    state = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    # Same vocabulary size, other words: the model's shapes match, the token ids do not.
    other = list(WordTokenizer.build(PUBLIC).vocab)
    other[-1] = "zzzunseen"
    WordTokenizer(other).save(path)
    run = FederatedRun(replace(cfg, rounds=2), tmp_path / "again")
    with pytest.raises(ValueError, match="another vocabulary"):
        run.load_state_dict(state)


def test_tokenizer_and_hf_model_exclude_each_other():
    with pytest.raises(ValueError, match="exclude each other"):
        replace(TINY, tokenizer="vocab.json", hf_model="some/dir").validate()


def test_cli_builds_a_tokenizer_and_reports_coverage(tmp_path, capsys):
    public = _public_dir(tmp_path)
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "n.txt").write_text("heart rate 8 8 , zzzrare finding .")
    out = tmp_path / "vocab.json"
    assert main(["tokenizer", str(public), "--out", str(out), "--coverage", str(notes)]) == 0
    tok = WordTokenizer.load(out)
    assert tok == WordTokenizer.build(PUBLIC)
    text = capsys.readouterr().out
    assert f"{tok.vocab_size} tokens from 3 documents" in text
    # 8 tokens, of which "zzzrare" and "finding" are not in the public text.
    assert "coverage of" in text and "8 tokens, 2 unknown (25.0% <unk>)" in text


def test_cli_missing_paths_are_clear_errors_and_leave_no_run_directory(tmp_path, capsys):
    runs = tmp_path / "runs"
    assert main(["run", "--tokenizer", str(tmp_path / "missing.json"), "--out", str(runs)]) == 2
    assert "missing.json" in capsys.readouterr().err
    assert list(runs.iterdir()) == []  # the failed start left no run directory
    assert main(["run", "--data", str(tmp_path / "nowhere"), "--out", str(runs)]) == 2
    assert "nowhere" in capsys.readouterr().err
    assert list(runs.iterdir()) == []
    assert main(["run", "--resume", str(tmp_path / "nowhere")]) == 2
    assert "not a run directory" in capsys.readouterr().err
    assert main(["tokenizer", str(tmp_path / "nowhere"), "--out", str(tmp_path / "v.json")]) == 2
    assert not (tmp_path / "v.json").exists()


def test_metrics_record_the_tokenizer_file(tmp_path):
    path = tmp_path / "vocab.json"
    WordTokenizer.build(PUBLIC).save(path)
    run_training(replace(TINY, method="fedavg", rounds=1, tokenizer=str(path)), tmp_path / "run", quiet=True)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["config"]["tokenizer"] == str(path)
