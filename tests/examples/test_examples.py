"""Every example script runs end to end with tiny settings and writes its plot (each in a few seconds)."""
import re
import runpy
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run_example(name, *args):
    """Run examples/<name>.py as a script with these arguments; return what its main() returned."""
    argv = sys.argv
    sys.argv = [name, *map(str, args)]
    try:
        namespace = runpy.run_path(str(EXAMPLES / f"{name}.py"), run_name="example")
        return namespace["main"]()
    finally:
        sys.argv = argv


def test_train_mnist_compares_dropout_and_checkpoints(shared_data, tmp_path, capsys):
    rows = run_example("train_mnist", "--limit", 512, "--epochs", 1, "--compare-dropout", "0,0.3",
                       "--data-dir", shared_data / "mnist", "--out-dir", tmp_path,
                       "--checkpoint", tmp_path / "mlp.npz", "--patience", 2)
    assert (tmp_path / "mnist_mlp.png").stat().st_size > 10_000
    assert [row[0] for row in rows] == ["0", "0.3"]
    assert all(0.3 < row[4] <= 1 for row in rows)            # test accuracy well above chance (0.1)
    assert (tmp_path / "mlp.dropout0.3.npz").is_file()
    assert "train-val gap" in capsys.readouterr().out


@pytest.mark.parametrize("dataset", ["mnist", "fashion"])
def test_train_cnn(shared_data, tmp_path, dataset):
    folder = shared_data / ("mnist" if dataset == "mnist" else "fashion-mnist")
    test_acc = run_example("train_cnn", "--dataset", dataset, "--limit", 512, "--epochs", 1, "--augment",
                           "--data-dir", folder, "--out-dir", tmp_path)
    assert (tmp_path / f"lenet_{dataset}.png").stat().st_size > 10_000
    assert 0 <= test_acc <= 1


def test_logistic_regression_separates_two_clouds(tmp_path):
    accuracy = run_example("logistic_regression", "--epochs", 5, "--out-dir", tmp_path)
    assert accuracy > 0.9
    assert (tmp_path / "logistic_regression.png").stat().st_size > 10_000


def test_universal_approximation_wider_fits_better(tmp_path):
    rows = run_example("universal_approximation", "--widths", "1,16", "--steps", 300, "--out-dir", tmp_path)
    assert float(rows[1][2]) < float(rows[0][2])                                # mse falls as the layer widens
    assert (tmp_path / "universal_approximation.png").stat().st_size > 10_000


def test_autoencoder(shared_data, tmp_path):
    test_mse = run_example("autoencoder", "--limit", 512, "--epochs", 1, "--data-dir", shared_data / "mnist",
                           "--out-dir", tmp_path)
    assert 0 < test_mse < 0.25
    assert (tmp_path / "autoencoder.png").stat().st_size > 5_000


def test_draw_graph_writes_dot_and_picture(tmp_path):
    dot_path, picture = run_example("draw_graph", "--out-dir", tmp_path, "--format", "svg")
    text = dot_path.read_text()
    assert text.startswith("digraph") and "layers.1.weight" in text and "|grad|" in text
    assert picture is None or "<svg" in picture.read_text()


def test_train_mnist_compares_optimizers(shared_data, tmp_path, capsys):
    rows = run_example("train_mnist", "--limit", 512, "--epochs", 1, "--compare-optimizers", "sgd,adam",
                       "--data-dir", shared_data / "mnist", "--out-dir", tmp_path)
    assert [row[0] for row in rows] == ["sgd", "adam"]
    assert all(0.3 < row[4] <= 1 for row in rows)
    assert (tmp_path / "mnist_mlp_optimizers.png").stat().st_size > 10_000
    assert re.search(r"^ *optimizer +train acc", capsys.readouterr().out, flags=re.M)


def test_deep_activations_sigmoid_gradients_vanish(shared_data, tmp_path):
    rows = run_example("experiments/deep_activations", "--limit", 512, "--steps", 5, "--depth", 6,
                       "--width", 32, "--data-dir", shared_data / "mnist", "--out-dir", tmp_path)
    ratios = {row[0]: float(row[3]) for row in rows}          # |grad| of the first layer / the last
    assert ratios["sigmoid"] < 0.01 < ratios["relu"]
    assert (tmp_path / "deep_activations.png").stat().st_size > 10_000


def test_train_translation_runs_end_to_end(tmp_path, capsys):
    match = run_example("train_translation", "--epochs", 1, "--steps", 6, "--batch-size", 16, "--test-size", 24,
                        "--d-model", 16, "--heads", 2, "--layers", 1, "--beam", 2, "--out-dir", tmp_path)
    assert 0 <= match <= 1
    assert (tmp_path / "translation_curves.png").stat().st_size > 10_000
    assert (tmp_path / "translation_attention.png").stat().st_size > 10_000
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1] == f"exact match: {100 * match:.1f}%"
    assert any("greedy" in line and "beam 2" in line for line in out)


# ----------------------------------------------------------------------------------- --device cuda
# On a GPU with CuPy, or else on the strict CuPy stand-in (tinytensor/testing/fake_cupy.py): a few steps
# of each example, to prove the cuda path runs end to end.

MNIST_EXAMPLES = {"train_mnist": ["--compare-dropout", "0,0.3"], "train_cnn": ["--augment"], "autoencoder": []}


@pytest.mark.cuda
@pytest.mark.parametrize("name", sorted(MNIST_EXAMPLES))
def test_mnist_examples_run_on_cuda(name, shared_data, tmp_path):
    run_example(name, "--device", "cuda", "--limit", 128, "--epochs", 1, "--batch-size", 64,
                "--data-dir", shared_data / "mnist", "--out-dir", tmp_path, *MNIST_EXAMPLES[name])
    assert any(tmp_path.glob("*.png"))


@pytest.mark.cuda
def test_deep_activations_runs_on_cuda(shared_data, tmp_path):
    rows = run_example("experiments/deep_activations", "--device", "cuda", "--limit", 128, "--steps", 2,
                       "--depth", 3, "--width", 16, "--data-dir", shared_data / "mnist", "--out-dir", tmp_path)
    assert [row[0] for row in rows] == ["sigmoid", "relu"]


@pytest.mark.cuda
def test_small_examples_run_on_cuda(tmp_path):
    assert run_example("logistic_regression", "--device", "cuda", "--epochs", 5, "--out-dir", tmp_path) > 0.9
    rows = run_example("universal_approximation", "--device", "cuda", "--widths", "4", "--steps", 30,
                       "--out-dir", tmp_path)
    assert float(rows[0][2]) < 2


@pytest.mark.cuda
def test_translation_and_graph_examples_run_on_cuda(tmp_path):
    match = run_example("train_translation", "--device", "cuda", "--epochs", 1, "--steps", 3, "--batch-size", 8,
                        "--test-size", 8, "--d-model", 16, "--heads", 2, "--layers", 1, "--beam", 2,
                        "--out-dir", tmp_path)
    assert 0 <= match <= 1
    dot_path, _ = run_example("draw_graph", "--device", "cuda", "--out-dir", tmp_path, "--format", "svg")
    assert dot_path.read_text().startswith("digraph")
