"""Model families: a new one is one module plus one table entry, and every path reaches it."""
import json
import subprocess
import sys

import pandas as pd
import pytest
import torch

import tiny_family
from dae_lib import cli
from dae_lib.reporting import table1
from dae_lib.config import MAY_CHANGE_ON_RESUME, Config, resume_conflicts
from dae_lib.errors import ConfigError, WeightsError
from dae_lib.reporting.evaluate import IDENTITY, predict_test_cases
from dae_lib.models import ABLATION, FAMILIES, Family, build_model, get_variant, variants
from dae_lib.runs import find_runs, finished_runs, load_model, run_data
from dae_lib.models.dae import DAE
from dae_lib.train import fit
from helpers import tiny_config


@pytest.fixture
def tiny_family_registered(monkeypatch):
    """The one table entry a new family needs (taken out again after the test)."""
    monkeypatch.setitem(FAMILIES, "tiny", Family("tiny_family", "t_", "T-", "a stand-in for the tests"))


def test_the_paper_family_is_the_four_reproduced_variants():
    v = variants("reproduced")
    assert list(v) == ["ae", "ae_msssim", "dae", "dae_msssim"]
    assert [x.label for x in v.values()] == ["AE", "AE + MS-SSIM", "DAE", "DAE + MS-SSIM"]
    assert [(x.seg_head, x.msssim) for x in v.values()] == [(False, False), (False, True), (True, False), (True, True)]
    assert isinstance(build_model(Config(variant="dae")), DAE)
    assert build_model(Config(variant="ae")).bone_seg is None
    with pytest.raises(ConfigError, match="unknown variant 'x_dae'.*dae_msssim"):
        get_variant("x_dae")


def test_a_new_family_is_one_module_and_one_table_entry(tiny_family_registered, tiny_data, tmp_path):
    assert list(variants("tiny")) == ["t_" + k for k in ABLATION]
    assert get_variant("t_dae").label == "T-DAE" and get_variant("t_dae").seg_head
    runs = tmp_path / "runs"
    for name in ("t_ae", "t_dae"):  # (the MS-SSIM variants need >= 176 px)
        res = fit(tiny_config(variant=name, epochs=1), runs / name, data=tiny_data, progress=False)
        assert isinstance(res.model, tiny_family.Tiny) and len(res.history) == 1
    log = pd.read_csv(runs / "t_dae" / "log.csv")
    assert "train_seg" in log and "train_seg" not in pd.read_csv(runs / "t_ae" / "log.csv")
    # evaluated through the same path as the paper's variants: Table 1 and the figures' predictions
    per_image, missing = table1.collect(runs, tiny_data)
    assert list(dict.fromkeys(per_image["method"])) == [IDENTITY, "T-AE", "T-DAE"]
    assert missing == ["t_ae_msssim", "t_dae_msssim"]
    test, preds = predict_test_cases(finished_runs(runs)[0], tiny_data)
    assert list(preds) == ["T-AE", "T-DAE"] and preds["T-DAE"].shape == test.x.shape
    model = load_model(runs / "t_dae")
    assert isinstance(model, tiny_family.Tiny) and model.bone_seg is not None and not model.training
    assert set(table1.run_provenance(runs)) == {"t_ae", "t_dae"}


def test_runs_are_found_in_table_order_whatever_the_folder_names(tiny_data, tmp_path):
    for folder, name in (("z-first", "dae"), ("a-second", "ae")):
        fit(tiny_config(variant=name, epochs=1), tmp_path / folder, data=tiny_data, progress=False)
    (tmp_path / "not-a-run").mkdir()
    (tmp_path / "split.csv").write_text("case_id,split\n")  # notebook 01 writes one here
    assert {k: p.name for k, p in find_runs(tmp_path).items()} == {"ae": "a-second", "dae": "z-first"}


def test_every_setting_but_a_short_list_must_match_on_resume():
    cfg = tiny_config()
    recorded = cfg.to_dict()
    assert resume_conflicts(recorded, cfg) == []
    for key in recorded:
        changed = {**recorded, key: "__changed__"}
        assert (key in resume_conflicts(changed, cfg)) == (key not in MAY_CHANGE_ON_RESUME), key
    # a field the recorded run predates counts with its default value
    older = {k: v for k, v in recorded.items() if k != "weight_decay"}
    assert resume_conflicts(older, cfg) == []
    assert resume_conflicts(older, tiny_config(weight_decay=0.1)) == ["weight_decay"]


def test_the_run_records_its_image_size_and_polarity_for_inference(tmp_path, pair_folder):
    root, _ = pair_folder  # stored inverted (bone dark)
    cfg = tiny_config(data_dir=str(root), image_size=48, epochs=1, cache_data=False)
    fit(cfg, tmp_path / "run", progress=False)
    rec = run_data(tmp_path / "run")
    assert rec["image_size"] == 48 and rec["stored_polarity"] == "inverted"
    assert rec["polarity"]["rule"] == "auto" and rec["n_cases"] == 5


def test_weights_of_another_architecture_or_damaged_are_a_clear_error(tiny_data, tmp_path, capsys):
    run = tmp_path / "run"
    fit(tiny_config(variant="ae", epochs=1), run, data=tiny_data, progress=False)
    cfg = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**cfg, "variant": "dae"}))  # relabelled: AE weights, DAE net
    with pytest.raises(WeightsError, match=r"best.safetensors: these weights do not fit variant dae \(missing \['bone_seg"):
        load_model(run)
    assert cli.main(["evaluate", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "do not fit variant dae" in err and "\n" not in err
    (run / "config.json").write_text(json.dumps(cfg))
    (run / "best.safetensors").write_bytes((run / "best.safetensors").read_bytes()[:100])
    with pytest.raises(WeightsError, match="cannot read weights"):
        load_model(run)
    (run / "best.safetensors").unlink()
    with pytest.raises(WeightsError, match="not found"):
        load_model(run)


def test_the_command_line_reports_input_errors_in_one_line_and_lets_bugs_show(tiny_data, tmp_path, monkeypatch, capsys):
    assert cli.main(["evaluate", str(tmp_path / "nothing")]) == 2
    assert "not a run folder" in capsys.readouterr().err
    run = tmp_path / "run"
    fit(tiny_config(variant="ae", epochs=1), run, data=tiny_data, progress=False)

    def bug(*a, **k):
        raise ValueError("a bug, not an input error")

    monkeypatch.setattr("dae_lib.reporting.evaluate.evaluate_run", bug)
    with pytest.raises(ValueError, match="a bug"):
        cli.main(["evaluate", str(run)])


def test_inference_does_not_import_the_training_code():
    code = "import sys, dae_lib.inference, dae_lib.runs, dae_lib.reporting.evaluate; print(sorted(m for m in sys.modules if m.startswith('dae_lib')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "dae_lib.inference" in out and "dae_lib.runs" in out and "dae_lib.train" not in out and "dae_lib.augment" not in out


def test_inference_restores_the_mode_and_runs_the_family_model(tiny_family_registered):
    model = build_model(tiny_config(variant="t_dae"))
    from dae_lib.inference import predict

    x = torch.rand(3, 1, 32, 32)
    out = predict(model, x, batch_size=2)
    assert out.shape == x.shape and model.training


def test_evaluation_scores_the_segmentation_head_by_dice_without_using_it_for_the_estimate(tiny_data, tmp_path):
    from dae_lib.reporting.evaluate import evaluate_run

    for name in ("ae", "dae", "r_dae"):
        fit(tiny_config(variant=name, unet_width=4, epochs=1), tmp_path / name, data=tiny_data, progress=False)
    ae, dae, r_dae = (evaluate_run(tmp_path / n, tiny_data) for n in ("ae", "dae", "r_dae"))
    assert "dice" not in ae
    for df, label in ((dae, "DAE"), (r_dae, "R-DAE")):
        d = df[df["method"] == label]["dice"]
        assert d.notna().all() and ((d >= 0) & (d <= 1)).all()
        assert df[df["method"] == IDENTITY]["dice"].isna().all()
    per_image, _ = table1.collect(tmp_path, tiny_data)
    assert per_image.groupby("method")["dice"].count().to_dict() == {IDENTITY: 0, "AE": 0, "DAE": len(ae) // 2, "R-DAE": len(ae) // 2}
