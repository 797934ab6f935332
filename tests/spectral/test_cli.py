"""``neumo spectral``: analyze safetensors checkpoints and run Hessian algorithms; one-line errors."""

import json

import pytest
import torch
from safetensors.torch import save_file

from neumo.cli.main import main
from neumo.spectral.ranks import matrix_ranks


def run_cli(args, capsys):
    with pytest.raises(SystemExit) as e:
        main(args)
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


def test_analyze_json_matches_library_and_base_difference(tmp_path, capsys):
    g = torch.Generator().manual_seed(0)
    w0 = {"a.weight": torch.randn(6, 4, generator=g), "a.bias": torch.randn(6, generator=g)}
    w1 = {"a.weight": w0["a.weight"] + torch.outer(torch.ones(6), torch.arange(4.0)), "a.bias": w0["a.bias"]}
    save_file(w0, str(tmp_path / "w0.safetensors"))
    save_file(w1, str(tmp_path / "w1.safetensors"))
    code, out, _ = run_cli(["spectral", "analyze", str(tmp_path / "w1.safetensors"), "--json"], capsys)
    assert code == 0
    layers = json.loads(out)["layers"]
    assert [r["name"] for r in layers] == ["a.weight"]
    assert layers[0]["stable_rank"] == pytest.approx(matrix_ranks(w1["a.weight"].double())["stable_rank"])
    code, out, _ = run_cli(["spectral", "analyze", str(tmp_path / "w1.safetensors"), "--base",
                            str(tmp_path / "w0.safetensors"), "--json"], capsys)
    assert json.loads(out)["layers"][0]["stable_rank"] == pytest.approx(1.0)  # a rank-one update
    code, out, _ = run_cli(["spectral", "analyze", str(tmp_path / "w1.safetensors")], capsys)
    assert code == 0 and "a.weight" in out


def test_analyze_errors_are_one_line(tmp_path, capsys):
    code, _, err = run_cli(["spectral", "analyze", str(tmp_path / "missing.safetensors")], capsys)
    assert code == 2 and err.startswith("error:") and "does not exist" in err and len(err.strip().splitlines()) == 1
    (tmp_path / "x.pt").write_bytes(b"0")
    code, _, err = run_cli(["spectral", "analyze", str(tmp_path / "x.pt")], capsys)
    assert code == 2 and "not a .safetensors" in err
    save_file({"w": torch.ones(3, 3)}, str(tmp_path / "a.safetensors"))
    save_file({"v": torch.ones(3, 3)}, str(tmp_path / "b.safetensors"))
    code, _, err = run_cli(["spectral", "analyze", str(tmp_path / "a.safetensors"), "--base",
                            str(tmp_path / "b.safetensors")], capsys)
    assert code == 2 and "same architecture" in err


def test_hessian_command_json(capsys):
    code, out, _ = run_cli(["spectral", "hessian", "--hidden", "8", "--n-samples", "64", "--k", "3", "--trace",
                            "--density", "--json"], capsys)
    assert code == 0
    d = json.loads(out)
    assert d["n_params"] == 64 * 8 + 8 + 8 * 10 + 10 and len(d["eigenvalues"]) == 3 and d["converged"]
    assert d["eigenvalues"] == sorted(d["eigenvalues"], reverse=True)
    code, _, err = run_cli(["spectral", "hessian", "--hidden", "a,b"], capsys)
    assert code == 2 and "comma-separated" in err
    code, _, err = run_cli(["spectral", "hessian", "--backend", "magic"], capsys)
    assert code == 2 and "backend" in err


def test_hessian_command_with_a_bf16_surrogate_certifies_the_same_eigenvalues(capsys):
    args = ["spectral", "hessian", "--hidden", "8", "--n-samples", "64", "--k", "3", "--tol", "1e-6", "--json"]
    code, out, _ = run_cli(args, capsys)
    plain = json.loads(out)
    code, out, _ = run_cli(args + ["--surrogate", "bf16"], capsys)
    assert code == 0
    d = json.loads(out)
    assert d["converged"] and d["surrogate"] == "bf16" and d["surrogate_matvecs"] > 0
    assert d["matvecs"] < plain["matvecs"]  # exact products: the point of the surrogate
    for a, b in zip(d["eigenvalues"], plain["eigenvalues"]):
        assert abs(a - b) <= 2e-6 * abs(b)  # both within tol = 1e-6 of the truth
    code, _, err = run_cli(["spectral", "hessian", "--surrogate", "fp8"], capsys)
    assert code == 2 and "surrogate" in err
    code, _, err = run_cli(["spectral", "hessian", "--surrogate", "bf16", "--backend", "finite_difference"], capsys)
    assert code == 2 and "finite_difference" in err
    code, _, err = run_cli(["spectral", "hessian", "--tol", "inf"], capsys)
    assert code == 2 and "--tol" in err
    code, _, err = run_cli(["spectral", "hessian", "--hidden", "8", "--k", "1000", "--surrogate", "bf16"], capsys)
    assert code == 2 and "[1, 610]" in err  # more eigenvalues than parameters
