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


def test_provenance_records_unknown_commit_outside_the_projects_own_checkout(tmp_path):
    """A copy of the package inside some other repository must not claim that repository's commit."""
    import shutil
    import subprocess
    import sys

    from dae_lib.runs import REPO_ROOT

    outer = tmp_path / "outer"
    (outer / "copy").mkdir(parents=True)
    shutil.copytree(REPO_ROOT / "dae_lib", outer / "copy" / "dae_lib", ignore=shutil.ignore_patterns("__pycache__", "released"))
    shutil.copy(REPO_ROOT / "pyproject.toml", outer / "copy" / "pyproject.toml")
    git = ["git", "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], cwd=outer, check=True)
    subprocess.run([*git, "add", "-A"], cwd=outer, check=True)
    subprocess.run([*git, "commit", "-qm", "other project"], cwd=outer, check=True)
    code = "from dae_lib.runs import git_commit, dirty_files; print(git_commit(), dirty_files())"
    out = subprocess.run([sys.executable, "-c", code], cwd=outer / "copy", capture_output=True, text=True, check=True).stdout
    assert out.strip() == "unknown []"
    own = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout
    assert len(own.split()[0].split("-")[0]) == 40  # in its own checkout: the commit hash
