"""xcloud across real machines, on Flower.

Flower runs the processes and carries the messages (SuperLink, SuperNodes,
HTTPS with TLS, SuperNode authentication); xcloud plugs in as a Flower app
(:mod:`xcloud.deploy.app`) whose server and client logic
(:mod:`~xcloud.deploy.server`, :mod:`~xcloud.deploy.node`) reuse the
federated core of :mod:`xcloud.fl` unchanged. :mod:`~xcloud.deploy.keys`
distributes the CKKS key among the clients only; :mod:`~xcloud.deploy.certs`
and :mod:`~xcloud.deploy.launcher` make and run a local trial.

Only :mod:`~xcloud.deploy.app` and :mod:`~xcloud.deploy.launcher` need
``flwr`` (the ``[deploy]`` extra).
"""
