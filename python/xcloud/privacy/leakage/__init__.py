"""Leakage meters: real attacks run on exactly what an observer of federated training receives.

One concept per module:

- :mod:`~xcloud.privacy.leakage.observers`: what the server and an
  eavesdropper hold of an update, as arrays (plain values, or ciphertext
  coefficients in their place);
- :mod:`~xcloud.privacy.leakage.tokens`: the bag-of-words attack on
  token-embedding and output-head rows (FILM, Gupta et al. 2022; TAG, Deng et
  al. 2021), recall and precision against the tokens a client trained on;
- :mod:`~xcloud.privacy.leakage.inversion`: gradient inversion (DLG, Zhu et
  al. 2019; iDLG, Zhao et al. 2020) on a tiny model;
- :mod:`~xcloud.privacy.leakage.exposure`: canary exposure (The Secret
  Sharer, Carlini et al. 2019);
- :mod:`~xcloud.privacy.leakage.membership`: loss-threshold membership
  inference (Yeom et al. 2018);
- :mod:`~xcloud.privacy.leakage.uniformity`: chi-square tests that
  ciphertext coefficients and bytes look uniform.

The meters depend on numpy, torch and the model only; reading observations
out of federated messages is done above the federated layer
(:mod:`xcloud.experiments.leakage`).
"""

from xcloud.privacy.leakage.exposure import CanaryExposure, canary_exposure, secret_log_likelihoods
from xcloud.privacy.leakage.inversion import (
    InversionResult,
    batch_gradient,
    dp_gradient,
    infer_bag,
    invert,
    rouge_1,
    rouge_l,
    score_reconstruction,
)
from xcloud.privacy.leakage.membership import MembershipResult, loss_threshold_attack, per_example_losses
from xcloud.privacy.leakage.observers import Observation, assemble, pseudo_values, tensor_rows
from xcloud.privacy.leakage.tokens import (
    TokenLeakage,
    bag_of_words,
    batch_tokens,
    chance_rate,
    otsu_threshold,
    rate_at_precision,
    replay_batches,
    roc_auc,
    row_scores,
)
from xcloud.privacy.leakage.uniformity import (
    UniformityTest,
    bytes_uniformity,
    chi_square_uniform,
    residue_uniformity,
)

__all__ = [
    "CanaryExposure",
    "InversionResult",
    "MembershipResult",
    "Observation",
    "TokenLeakage",
    "UniformityTest",
    "assemble",
    "bag_of_words",
    "batch_gradient",
    "batch_tokens",
    "bytes_uniformity",
    "canary_exposure",
    "chance_rate",
    "chi_square_uniform",
    "dp_gradient",
    "infer_bag",
    "invert",
    "loss_threshold_attack",
    "otsu_threshold",
    "per_example_losses",
    "pseudo_values",
    "rate_at_precision",
    "replay_batches",
    "residue_uniformity",
    "roc_auc",
    "rouge_1",
    "rouge_l",
    "row_scores",
    "score_reconstruction",
    "secret_log_likelihoods",
    "tensor_rows",
]
