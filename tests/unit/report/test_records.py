"""lsi.report.records.write_json: atomic, readable JSON records."""

import json
import math

import pytest

from lsi.report.records import write_json


def test_write_json_round_trips_and_creates_parents(tmp_path):
    path = write_json(tmp_path / "a" / "b" / "result.json", {"b": 2, "a": [1.5, None]})
    assert json.loads(path.read_text()) == {"a": [1.5, None], "b": 2}
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind


def test_a_record_that_cannot_be_written_keeps_the_previous_one(tmp_path):
    path = write_json(tmp_path / "metrics.json", {"id_match": 0.8})
    with pytest.raises(ValueError):
        write_json(path, {"id_match": math.nan}, allow_nan=False)
    with pytest.raises(TypeError):
        write_json(path, {"id_match": object()})
    assert json.loads(path.read_text()) == {"id_match": 0.8}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]
