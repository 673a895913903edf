"""The transport-agnostic federated core: clients, aggregator, strategies, messages."""
