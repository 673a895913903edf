"""Data present on one node only: a SuperNode trains on its own files instead of the rebuilt partition.

By default every party of a deployment rebuilds the simulation's data
partition from the run config and each client keeps its own shard (what
the equality tests against the simulation rely on). A SuperNode started
with the node-config key ``data-dir`` (``flower-supernode --node-config
'partition-id=1 data-dir="/data/notes"'``) trains and validates on that
directory instead; nothing of it leaves the node but the protected updates.

The directory holds either ``*.txt`` / ``*.jsonl`` files (the rules of
``xcloud run --data``, :func:`xcloud.data.load_text_dir`) or a shard written
by :func:`xcloud.data.write_shard` (its ``manifest.json`` is checked). Text
files are written as a shard with a manifest under the node's work dir and
read back verified, as the simulation does with its partition, so the
manifest records exactly what the node trained on.

The vocabulary, the model and the protection plan stay those of the run
config (they must be identical everywhere): the local notes are encoded
with the run's shared tokenizer (the word vocabulary built from the
configured corpus, or the ``hf-model`` tokenizer), and words outside it
become the unknown token. The node's notes are split into training and
validation examples as a simulated shard is (``val-fraction``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from xcloud.data import DataIntegrityError, load_shard, load_text_dir, split_train_val, write_shards
from xcloud.data.shards import MANIFEST_FILE

__all__ = ["DATA_DIR_KEY", "local_data_dir", "use_local_data"]

DATA_DIR_KEY = "data-dir"


def local_data_dir(node_config: Mapping[str, Any]) -> Path | None:
    """The node's own data directory (node-config ``data-dir``), or None to use the rebuilt partition.

    Raises
    ------
    ValueError
        If ``data-dir`` is set but is not a non-empty string.
    """
    raw = node_config.get(DATA_DIR_KEY)
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        raise ValueError(f"node config {DATA_DIR_KEY} must be a directory path (a string), got {raw!r}")
    return Path(raw).expanduser()


def use_local_data(run: Any, k: int, data_dir: Path, work_dir: Path) -> dict[str, Any]:
    """Makes client ``k`` of ``run`` (a :class:`~xcloud.fl.simulation.FederatedRun`) use the notes in ``data_dir``.

    Replaces client ``k``'s training set, the run's validation set (this
    node's held-out notes) and, with record-level DP, client ``k``'s
    accountant, which is calibrated to the local training set's size.

    Returns
    -------
    dict
        What was loaded: ``notes``, ``train``, ``val`` and the shard's ``sha256``.

    Raises
    ------
    FileNotFoundError, NotADirectoryError
        If ``data_dir`` is missing, not a directory or holds no data file.
    DataIntegrityError
        Unreadable or malformed files, a shard that does not match its
        manifest, or too few notes for a training example.
    """
    from xcloud.fl.simulation import derive_seed

    cfg = run.cfg
    if (data_dir / MANIFEST_FILE).exists():
        shard = load_shard(data_dir)
    else:
        corpus = load_text_dir(data_dir)
        (shard_dir,) = write_shards(work_dir / "local-shard", corpus.notes, [np.arange(len(corpus.notes))])
        shard = load_shard(shard_dir)  # checks what was written against its manifest
    ids = run.tokenizer.encode_batch(n.text for n in shard.notes)
    if len(ids) < 2 and cfg.val_fraction > 0:
        raise DataIntegrityError(f"{data_dir}: {len(ids)} note(s); at least 2 are needed for training and validation")
    tr, va = split_train_val(np.arange(len(ids)), cfg.val_fraction, seed=derive_seed(cfg.seed, "split", k))
    train_set = run._dataset([ids[i] for i in tr])
    run.train_sets[k] = train_set
    run.val_set = run._dataset([ids[i] for i in va]) if len(va) else train_set
    client = run.clients[k]
    client.train_set = train_set
    cid = client.client_id
    if cid in run.dp:
        run.dp[cid] = run.record_dp_for(len(train_set))
        client.train = run._trainer(cid)  # the simulation's trainer (dp_lr, drift correction) with this accountant
    return {"notes": len(ids), "train": len(tr), "val": len(va), "sha256": shard.manifest.sha256}
