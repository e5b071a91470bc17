"""`scalekit sweep` and its plots: Figure 3's values, counts checked against published figures
and torch's own counters, the plot files (PNG, SVG, PDF; `fit --plot` too) and the text plot."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import pytest
from click.testing import CliRunner

from scalekit.cli import cli
from scalekit.report.plot import text_plot
from scalekit.spec import load_spec
from scalekit.studies.sweeps import FIGURE3_VALUES, default_values, sweep

from .conftest import assert_no_torch, needs_torch, run_cli, spec_path


pytestmark = pytest.mark.light  # count-only: CI runs it in the torch-free venv too

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def invoke(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_default_values_are_figure3s(published):
    fig3 = published["paper"]["figure3_sweeps"]
    assert set(FIGURE3_VALUES) == set(fig3)
    for mode, values in fig3.items():
        assert default_values(mode) == pytest.approx(values)


def test_sweep_json_matches_published_figures(published):
    """MobileNetV2 at the paper's Table 3 coefficients: our counts, rounded as the paper rounds,
    are its FLOPS; the w=1 point is torchvision's model exactly; resolution keeps the params."""
    r = invoke("sweep", "mobilenet_v2", "--mode", "width,depth,resolution", "--values", "1,2,4",
               "--format", "json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    recs, points = doc["records"], doc["sweep"]
    assert [(p["mode"], p["value"]) for p in points] == [
        (m, v) for m in ("width", "depth", "resolution") for v in (1.0, 2.0, 4.0)]
    by = {(p["mode"], p["value"]): rec for p, rec in zip(points, recs)}
    exact = published["exact_224"]["mobilenet_v2"]
    for mode in ("width", "depth", "resolution"):
        assert (by[mode, 1.0]["params"], by[mode, 1.0]["macs"]) == (exact["params"], exact["macs"])
    paper = published["paper"]["table3"]["MobileNetV2"]
    assert round(by["width", 2.0]["macs"] / 1e9, 1) == paper["width"]["flops_b"]
    assert round(by["resolution", 2.0]["macs"] / 1e9, 1) == paper["resolution"]["flops_b"]
    assert round(by["depth", 4.0]["macs"] / 1e9, 1) == paper["depth"]["flops_b"]
    assert {by["resolution", v]["params"] for v in (1.0, 2.0, 4.0)} == {exact["params"]}
    assert by["resolution", 2.0]["resolution"] == 448


def test_sweep_points_agree_with_torch_counters():
    """Independent counts of one point of each mode: sum(p.numel()) and FlopCounterMode / 2 on
    the built module (meta device: no memory, no weights)."""
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    from scalekit.build import build_model
    from scalekit.scaling import scale

    spec = load_spec(spec_path("efficientnet_b0"))
    for p in sweep(spec, ["width", "dWr"], [1.4]):
        scaled = scale(spec, p.record.coefficients)
        model = build_model(scaled, device="meta").eval()
        assert sum(t.numel() for t in model.parameters()) == p.record.params
        x = torch.empty(1, 3, scaled.resolution, scaled.resolution, device="meta")
        with FlopCounterMode(display=False) as fc:
            model(x)
        assert fc.get_total_flops() // 2 == p.record.macs


def test_sweep_default_table_and_text_plot():
    r = invoke("sweep", "efficientnet_b0")
    assert r.exit_code == 0
    out = r.output
    for label in ("w=5", "d=8", "r=2.5", "560", "MACs x", "acts x"):
        assert label in out
    assert "params (M) against MACs (G), both log scale" in out
    assert "w width   d depth   r resolution" in out


def test_text_plot_places_points():
    """The largest point (width 5: most MACs and params) is the top right corner; the
    resolution points keep the baseline's params: all on the bottom row."""
    spec = load_spec(spec_path("efficientnet_b0"))
    text = text_plot(sweep(spec, ["width", "resolution"]), y="params", width=40, height=10)
    rows = text.splitlines()[1:11]
    plot = [row.split("|", 1)[1] for row in rows]
    assert plot[0].rstrip().endswith("w") and len(plot[0].rstrip()) == 40
    assert plot[-1].count("r") == len(FIGURE3_VALUES["resolution"]) - 1  # r=1 is under "*"
    assert plot[-1].startswith("*")


def test_sweep_strategies_report_activations():
    """At the same FLOPs factor (s = 8; for depth d = s), dWr grows activations least, depth
    most (Dollar et al.), at about the same MACs."""
    r = invoke("sweep", "resnet50", "--mode", "dWr,uniform,depth", "--values", "8",
               "--format", "json")
    recs = {rec["mode"]: rec for rec in json.loads(r.stdout)["records"]}
    acts = [recs[m]["acts"] for m in ("dWr", "uniform", "depth")]
    assert acts == sorted(acts) and acts[-1] > 1.3 * acts[0]
    macs = [recs[m]["macs"] for m in ("dWr", "uniform", "depth")]
    assert max(macs) < 1.25 * min(macs)


def test_sweep_plot_writes_png(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "sweep.png"
    r = invoke("sweep", "efficientnet_b0", "--mode", "width,depth,resolution,compound,dWr",
               "--y", "acts", "--plot", str(out))
    assert r.exit_code == 0, r.output
    data = out.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 10_000
    assert "against MACs" not in r.output  # a file was asked for: no text plot
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".scalekit-")]


SVG = "{http://www.w3.org/2000/svg}"


def svg_texts(path) -> list[tuple[str, float]]:
    """(text, font size in pt) of every text element of a matplotlib SVG (text kept as text)."""
    root = ET.parse(path).getroot()
    assert root.tag == f"{SVG}svg"
    out = []
    for e in root.iter(f"{SVG}text"):
        size = re.search(r"font-size:\s*([0-9.]+)px", e.get("style", ""))
        assert size, e.get("style")
        out.append(("".join(e.itertext()), float(size.group(1))))  # 72 px per inch: px = pt
    return out


def test_sweep_plot_svg_is_svg_with_legible_plain_text(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "x.svg"
    r = invoke("sweep", "efficientnet_b0", "--mode", "width,depth,resolution,compound,dWr",
               "--y", "acts", "--plot", str(out))
    assert r.exit_code == 0, r.output
    texts = svg_texts(out)
    assert min(size for _, size in texts) >= 9
    labels = [t for t, _ in texts]
    assert any(t.startswith("MACs (") for t in labels) and any("activations" in t for t in labels)
    for mode in ("width (w = 1 to 5)", "depth (d = 1 to 8)", "compound (phi = 0 to 5)",
                 "dWr (s = 1 to 32)"):
        assert mode in labels, labels
    ticks = [t for t in labels if re.fullmatch(r"[0-9.]+( [kMGT])?", t)]
    assert {"1 G", "10 M"} <= set(ticks), labels  # plain ticks with SI prefixes
    assert not [t for t in labels if re.search(r"10\^|\u00d7|\$|e[+-]?\d", t)], labels
    assert not [p for p in tmp_path.iterdir() if p.name != "x.svg"]


def test_sweep_plot_pdf_is_pdf_and_reproducible(tmp_path):
    pytest.importorskip("matplotlib")
    a, b = tmp_path / "a.pdf", tmp_path / "b.pdf"
    for path in (a, b):
        assert invoke("sweep", "resnet50", "--mode", "width,depth", "--plot",
                      str(path)).exit_code == 0
    assert a.read_bytes()[:5] == b"%PDF-"
    assert a.read_bytes() == b.read_bytes()  # no creation date: the same plot, the same file


@pytest.mark.parametrize("name", ["x.jpg", "x", "x.png.txt"])
def test_unknown_plot_suffix_is_a_usage_error_before_any_work(tmp_path, name):
    r = invoke("sweep", "resnet50", "--plot", str(tmp_path / name))
    assert r.exit_code == 2
    assert "Invalid value for '--plot'" in r.stderr and "use a .png, .svg, .pdf file name" in r.stderr
    assert r.stdout == "" and list(tmp_path.iterdir()) == []
    r = invoke("fit", "resnet50", "--target-macs", "5G", "--plot", str(tmp_path / name))
    assert r.exit_code == 2 and ".png, .svg, .pdf" in r.stderr


def test_the_legend_is_beside_the_data_not_over_it():
    pytest.importorskip("matplotlib")
    import io

    from scalekit.report import plot

    spec = load_spec(spec_path("efficientnet_b0"))
    fig = plot.sweep_figure(sweep(spec, ["width", "depth", "resolution", "compound"]), y="acts")
    fig.savefig(io.BytesIO(), format="png")  # lays it out
    (ax,) = fig.axes
    legend, axes = ax.get_legend().get_window_extent(), ax.get_window_extent()
    assert not legend.overlaps(axes)
    assert fig.bbox.x0 <= legend.x0 and legend.x1 <= fig.bbox.x1  # and on the figure
    assert fig.bbox.y0 <= legend.y0 and legend.y1 <= fig.bbox.y1


def test_fit_plot_draws_cost_against_the_coefficient_with_the_budget(tmp_path, published):
    pytest.importorskip("matplotlib")
    out = tmp_path / "fit.svg"
    r = invoke("fit", "efficientnet_b0", "--target-macs", "2G", "--plot", str(out))
    assert r.exit_code == 0, r.output
    assert r.stderr.strip().splitlines()[-1] == f"wrote {out}"
    doc = json.loads(invoke("fit", "efficientnet_b0", "--target-macs", "2G",
                            "--format", "json").stdout)["fit"]
    texts = svg_texts(out)
    assert min(size for _, size in texts) >= 9
    labels = [t for t, _ in texts]
    assert "budget: 2 G MACs" in labels and "compound coefficient phi" in labels
    assert f"fit: phi={doc['value']:.6g}, {doc['achieved'] / 1e9:.3g} G" in labels
    assert f"next step up: phi={doc['next']['value']:.6g}, {doc['next']['achieved'] / 1e9:.3g} G" \
        in labels
    assert "2 G" in labels  # a plain y tick at the budget's height


def test_sweep_json_is_a_check_baseline(tmp_path):
    """The stored query (values as a list) re-runs under `scalekit check`."""
    out = tmp_path / "sweep.json"
    assert invoke("sweep", "resnet50", "--mode", "width,dWr", "--values", "1,1.5",
                  "--format", "json", "-o", str(out)).exit_code == 0
    r = invoke("check", "--baseline", str(out))
    assert r.exit_code == 0, r.output


def test_readme_png_is_a_small_png():
    from .conftest import ROOT

    data = (ROOT / "docs" / "img" / "sweep.png").read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) < 200_000


@pytest.mark.parametrize("args,words", [
    (("--values", "1,x"), "--values"),
    (("--values", "1,inf"), "finite"),
    (("--mode", "wdth"), "wdth"),
    (("--y", "latency"), "--latency"),
])
def test_sweep_usage_errors(args, words):
    r = run_cli("sweep", "efficientnet_b0", *args)
    assert r.returncode == 2 and words in r.stderr and "Traceback" not in r.stderr


def test_sweep_bad_coefficient_one_line():
    r = run_cli("sweep", "efficientnet_b0", "--mode", "width", "--values", "1,-2")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and r.stdout == ""


def test_count_only_sweep_imports_no_torch():
    assert_no_torch(["sweep", "resnet50"],
                    ["sweep", "mobilenet_v2", "--mode", "compound,dWr", "--format", "csv"])


@needs_torch
def test_sweep_latency_on_a_tiny_model(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text("name: Tiny\nresolution: 32\nnum_classes: 10\nstem: {out: 8}\n"
                    "stages:\n  - {block: dwsep, out: 16, stride: 2}\n")
    counted = json.loads(invoke("sweep", str(path), "--mode", "width", "--values", "1,2",
                                "--format", "json").stdout)["records"]
    r = invoke("sweep", str(path), "--mode", "width", "--values", "1,2", "--latency",
               "--format", "json")  # a bare --latency predicts
    for rec in json.loads(r.stdout)["records"]:
        assert rec["latency"]["kind"] == "predicted" and rec["latency"]["predicted_ms"] > 0
    r = invoke("sweep", str(path), "--mode", "width", "--values", "1,2", "--latency",
               "measured", "--format", "json")
    recs = json.loads(r.stdout)["records"]
    for rec, c in zip(recs, counted):
        assert (rec["params"], rec["macs"], rec["acts"]) == (c["params"], c["macs"], c["acts"])
        lat = rec["latency"]
        assert lat["threads"] == 1 and lat["batch"] == 1 and lat["runs"] >= 5
        assert lat["p25_ms"] <= lat["median_ms"] <= lat["p75_ms"]
