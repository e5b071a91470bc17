"""`scalekit scale` and `scalekit compare` on the command line."""

from __future__ import annotations

import json

import pytest

from click.testing import CliRunner

from scalekit.cli import cli
from scalekit.spec import load_spec

from .conftest import run_cli


pytestmark = pytest.mark.light  # count-only: CI runs it in the torch-free venv too


def invoke(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_scale_phi_json_baseline_first_scaled_last(published):
    r = invoke("scale", "resnet50", "--phi", "2", "--no-latency", "--format", "json")
    assert r.exit_code == 0
    doc = json.loads(r.stdout)
    base, scaled = doc["records"][0], doc["records"][-1]
    assert base["params"] == published["exact_224"]["resnet50"]["params"]
    c = scaled["coefficients"]
    assert (round(c["depth"], 6), round(c["width"], 6), c["phi"]) == (1.44, 1.21, 2.0)
    assert scaled["resolution"] == round(224 * 1.15 ** 2)
    assert doc["ideal_macs_factor"] == pytest.approx(1.44 * 1.21 ** 2 * 1.15 ** 4)


def test_scale_table_shows_before_and_after():
    r = invoke("scale", "specs/efficientnet_b0.yaml", "--width", "2", "--no-latency")
    assert r.exit_code == 0
    assert "32 -> 64" in r.output and "320 -> 640" in r.output
    assert "growth" in r.output and "ideal" in r.output


def test_scale_out_round_trip(tmp_path):
    out = tmp_path / "b3.yaml"
    r = invoke("scale", "efficientnet_b0", "--preset", "b3", "--out", str(out), "--no-latency",
               "--format", "json")
    assert r.exit_code == 0
    scaled = json.loads(r.stdout)["records"][-1]
    again = json.loads(invoke("info", str(out), "--no-latency", "--format", "json")
                       .stdout)["records"][0]
    assert (again["params"], again["macs"], again["acts"]) == (scaled["params"], scaled["macs"],
                                                               scaled["acts"])
    assert again["params"] == 12233232  # torchvision's efficientnet_b3
    assert load_spec(str(out)).origin.preset == "b3"


def test_scale_out_refuses_to_overwrite(tmp_path):
    """An edited spec is an artefact: only --overwrite replaces it; --force (the memory guard)
    does not, and says so."""
    out = tmp_path / "x.yaml"
    out.write_text("keep me")
    r = run_cli("scale", "resnet50", "--width", "2", "--out", str(out), "--no-latency")
    assert r.returncode == 1 and "--overwrite" in r.stderr
    assert out.read_text() == "keep me"
    # --force when a model is built (measured latency): refused before anything is timed
    r = run_cli("scale", "resnet50", "--width", "2", "--out", str(out), "--force", "--latency",
                "measured")
    assert r.returncode == 1 and "--overwrite" in r.stderr and "memory guard" in r.stderr
    assert out.read_text() == "keep me"
    # --force where nothing is built has no effect: a usage error (issue 16)
    r = run_cli("scale", "resnet50", "--width", "2", "--out", str(out), "--force", "--no-latency")
    assert r.returncode == 2 and "--force has no effect" in r.stderr
    assert out.read_text() == "keep me"
    r = run_cli("scale", "resnet50", "--width", "2", "--out", str(out), "--overwrite",
                "--no-latency")
    assert r.returncode == 0 and load_spec(str(out)).stem.out == 128


def test_scale_conflicting_flags_one_line():
    r = run_cli("scale", "efficientnet_b0", "--phi", "1", "--preset", "b2")
    assert r.returncode == 2 and "Traceback" not in r.stderr  # a usage error (issue 16)
    assert "--preset" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_scale_out_missing_directory(tmp_path):
    r = run_cli("scale", "resnet50", "--width", "2", "--out", str(tmp_path / "no" / "x.yaml"))
    assert r.returncode == 1 and "does not exist" in r.stderr


def test_compare_default_is_tables_3_and_7(published):
    r = invoke("compare", "--no-latency", "--format", "json")
    recs = json.loads(r.stdout)["records"]
    t3, t7 = published["paper"]["table3"], published["paper"]["table7"]
    expected = sum(len(v) for v in t3.values()) + sum(len(v) for v in t7.values())
    assert len(recs) == expected
    for rec in recs:
        paper = {**t3, **t7}[rec["base"]][rec["mode"]]
        assert rec["reference"]["paper_flops_b"] == paper["flops_b"]
        assert rec["reference"]["paper_top1"] == paper["top1"]
        c = rec["coefficients"]
        for key, field in (("d", "depth"), ("w", "width"), ("r", "resolution")):
            if key in paper:
                assert c[field] == paper[key]
    comp = [r for r in recs if r["mode"] == "compound" and r["base"] in ("MobileNetV2", "ResNet-50")]
    assert len(comp) == 2
    for rec in comp:  # the paper's compound setting, and the row says so
        assert (rec["coefficients"]["depth"], rec["coefficients"]["width"],
                rec["coefficients"]["resolution"]) == (1.4, 1.2, 1.3)
        assert any("no coefficients" in n for n in rec["notes"])
    en = next(r for r in recs if r["base"] == "EfficientNet-B0" and r["mode"] == "compound")
    assert en["resolution"] == 291 and round(en["macs"] / 1e9, 2) == 1.80


def test_compare_mode_and_spec_selection():
    r = invoke("compare", "resnet50", "--mode", "width,compound", "--no-latency", "--format", "json")
    recs = json.loads(r.stdout)["records"]
    assert [(x["base"], x["mode"]) for x in recs] == [("ResNet-50", "baseline"), ("ResNet-50", "width"),
                                                      ("ResNet-50", "compound")]


def test_compare_spec_outside_the_paper(tmp_path):
    r = invoke("compare", "resnet152", "--no-latency", "--format", "json")
    recs = json.loads(r.stdout)["records"]
    assert [x["mode"] for x in recs] == ["baseline", "depth", "width", "resolution", "compound"]
    assert all(x["reference"] is None for x in recs)


def test_compare_table_2(published):
    r = invoke("compare", "--table", "2", "--no-latency", "--format", "json")
    recs = {x["name"]: x for x in json.loads(r.stdout)["records"]}
    for i in range(8):
        rec = recs[f"EfficientNet-B{i}"]
        tv = published["torchvision"][f"efficientnet_b{i}"]
        assert rec["params"] == tv["params"]
        assert rec["reference"]["paper_flops_b"] == published["paper"]["table2"][f"EfficientNet-B{i}"]["flops_b"]
        assert rec["resolution"] == published["efficientnet_presets"][f"b{i}"][2]
    table = invoke("compare", "--table", "2", "--no-latency").output
    assert "torchvision" in table and "reported" in table
    # ResNet-152's torchvision columns (torchvision's figures are the exact count)
    r152, exact = recs["ResNet-152"], published["exact_224"]["resnet152"]
    assert r152["reference"]["torchvision_params"] == r152["params"] == exact["params"]
    assert r152["reference"]["torchvision_gmacs"] == round(exact["macs"] / 1e9, 3)
    # a params note where the paper's printed figure is not the exact count rounded as printed
    for name, paper in published["paper"]["table2"].items():
        printed = str(paper["params_m"])
        places = len(printed.split(".")[1]) if "." in printed else 0
        differs = round(recs[name]["params"] / 1e6, places) != paper["params_m"]
        assert differs == any("params figure" in n for n in recs[name]["notes"]), name
    assert any("params figure is above the exact count (9.11 M)" in n
               for n in recs["EfficientNet-B2"]["notes"])


def test_compare_csv_and_markdown_one_row_per_model():
    csv_out = invoke("compare", "--no-latency", "--format", "csv").output.strip().splitlines()
    md_out = invoke("compare", "--no-latency", "--format", "markdown").output.strip().splitlines()
    n = len(json.loads(invoke("compare", "--no-latency", "--format", "json").stdout)["records"])
    assert len(csv_out) == n + 1
    assert len(md_out) == n + 2
