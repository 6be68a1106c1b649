"""Metric lines in a job's output: what counts as one, and finding them in chunked output."""

import pytest

from tracking.parsing import MAX_LINE_BYTES, MetricLineParser, MetricPoint, parse_metric_line


@pytest.mark.parametrize(
    ("line", "point"),
    [
        (b'{"metric": "accuracy", "value": 0.98}', MetricPoint("accuracy", 0.98, None)),
        (b'{"metric": "loss", "value": 2, "step": 7}', MetricPoint("loss", 2.0, 7)),
        (b'{"value": -1.5e-3, "metric": "lr", "step": 0}', MetricPoint("lr", -0.0015, 0)),
        (b'  {"metric": "accuracy", "value": 1}\r\n', MetricPoint("accuracy", 1.0, None)),
        ('{"metric": "précision", "value": 0.5}'.encode(), MetricPoint("précision", 0.5, None)),
    ],
)
def test_metric_lines_are_parsed(line: bytes, point: MetricPoint) -> None:
    assert parse_metric_line(line) == point


def test_floydhubs_epoch_is_the_step() -> None:
    line = b'{"metric": "accuracy", "value": 0.98, "epoch": 3}'

    assert parse_metric_line(line) == MetricPoint("accuracy", 0.98, 3)


@pytest.mark.parametrize(
    "line",
    [
        b"Epoch 3/10 - loss: 0.25",
        b"",
        b'{"metric": "accuracy", "value": 0.98',  # cut short
        b'{"metric": "accuracy", "value": 0.98} trailing',
        b'["metric", "accuracy", "value", 0.98]',
        b'{"metric": "accuracy"}',
        b'{"value": 0.98}',
        b'{"metric": "accuracy", "value": 0.98, "unit": "%"}',
        b'{"metric": "accuracy", "value": 0.98, "step": 1, "epoch": 1}',
        b'{"metric": "accuracy", "value": "0.98"}',
        b'{"metric": "accuracy", "value": null}',
        b'{"metric": "accuracy", "value": true}',
        b'{"metric": "accuracy", "value": NaN}',
        b'{"metric": "accuracy", "value": Infinity}',
        b'{"metric": "accuracy", "value": -Infinity}',
        b'{"metric": "accuracy", "value": 1e999}',
        b'{"metric": "accuracy", "value": 1' + b"0" * 400 + b"}",
        b'{"metric": "accuracy", "value": 0.98, "step": -1}',
        b'{"metric": "accuracy", "value": 0.98, "step": 1.5}',
        b'{"metric": "accuracy", "value": 0.98, "step": true}',
        b'{"metric": "accuracy", "value": 0.98, "step": null}',
        b'{"metric": "accuracy", "value": 0.98, "step": 9223372036854775808}',
        b'{"metric": "", "value": 0.98}',
        b'{"metric": 7, "value": 0.98}',
        b'{"metric": "' + b"k" * 251 + b'", "value": 0.98}',
        b'{"metric": "acc\xff", "value": 0.98}',  # not UTF-8
        b'{"metric": "accuracy", "value": [' + b"[" * 5000 + b"]" * 5000 + b"]}",
    ],
)
def test_anything_else_is_not_a_metric(line: bytes) -> None:
    assert parse_metric_line(line) is None


def test_the_longest_name_is_a_metric() -> None:
    name = "k" * 250

    assert parse_metric_line(f'{{"metric": "{name}", "value": 1}}'.encode()) is not None


def test_metrics_are_found_among_ordinary_output() -> None:
    parser = MetricLineParser()
    output = (
        b"loading data\n"
        b'{"metric": "loss", "value": 0.5, "step": 1}\n'
        b"warning: something\r\n"
        b'{"metric": "loss", "value": 0.25, "step": 2}\n'
    )

    assert parser.feed(output) == [MetricPoint("loss", 0.5, 1), MetricPoint("loss", 0.25, 2)]


def test_a_line_split_across_chunks_is_put_back_together() -> None:
    parser = MetricLineParser()
    line = b'{"metric": "accuracy", "value": 0.98, "epoch": 3}\n'

    found = [point for byte in range(len(line)) for point in parser.feed(line[byte : byte + 1])]

    assert found == [MetricPoint("accuracy", 0.98, 3)]


def test_the_last_line_counts_without_a_newline_once_the_output_ends() -> None:
    parser = MetricLineParser()

    assert parser.feed(b'done\n{"metric": "f1", "value": 0.7}') == []
    assert parser.close() == [MetricPoint("f1", 0.7, None)]


def test_a_carriage_return_ends_a_line() -> None:
    # Progress bars redraw with \r and no newline; a metric printed after one must still count.
    parser = MetricLineParser()

    found = parser.feed(b' 50%|#####     |\r100%|##########|\r{"metric": "loss", "value": 1}\n')

    assert found == [MetricPoint("loss", 1.0, None)]


def test_an_overlong_line_is_dropped_and_memory_stays_bounded() -> None:
    parser = MetricLineParser(max_line=1024)
    metric = b'{"metric": "loss", "value": 1}'

    # A metric-looking line padded past the limit, arriving in pieces with no newline for long.
    assert parser.feed(b'{"metric": "loss", "value": 1' + b" " * 600) == []
    for _ in range(100):
        assert parser.feed(b" " * 600) == []
        assert len(parser._pending) <= 1024
    assert parser.feed(b"}\n" + metric + b"\n") == [MetricPoint("loss", 1.0, None)]


def test_a_huge_chunk_without_newlines_is_not_kept() -> None:
    parser = MetricLineParser()

    assert parser.feed(b"x" * (MAX_LINE_BYTES * 4)) == []
    assert len(parser._pending) == 0
    assert parser.close() == []


def test_a_line_of_exactly_the_limit_is_parsed() -> None:
    metric = b'{"metric": "loss", "value": 1}'
    parser = MetricLineParser(max_line=len(metric))

    assert parser.feed(metric[:10]) == []
    assert parser.feed(metric[10:] + b"\n") == [MetricPoint("loss", 1.0, None)]
