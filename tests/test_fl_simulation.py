"""End-to-end federated runs on CPU: every method, encryption equivalence, resume, faults, CLI."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from tiny_config import TINY

from xcloud.cli.main import main
from xcloud.cli.run import load_checkpoint, run_training
from xcloud.data import DataIntegrityError
from xcloud.fl.config import load_config
from xcloud.fl.errors import ClientFailure, NotEnoughClients
from xcloud.fl.simulation import FederatedRun
from xcloud.privacy import client_level_epsilon


def _vec(run: FederatedRun) -> np.ndarray:
    return run.layout.flatten(run.global_state)


@pytest.mark.parametrize("method", ["centralized", "fedavg", "he", "dp", "xcloud"])
def test_each_method_trains_end_to_end(method, tmp_path):
    cfg = replace(TINY, method=method)
    run = FederatedRun(cfg, tmp_path)
    first = run.run_round(0)
    second = run.run_round(1)
    assert np.isfinite(second.val_loss)
    assert second.val_loss < first.val_loss + 0.5  # training, not diverging
    if method in ("dp", "xcloud"):
        assert second.epsilon is not None and 0 < first.epsilon < second.epsilon <= cfg.dp_epsilon * 1.05
    if method in ("he", "xcloud"):
        assert second.encrypt_s > 0 and second.decrypt_s > 0
    if method != "centralized":
        assert second.bytes_up > 0 and second.accepted == cfg.clouds


def test_encryption_does_not_change_learning(tmp_path):
    plain = FederatedRun(replace(TINY, method="fedavg"), tmp_path / "a")
    enc = FederatedRun(replace(TINY, method="he"), tmp_path / "b")
    for r in range(2):
        plain.run_round(r)
        enc.run_round(r)
    assert enc.plan.fraction == 1.0
    diff = np.abs(_vec(plain) - _vec(enc)).max()
    assert diff < 2**-16


def test_public_key_mode_matches_within_flooding_noise(tmp_path):
    plain = FederatedRun(replace(TINY, method="fedavg"), tmp_path / "a")
    pk = FederatedRun(replace(TINY, method="he", key_mode="public"), tmp_path / "b")
    plain.run_round(0)
    pk.run_round(0)
    assert not pk.clients[1].keys.has_secret
    assert np.abs(_vec(plain) - _vec(pk)).max() < 2**-14


def test_xcloud_encrypts_embedding_and_head_only(tmp_path):
    run = FederatedRun(replace(TINY, method="xcloud"), tmp_path)
    assert set(run.plan.encrypted) == {"wte.weight", "lm_head.weight"}
    assert 0 < run.plan.fraction < 1


@pytest.mark.parametrize(
    "global_step",
    [{"server_momentum": 0.5}, {"server_optimizer": "adam", "server_lr": 0.01, "server_momentum": 0.9}],
    ids=["fedavgm", "fedadam"],
)
def test_resume_gives_the_same_result_as_an_uninterrupted_run(tmp_path, global_step):
    cfg = replace(TINY, method="fedavg", rounds=2, **global_step)  # the global step's state is checkpointed too
    full = run_training(cfg, tmp_path / "full", quiet=True)
    part = run_training(replace(cfg, rounds=1), tmp_path / "part", quiet=True)
    assert part.next_round == 1
    resumed = run_training(cfg, tmp_path / "part", resume=True, quiet=True)
    assert [m.round for m in resumed.metrics] == [0, 1]
    np.testing.assert_array_equal(_vec(full), _vec(resumed))


def test_a_run_directory_from_before_the_scaffold_default_resumes_as_plain_fedavg(tmp_path, capsys):
    """Its config.toml has no drift_correction (nor, before 2026-11-23, server_momentum): plain FedAvg then.

    Nor, before 2026-12-04, lr_schedule and DP-SGD's own schedule keys: constant rates then.
    """
    cfg = replace(TINY, method="fedavg", rounds=2)
    full = run_training(cfg, tmp_path / "full", quiet=True)
    old = tmp_path / "old"
    run_training(replace(cfg, rounds=1), old, quiet=True)
    toml = old / "config.toml"
    keys = ("drift_correction", "server_momentum", "dp_batch_size", "lr_schedule", "dp_lr_final", "dp_lr_decay")
    kept = [ln for ln in toml.read_text().splitlines() if not ln.startswith(keys)]
    toml.write_text("\n".join(kept) + "\n")
    assert main(["run", "--resume", str(old), "--rounds", "2"]) == 0
    out = json.loads((old / "metrics.json").read_text())
    assert [out["config"][k] for k in keys] == ["none", 0.0, 0, "constant", -1.0, -1.0]
    assert [r["val_loss"] for r in out["rounds"]] == [m.val_loss for m in full.metrics]


def _hook(kind: str):
    seen: dict[str, bytes] = {}

    def hook(r: int, cid: str, msg: bytes) -> bytes:
        if cid != "cloud-1":
            return msg
        if kind == "crash":
            raise ClientFailure("cloud-1 crashed mid-round")
        if kind == "tamper":
            b = bytearray(msg)
            b[len(b) // 3] ^= 0x40
            return bytes(b)
        if kind == "stale":
            old = seen.get(cid)
            seen[cid] = msg
            return old if old is not None else msg
        raise AssertionError(kind)

    return hook


@pytest.mark.parametrize("kind", ["crash", "tamper", "stale"])
def test_a_faulty_client_is_left_out_and_the_round_goes_on(kind, tmp_path):
    run = FederatedRun(replace(TINY, method="he"), tmp_path, client_hook=_hook(kind))
    run.run_round(0)
    m = run.run_round(1)
    assert "cloud-1" in m.dropped
    assert m.accepted == 2
    assert np.isfinite(m.val_loss)
    if kind != "stale":
        assert run.metrics[0].accepted == 2


def test_a_client_whose_training_raises_any_error_is_left_out(tmp_path, caplog):
    """Not only ClientFailure: a CUDA error, say, in one cloud's training must not stop the round."""
    run = FederatedRun(replace(TINY, method="he"), tmp_path)

    def crash(*args, **kwargs):
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    run.clients[1].fit = crash
    with caplog.at_level("WARNING", logger="xcloud"):
        m = run.run_round(0)
    assert m.dropped == ["cloud-1"] and m.accepted == 2
    assert "RuntimeError: CUDA error" in caplog.text
    assert np.isfinite(m.val_loss)


def test_a_resume_the_checkpoint_refuses_keeps_the_runs_config(tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_training(replace(TINY, method="fedavg", rounds=1), run_dir, quiet=True)
    before = (run_dir / "config.toml").read_text()
    assert main(["run", "--resume", str(run_dir), "--rounds", "2", "--lr", "0.5"]) == 2
    assert "the checkpoint was made with lr=0.003; this run has lr=0.5" in capsys.readouterr().err
    assert (run_dir / "config.toml").read_text() == before  # not overwritten by the refused options
    # Options given without --rounds are no longer ignored: refused too, or applied where they may change.
    assert main(["run", "--resume", str(run_dir), "--method", "he"]) == 2
    assert "made with method='fedavg'; this run has method='he'" in capsys.readouterr().err
    assert main(["run", "--resume", str(run_dir), "--rounds", "2"]) == 0
    assert main(["run", "--resume", str(run_dir), "--threads", "1"]) == 0  # nothing left to run, but accepted
    assert "threads = 1" in (run_dir / "config.toml").read_text()


@pytest.mark.parametrize(
    "damage",
    [
        lambda s: s.pop("metrics"),
        lambda s: s.pop("global_opt"),
        lambda s: s["metrics"][0].update(unknown_field=1.0),
        lambda s: s["global_state"].pop("wte.weight"),
        lambda s: s.update(metrics=5),
    ],
    ids=["no-metrics", "no-optimizer", "extra-metric-field", "missing-tensor", "metrics-not-a-list"],
)
def test_a_structurally_damaged_checkpoint_gets_a_clear_error(tmp_path, damage):
    run_training(replace(TINY, method="fedavg", rounds=1), tmp_path / "run", quiet=True)
    state = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    damage(state)
    with pytest.raises(ValueError, match="checkpoint"):
        FederatedRun(replace(TINY, method="fedavg", rounds=2), tmp_path / "again").load_state_dict(state)


def test_client_level_epsilon_accounts_a_dropout_with_the_smaller_multiplier(tmp_path):
    """2 of 3 clouds report: the aggregate carries 2 of the 3 noise shares, multiplier z sqrt(2/3)."""
    cfg = replace(TINY, method="fedavg", client_dp_noise=1.0, client_clip=0.05)
    m = FederatedRun(cfg, tmp_path, client_hook=_hook("crash")).run_round(0)
    assert m.accepted == 2
    assert m.client_epsilon == pytest.approx(client_level_epsilon(math.sqrt(2 / 3), 1, cfg.dp_delta), rel=1e-9)
    assert m.client_epsilon > client_level_epsilon(1.0, 1, cfg.dp_delta)


def test_epsilon_is_recorded_per_cloud_including_clouds_left_out(tmp_path):
    """cloud-1 trains (and spends budget) every round but its update never arrives: its epsilon still counts."""
    run = FederatedRun(replace(TINY, method="dp"), tmp_path, client_hook=_hook("crash"))
    m = run.run_round(0)
    assert m.dropped == ["cloud-1"]
    assert sorted(m.cloud_epsilon) == ["cloud-0", "cloud-1", "cloud-2"]
    assert m.cloud_epsilon == {cid: dp.epsilon() for cid, dp in run.dp.items()}
    assert m.cloud_epsilon["cloud-1"] > 0 and m.epsilon == max(m.cloud_epsilon.values())


def test_values_beyond_max_value_are_clipped_counted_and_logged(tmp_path, caplog):
    run = FederatedRun(replace(TINY, method="he"), tmp_path)
    run.run_round(0)
    assert run.metrics[0].clipped == 0  # a normal round: nothing near max_value
    big = run.clients[1]
    big.update_transform = lambda d: d * np.float32(1e6)  # pushes most values beyond max_value = 1
    with caplog.at_level("WARNING", logger="xcloud.run"):
        m = run.run_round(1)
    assert m.accepted == 3 and m.clipped > 0
    assert f"{m.clipped} encrypted values beyond max_value" in caplog.text
    assert run.state_dict()["metrics"][-1]["clipped"] == m.clipped  # kept in checkpoints and metrics.json


def test_round_fails_cleanly_below_the_minimum(tmp_path):
    run = FederatedRun(replace(TINY, method="fedavg", min_clients=3), tmp_path, client_hook=_hook("crash"))
    before = _vec(run).copy()
    with pytest.raises(NotEnoughClients):
        run.run_round(0)
    np.testing.assert_array_equal(before, _vec(run))


def test_corrupt_checkpoint_gets_a_clear_error(tmp_path):
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="corrupt"):
        load_checkpoint(path)
    with pytest.raises(ValueError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")


@pytest.mark.parametrize(
    "change", [{"method": "he"}, {"ckks": "compact"}, {"seed": 1}, {"clouds": 4}, {"partition": "iid"}]
)
def test_resume_refuses_a_changed_configuration_but_not_more_rounds(tmp_path, change):
    """Resuming a fedavg checkpoint as he (say) would continue it silently as another experiment."""
    cfg = replace(TINY, method="fedavg", rounds=1)
    state = run_training(cfg, tmp_path / "run", quiet=True).state_dict()
    FederatedRun(replace(cfg, rounds=3, threads=1), tmp_path / "more").load_state_dict(state)  # allowed
    key = next(iter(change))
    with pytest.raises(ValueError, match=f"made with {key}=.*this run has {key}="):
        FederatedRun(replace(cfg, rounds=3, **change), tmp_path / "other").load_state_dict(state)


def test_dp_batch_size_sets_the_batch_of_dp_sgd_only(tmp_path):
    """DP-SGD's expected Poisson batch, and with it the noise calibration; training without DP keeps batch_size."""
    multipliers = {}
    for dp_batch, expected in ((0, TINY.batch_size), (12, 12)):
        cfg = replace(TINY, method="dp", dp_batch_size=dp_batch)
        run = FederatedRun(cfg, tmp_path / f"dp{dp_batch}")
        assert cfg.record_dp_batch_size == expected
        assert {dp.expected_batch_size for dp in run.dp.values()} == {expected}
        multipliers[expected] = {dp.noise_multiplier for dp in run.dp.values()}
    assert min(multipliers[12]) > max(multipliers[TINY.batch_size])  # more records per step: more noise per step
    run = FederatedRun(replace(TINY, method="fedavg", dp_batch_size=12), tmp_path / "fedavg")
    assert run.train_cfg.batch_size == TINY.batch_size and not run.dp
    with pytest.raises(ValueError, match="dp_batch_size"):
        replace(TINY, dp_batch_size=-1).validate()


def test_a_dp_checkpoint_from_before_dp_batch_size_resumes_only_on_its_batch(tmp_path):
    """Its DP-SGD sampled batches of batch_size and its noise was calibrated for them."""
    cfg = replace(TINY, method="dp", rounds=2)  # dp_batch_size 0: batch_size
    state = run_training(cfg, tmp_path / "run", quiet=True).state_dict()
    assert f"DP-SGD: Poisson batches of {cfg.batch_size} expected" in (tmp_path / "run" / "report.md").read_text()
    with pytest.raises(ValueError, match="made with dp_batch_size=0; this run has dp_batch_size=12"):
        FederatedRun(replace(cfg, dp_batch_size=12), tmp_path / "changed").load_state_dict(state)
    del state["config"]["dp_batch_size"]  # as a checkpoint written before the key existed
    with pytest.raises(ValueError, match="predates dp_batch_size"):
        FederatedRun(replace(cfg, dp_batch_size=12), tmp_path / "other").load_state_dict(state)
    FederatedRun(cfg, tmp_path / "same").load_state_dict(state)
    FederatedRun(replace(cfg, dp_batch_size=cfg.batch_size), tmp_path / "explicit").load_state_dict(state)


def test_a_dp_run_cannot_resume_with_more_rounds_than_its_noise_was_calibrated_for(tmp_path):
    """More rounds at the noise calibrated for fewer would overspend the DP budget (epsilon 50 -> 74 here)."""
    cfg = replace(TINY, method="dp", rounds=2)
    state = run_training(cfg, tmp_path / "run", quiet=True).state_dict()
    with pytest.raises(ValueError, match="calibrated for another number of steps"):
        FederatedRun(replace(cfg, rounds=4), tmp_path / "more").load_state_dict(state)
    FederatedRun(cfg, tmp_path / "same").load_state_dict(state)  # the same plan resumes


def test_checkpoint_of_another_model_is_refused(tmp_path):
    run = FederatedRun(TINY, tmp_path / "a")
    state = run.state_dict()
    other = FederatedRun(replace(TINY, n_embd=32), tmp_path / "b")
    with pytest.raises(ValueError, match="made with n_embd=16; this run has n_embd=32"):
        other.load_state_dict(state)
    del state["config"]  # an older checkpoint: the model's layout still tells
    with pytest.raises(ValueError, match="does not match"):
        other.load_state_dict(state)


def test_corrupt_user_data_file_gets_a_clear_error(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "notes.jsonl").write_text('{"text": "fine note"}\n{not json\n')
    with pytest.raises(DataIntegrityError, match="notes.jsonl"):
        FederatedRun(replace(TINY, data=str(data)), tmp_path / "run")


def test_user_text_directory_trains(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    words = ["pain", "fever", "stable", "improving", "oxygen", "sats", "bp", "hr", "plan", "review"]
    (data / "a.txt").write_text("\n\n".join(" ".join(rng.choice(words, 12)) for _ in range(60)))
    run = FederatedRun(replace(TINY, data=str(data), method="fedavg"), tmp_path / "run")
    assert np.isfinite(run.run_round(0).val_loss)


def test_config_file_and_overrides(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[xcloud]\nmethod = "he"\nrounds = 3\nslowdowns = [1, 5]\nlinks = ["edge", "10:10:5"]\n')
    cfg = load_config(path, {"rounds": 5})
    assert (cfg.method, cfg.rounds, cfg.slowdowns, cfg.links) == ("he", 5, [1.0, 5.0], ["edge", "10:10:5"])
    assert load_config(None, {"probe_links": False}).probe_links is False
    path.write_text("links = [1, 2]\n")
    with pytest.raises(ValueError, match="links must be a list of str"):
        load_config(path)
    path.write_text("bogus = 1\n")
    with pytest.raises(ValueError, match="unknown configuration keys"):
        load_config(path)
    with pytest.raises(ValueError, match="method"):
        load_config(None, {"method": "magic"})


def test_config_toml_round_trips_paths_with_quotes_backslashes_and_non_ascii(tmp_path):
    # An emoji is outside the BMP: JSON would escape it as a surrogate pair, which TOML forbids.
    cfg = replace(TINY, data='C:\\notes\\"icu"', tokenizer="/srv/vocab \u00e9t\u00e9 \U0001f600.json", out="a\tb")
    path = tmp_path / "config.toml"
    path.write_text(cfg.to_toml(), encoding="utf-8")  # what run_training writes and --resume reads
    assert load_config(path) == cfg


def test_cli_run_writes_a_run_directory(tmp_path, capsys):
    args = ["run", "--method", "he", "--out", str(tmp_path), "--clouds", "3", "--rounds", "1", "--local-steps", "1"]
    args += ["--notes-per-hospital", "20", "--n-embd", "16", "--n-layer", "1", "--n-head", "2", "--block-size", "32"]
    assert main(args) == 0
    (run_dir,) = tmp_path.iterdir()
    for name in ("config.toml", "metrics.json", "metrics.csv", "loss.png", "report.md", "checkpoint.pt", "run.log"):
        assert (run_dir / name).is_file(), name
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["config"]["method"] == "he" and len(metrics["rounds"]) == 1
    out = capsys.readouterr()
    assert "validation perplexity" in out.out + out.err


def test_cli_reports_bad_options(tmp_path, capsys):
    assert main(["run", "--method", "he", "--clouds", "0", "--out", str(tmp_path)]) == 2
    assert "clouds" in capsys.readouterr().err


def test_checkpoint_round_trips_through_torch_load(tmp_path):
    run = run_training(replace(TINY, rounds=1), tmp_path, quiet=True)
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    assert state["next_round"] == 1
    assert (tmp_path / "checkpoint.pt").stat().st_mode & 0o777 == 0o600  # it holds the secret key
    assert torch.equal(state["global_state"]["wte.weight"], run.global_state["wte.weight"])


def test_client_level_dp_clips_noises_and_accounts(tmp_path):
    cfg = replace(TINY, method="fedavg", client_dp_noise=1.0, client_clip=0.05)
    run = FederatedRun(cfg, tmp_path)
    start = _vec(run).copy()
    m0 = run.run_round(0)
    m1 = run.run_round(1)
    assert m0.weights == pytest.approx([1 / 3] * 3)  # calibrated for uniform weights
    assert 0 < m0.client_epsilon < m1.client_epsilon
    assert m1.client_epsilon == pytest.approx(client_level_epsilon(1.0, 2, TINY.dp_delta), rel=1e-9)
    step = np.linalg.norm(_vec(run) - start)
    # Two rounds of averaged clipped updates plus noise of std z*C/K per entry.
    noise_norm = 1.0 * 0.05 / 3 * np.sqrt(run.layout.total)
    assert step < 2 * 0.05 + 4 * noise_norm
    assert step > 0.5 * noise_norm  # the noise is really there


def test_server_momentum_changes_the_global_step(tmp_path):
    plain = FederatedRun(replace(TINY, method="fedavg"), tmp_path / "a")
    moment = FederatedRun(replace(TINY, method="fedavg", server_momentum=0.9), tmp_path / "b")
    for r in range(2):
        plain.run_round(r)
        moment.run_round(r)
    assert np.abs(_vec(plain) - _vec(moment)).max() > 1e-4
    with pytest.raises(ValueError, match="server_momentum"):
        load_config(None, {"server_momentum": 1.0})


@pytest.mark.parametrize(
    ("method", "dp_lr", "expected"), [("dp", 0.01, 0.01), ("dp", 0.0, 3e-3), ("fedavg", 0.01, 3e-3)]
)
def test_dp_lr_sets_the_step_size_of_dp_sgd_only(tmp_path, local_lrs, method, dp_lr, expected):
    run = FederatedRun(replace(TINY, method=method, rounds=1, lr=3e-3, dp_lr=dp_lr), tmp_path)
    run.run_round(0)
    assert local_lrs == [expected] * TINY.clouds
    with pytest.raises(ValueError, match="dp_lr"):
        replace(TINY, dp_lr=-1.0).validate()
