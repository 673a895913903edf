"""Round-time prediction (equation 7) on a hand-computed example."""

from __future__ import annotations

import pytest

from xcloud.net import LinkProfile, predict_round_time

# Hand-computed example (1 Mbit/s = 1e6 bit/s):
#   a: 100 Mbit/s both ways, 10 ms.   upload 12.5 MB -> 1.0 s + 0.010; download 25 MB -> 2.0 s + 0.010;
#      compute 3.0 s                  -> 6.02 s
#   b: 10 up / 50 down Mbit/s, 50 ms. upload 1.25 MB -> 1.0 s + 0.050; download 25 MB -> 4.0 s + 0.050;
#      compute 0.5 s                  -> 5.60 s
#   c: 1000 Mbit/s, 1 ms.             upload 125 MB -> 1.0 s + 0.001;  download 25 MB -> 0.2 s + 0.001;
#      compute 7.0 s                  -> 8.202 s
LINKS = {
    "a": LinkProfile("a", up_mbps=100.0, down_mbps=100.0, latency_ms=10.0),
    "b": LinkProfile("b", up_mbps=10.0, down_mbps=50.0, latency_ms=50.0, jitter_ms=5.0),
    "c": LinkProfile("c", up_mbps=1000.0, down_mbps=1000.0, latency_ms=1.0),
}
UPLOAD = {"a": 12_500_000, "b": 1_250_000, "c": 125_000_000}
DOWNLOAD = 25_000_000
COMPUTE = {"a": 3.0, "b": 0.5, "c": 7.0}
EXPECTED = {"a": 6.02, "b": 5.60, "c": 8.202}


def test_sync_round_takes_the_slowest_client() -> None:
    # Execute
    pred = predict_round_time(LINKS, UPLOAD, DOWNLOAD, COMPUTE)

    # Assert
    assert pred.per_client_s == pytest.approx(EXPECTED, rel=1e-12)
    assert pred.total_s == pytest.approx(8.202, rel=1e-12)
    assert pred.bottleneck == "c"


def test_sum_form_is_the_papers_sum_over_clouds() -> None:
    # Execute
    pred = predict_round_time(LINKS, UPLOAD, DOWNLOAD, COMPUTE, sum_form=True)

    # Assert
    assert pred.total_s == pytest.approx(6.02 + 5.60 + 8.202, rel=1e-12)
    assert pred.bottleneck == "c"


def test_bottleneck_moves_with_the_slow_link() -> None:
    # Prepare: cut b's downlink to 5 Mbit/s -> download 40 s
    links = dict(LINKS, b=LinkProfile("b", up_mbps=10.0, down_mbps=5.0, latency_ms=50.0))

    # Execute
    pred = predict_round_time(links, UPLOAD, DOWNLOAD, COMPUTE)

    # Assert
    assert pred.bottleneck == "b"
    assert pred.total_s == pytest.approx(0.5 + 1.05 + 40.05, rel=1e-12)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"links": {}}, "at least one client"),
        ({"upload_bytes": {"a": 1, "b": 1}}, r"upload_bytes keys must match links: missing \['c'\]"),
        ({"compute_s": dict(COMPUTE, d=1.0)}, r"unexpected \['d'\]"),
        ({"upload_bytes": dict(UPLOAD, a=-1)}, r"upload_bytes\['a'\] must be finite and >= 0"),
        ({"compute_s": dict(COMPUTE, b=float("nan"))}, r"compute_s\['b'\] must be finite"),
        ({"download_bytes": -1}, "download_bytes must be finite and >= 0"),
        ({"sync": "async"}, "sync must be 'sync'"),
    ],
)
def test_predict_bad_input(change: dict[str, object], message: str) -> None:
    # Prepare
    kwargs: dict[str, object] = {
        "links": LINKS,
        "upload_bytes": UPLOAD,
        "download_bytes": DOWNLOAD,
        "compute_s": COMPUTE,
    }
    kwargs.update(change)

    # Execute / Assert
    with pytest.raises(ValueError, match=message):
        predict_round_time(**kwargs)  # type: ignore[arg-type]
