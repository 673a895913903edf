"""Aggregation strategies: one per module, re-exported here."""

from xcloud.fl.strategies.base import ClientReport, Strategy, staleness_discount
from xcloud.fl.strategies.dynamic import DynamicWeighting, PrintedWeighting, cap_shares
from xcloud.fl.strategies.fedavg import FedAvg, UniformWeights
from xcloud.fl.strategies.hybrid import HybridEncryption

__all__ = [
    "ClientReport",
    "DynamicWeighting",
    "FedAvg",
    "HybridEncryption",
    "PrintedWeighting",
    "Strategy",
    "UniformWeights",
    "cap_shares",
    "staleness_discount",
]
