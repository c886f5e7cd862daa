"""CPU smoke run of tconv.bench and tconv.demo at tiny sizes: every code path but the GPU's."""
import json
import math

import pytest

from tconv import bench, demo


def test_shipped_shapes_parse_and_shrink():
    shapes = bench.parse_shapes(bench.SHAPES.read_text())
    names = [s.name for s in shapes]
    assert len(names) == len(set(names))
    seed = shapes[names.index("seed")]
    assert seed.descriptor() == ("N=8 C_in=64 C_out=64 H=1024 W=1024 k=3 s=1 p=0 op=0 d=1 "
                                 "g=1 bias=0")
    assert seed.y_shape == (8, 64, 1026, 1026)
    assert seed.flop == 2 * 8 * 64 * 64 * 1024 * 1024 * 9
    assert any("quick" in s.tags for s in shapes)
    for shape in shapes:
        bench.check_shape(shape.shrunk(), shape.name)


def test_descriptor_pairs_defaults_and_errors():
    (shape,) = bench.parse_shapes("odd quick N=7 C_in=6 C_out=4 H=9 W=5 k=5x3 s=3x2 op=1 g=2 "
                                  "bias=1  # comment\n\n# only a comment\n")
    assert (shape.k, shape.s, shape.p, shape.op, shape.d) == ((5, 3), (3, 2), (0, 0), (1, 1),
                                                             (1, 1))
    assert shape.tags == ("quick",) and shape.bias and shape.g == 2
    assert shape.weight_shape == (6, 2, 5, 3)
    for bad, message in (("a N=1 C_in=1 C_out=1 H=1 W=1", "missing k"),
                         ("a N=1 C_in=1 C_out=1 H=1 W=1 k=3 q=1", "unknown key"),
                         ("a N=1 C_in=1 C_out=1 H=1 W=1 k=3x", "HxW"),
                         ("a N=1 C_in=3 C_out=2 H=1 W=1 k=3 g=2", "groups"),
                         ("a N=1 C_in=1 C_out=1 H=1 W=1 k=3 s=2 op=2", "output_padding"),
                         ("a N=1 C_in=1 C_out=1 H=1 W=1 k=1 p=1", "empty")):
        with pytest.raises(ValueError, match=message):
            bench.parse_shapes(bad)


def test_bench_cpu_smoke(tmp_path, capsys):
    assert bench.main(["--device", "cpu", "--quick", "--reps", "1", "--warmup", "0",
                       "--out", str(tmp_path)]) == 0
    (result,) = tmp_path.glob("*-cpu-quick.json")
    report = json.loads(result.read_text())
    assert report["baseline"] == "torch-cpu"
    records = report["records"]
    quick = [s for s in bench.parse_shapes(bench.SHAPES.read_text())
             if "quick" in s.tags]
    assert len(records) == len(quick) * len(bench.PASSES) * len(bench.MODES)
    for r in records:
        assert r["algorithm"] and r["tconv_ms"] > 0 and r["baseline_ms"] is None
        if r["pass"] != "forward_backward":
            assert math.isfinite(r["tconv_error"]) and r["baseline_error"] < 1e-4
            if r["mode"] == "fp32":
                assert r["tconv_error"] < 1e-4
    assert result.with_suffix(".md").read_text().startswith("# tconv vs torch-cpu")
    out = capsys.readouterr()
    assert "seed" in out.out and "forward_backward" in out.out
    assert "smoke run" in out.err and "[1/" in out.err


def test_chart(tmp_path):
    pytest.importorskip("matplotlib")
    records = [bench.Record(shape, "", pass_, mode, 1.0, "v", tconv_ms=1.0, baseline_ms=ms)
               for shape, ms in (("a", 2.0), ("b", 0.5))
               for pass_ in bench.PASSES for mode in bench.MODES]
    path = tmp_path / "chart.png"
    bench.chart(records, {"card": "test card", "date": "today"}, path)
    assert path.read_bytes()[:4] == b"\x89PNG"
    assert "speedup" in bench.summary(records, "cuDNN")


def test_demo_cpu_smoke(capsys):
    assert demo.main(["--device", "cpu", "--size", "1", "4", "8", "8", "--trials", "2",
                      "--reps", "1", "--warmup", "0"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("NO GPU")
    assert "bit-identical after manual_seed(42): yes" in out
    assert out.count("verdict: PASS") == 2
    assert "allow_tf32=True (PyTorch default)" in out and "allow_tf32=False" in out
    assert "runs tf32" not in out and "runs fp32" not in out  # no CUDA modes on the CPU
    assert out.count("tconv runs the C reference") == 2
