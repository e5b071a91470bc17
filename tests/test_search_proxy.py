"""The built-in proxy task (``--evaluate builtin:proxy``): deterministic, it tells a clearly
too-small network from the baseline, and it says everywhere that it is a proxy, not ImageNet.

Tests train on a much smaller setting than the default (16 classes, 2,048 images, 2 epochs):
seconds per network on one core.
"""

from __future__ import annotations

import json

import pytest

import scalekit
from scalekit.search import proxy

from .conftest import run_cli
from .test_bad_input import assert_clear_error, run_batch

pytestmark = pytest.mark.usefixtures("one_thread")
SMALL = proxy.ProxyConfig(orientations=4, train=2048, test=512, epochs=2, batch=64, noise=0.15)
SMALL_CLI = "builtin:proxy:orientations=4,train=1024,test=256,epochs=1,batch=64,noise=0.15"


def test_the_task_is_deterministic_and_balanced():
    a, b = proxy.generate(SMALL), proxy.generate(SMALL)
    assert all((x == y).all() for x, y in zip(a, b))
    x_tr, y_tr, x_te, y_te = a
    assert x_tr.shape == (2048, 3, 64, 64) and x_te.shape == (512, 3, 64, 64)
    assert sorted(set(y_tr.tolist())) == list(range(16))
    assert max(list(y_tr).count(c) for c in range(16)) == 2048 // 16  # balanced
    other = proxy.generate(proxy.ProxyConfig(**{**SMALL.__dict__, "data_seed": 1}))
    assert not (other[0] == x_tr).all()


def test_the_proxy_tells_a_clearly_too_small_network_from_the_baseline():
    base = scalekit.load_spec("proxy_mbconv")
    small = scalekit.scale(base, width=0.25, depth=0.34, resolution=0.5)  # 16 px, 1/4 the width
    assert scalekit.count(small).macs * 20 < scalekit.count(base).macs
    data = proxy.generate(SMALL)
    r_base = proxy.train_and_evaluate(base, SMALL, 0, data=data)
    r_small = proxy.train_and_evaluate(small, SMALL, 0, data=data)
    chance = 1 / SMALL.classes
    assert r_base["accuracy"] > r_small["accuracy"] + 0.2, (r_base, r_small)
    assert r_base["accuracy"] > 3 * chance
    # deterministic: the same network and seed train to the same numbers
    again = proxy.train_and_evaluate(small, SMALL, 0, data=data)
    assert (again["accuracy"], again["train_loss"]) == (r_small["accuracy"], r_small["train_loss"])
    assert "not ImageNet" in r_base["task"]


def test_builtin_proxy_runs_a_search_and_says_it_is_a_proxy(tmp_path):
    common = ["search", "proxy_mbconv", "--evaluate", SMALL_CLI, "--alpha", "1.2", "--beta",
              "1.1", "--gamma", "1.15:1.2", "--tolerance", "0.3", "--workers", "2", "--journal",
              str(tmp_path / "j.jsonl")]
    r = run_cli(*common, "--plot", str(tmp_path / "p.png"))
    assert r.returncode == 0, r.stderr
    assert "PROXY TASK (not ImageNet)" in r.stdout and "PROXY TASK, NOT ImageNet" in r.stdout
    assert "proxy baseline: proxy_mbconv (bundled, made for the proxy task" in r.stdout
    assert "best: alpha=1.2 beta=1.1" in r.stdout and "PROXY TASK accuracy" in r.stdout
    doc = json.loads(run_cli(*common, "--format", "json").stdout)  # from the journal
    assert doc["search"]["proxy_task"] is True and doc["search"]["from_journal"] == 2
    assert any("NOT ImageNet" in n for n in doc["search"]["notes"])
    assert doc["best"]["metric"]["mean"] > 0 and doc["best"]["evaluations"][0]["values"][
        "classes"] == 16
    md = run_cli(*common, "--format", "markdown").stdout
    assert "PROXY TASK, NOT ImageNet" in md
    # another spec is trained as given, and the output says so
    r = run_cli("search", "mobilenet_v2", "--evaluate", SMALL_CLI, "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "builtin:proxy trains MobileNetV2 as given" in r.stdout
    assert "expect minutes per candidate" in r.stdout and "NOT ImageNet" in r.stderr
    w = tmp_path / "w.yaml"
    r = run_cli("search", "proxy_mbconv", "--evaluate", SMALL_CLI, "--alpha", "1.2", "--beta",
                "1.1", "--gamma", "1.15", "--journal", str(tmp_path / "j.jsonl"),
                "--write-spec", str(w))
    assert r.returncode == 0 and "on the proxy task" in w.read_text()
    assert "PROXY TASK (not ImageNet)" in w.read_text()


def test_bad_proxy_options_get_one_clear_line(tmp_path):
    cases = [("proxy-unknown-option", "builtin:proxy:epoch=2", 2, ["unknown option 'epoch=2'"]),
             ("proxy-not-a-number", "builtin:proxy:epochs=two", 2, ["epochs='two'"]),
             ("proxy-zero-epochs", "builtin:proxy:epochs=0", 2, ["epochs must be"]),
             ("proxy-metric", "builtin:proxy", 2, ["--metric", "accuracy"])]
    batch = [{"id": cid, "argv": ["search", "proxy_mbconv", "--evaluate", ev, "--alpha", "1.2",
                                  "--beta", "1.1", "--gamma", "1.15"]
              + (["--metric", "loss"] if cid == "proxy-metric" else []), "cwd": str(tmp_path)}
             for cid, ev, _, _ in cases]
    results = run_batch(batch, tmp_path)
    for cid, _, code, texts in cases:
        assert_clear_error(results[cid], code, texts)
