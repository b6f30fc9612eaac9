"""Results files are written whole or not at all, and appending never loses earlier rows."""
import pandas as pd
import pytest

from dae_lib.atomic import append_csv, atomic_path


def test_atomic_path_leaves_the_target_as_it_was_on_error(tmp_path):
    target = tmp_path / "table.csv"
    target.write_text("old\n")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["table.csv"]


def test_append_csv_keeps_old_rows_and_unites_columns(tmp_path):
    path = tmp_path / "sub" / "r.csv"
    append_csv(path, pd.DataFrame([{"a": 1, "b": 2}]))
    append_csv(path, pd.DataFrame([{"a": 3, "c": "x"}]))
    df = pd.read_csv(path)
    assert list(df.columns) == ["a", "b", "c"]
    assert df["a"].tolist() == [1, 3]
    assert pd.isna(df.loc[1, "b"]) and df.loc[1, "c"] == "x"
