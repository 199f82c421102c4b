"""Every example script runs end to end with tiny settings and writes its plot (each in a few seconds)."""
import re
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest

import tinytensor as tt
from tinytensor.download import DownloadError
from tinytensor.nn import datasets, training

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


# Every script a person runs (the exercise stubs are not run this way).
SCRIPTS = sorted(path.relative_to(EXAMPLES).with_suffix("").as_posix() for path in EXAMPLES.rglob("*.py")
                 if "exercises" not in path.parts)


@pytest.mark.parametrize("name", SCRIPTS)
def test_help_shows_the_defaults(name, capsys):
    with pytest.raises(SystemExit) as stop:
        run_example(name, "--help")
    assert stop.value.code == 0
    assert re.search(r"--device DEVICE +cpu, cuda or cuda:N \(default: cpu\)", capsys.readouterr().out)


@pytest.mark.parametrize("name", SCRIPTS)
def test_cuda_without_cupy_is_a_one_line_error(name, without_cupy, capsys):
    with pytest.raises(SystemExit) as stop:
        run_example(name, "--device", "cuda")
    assert stop.value.code == 2          # argparse's usage error: no traceback
    assert re.search(r"error: argument --device: CuPy is (not installed|installed but no CUDA GPU)",
                     capsys.readouterr().err)


@pytest.mark.parametrize("name, option, value, message", [
    ("train_mnist", "--epochs", "0", "must be at least 1, got 0"),
    ("train_cnn", "--batch-size", "-8", "must be at least 1, got -8"),
    ("train_cnn", "--limit", "ten", "'ten' is not an integer"),
])
def test_a_count_out_of_range_is_a_one_line_error(name, option, value, message, capsys):
    with pytest.raises(SystemExit) as stop:
        run_example(name, option, value)
    assert stop.value.code == 2
    assert f"error: argument {option}: {message}" in capsys.readouterr().err


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


def test_logistic_regression_separates_two_clouds_and_resumes(tmp_path):
    accuracy = run_example("logistic_regression", "--epochs", 4, "--out-dir", tmp_path / "whole")
    assert accuracy > 0.9
    assert (tmp_path / "whole" / "logistic_regression.png").stat().st_size > 10_000
    run_example("logistic_regression", "--epochs", 2, "--out-dir", tmp_path / "resumed")
    assert run_example("logistic_regression", "--epochs", 4, "--out-dir", tmp_path / "resumed", "--resume") == accuracy
    assert_same_weights(checkpoint_weights(tmp_path / "whole" / "checkpoint.npz"),
                        checkpoint_weights(tmp_path / "resumed" / "checkpoint.npz"))


def test_universal_approximation_wider_fits_better_and_resumes(tmp_path):
    rows = run_example("universal_approximation", "--widths", "1,16", "--steps", 300, "--out-dir", tmp_path)
    assert float(rows[1][2]) < float(rows[0][2])                                # mse falls as the layer widens
    assert (tmp_path / "universal_approximation.png").stat().st_size > 10_000
    run_example("universal_approximation", "--widths", "1", "--steps", 300, "--out-dir", tmp_path / "resumed")
    resumed = run_example("universal_approximation", "--widths", "1,16", "--steps", 300, "--out-dir",
                          tmp_path / "resumed", "--resume")
    assert resumed == rows


# ------------------------------------------------------------------------------------ a newcomer's first runs
ALL = ["train_mnist", "train_cnn", "autoencoder", "logistic_regression", "universal_approximation",
       "experiments/deep_activations", "train_translation"]


@pytest.mark.parametrize("name", ALL)
def test_help_shows_the_defaults_and_the_resume_convention(name, capsys):
    with pytest.raises(SystemExit) as caught:
        run_example(name, "--help")
    assert caught.value.code == 0
    text = " ".join(capsys.readouterr().out.split())                  # argparse wraps lines
    assert "dropout (default: 0)" in text and "(default: cpu)" in text         # --seed's default
    assert "--resume continue the run saved in --checkpoint" in text
    assert "(default: <out-dir>/checkpoint.npz)" in text and "(default: None)" not in text


def offline(monkeypatch):
    """Every download fails at once, as it does on a machine without a network."""
    def no_network(url, filename, *args, **kwargs):
        raise DownloadError(f"could not download {filename} from {url} (<urlopen error [Errno -3] "
                            "Temporary failure in name resolution>); download it elsewhere")
    monkeypatch.setattr(datasets, "download", no_network)


@pytest.mark.parametrize("name", ["train_mnist", "train_cnn", "autoencoder", "experiments/deep_activations"])
def test_missing_data_offline_is_one_clear_paragraph(name, tmp_path, monkeypatch):
    offline(monkeypatch)
    with pytest.raises(SystemExit) as caught:
        run_example(name, "--data-dir", tmp_path / "empty", "--out-dir", tmp_path)
    message = str(caught.value.code)
    assert message.startswith("error: mnist: train-images-idx3-ubyte.gz, ") and "\n" not in message
    assert "are not on this machine, and downloading failed: could not download" in message
    assert f"Looked in {tmp_path / 'empty'}, {tmp_path / 'empty' / 'mnist'}." in message
    assert "or pass --data-dir (data_dir=) naming the folder that holds them or the one that holds mnist/" in message


def test_resume_without_a_checkpoint_says_so(tmp_path):
    with pytest.raises(SystemExit) as caught:
        run_example("logistic_regression", "--resume", "--out-dir", tmp_path)
    assert str(caught.value.code).startswith(f"error: no checkpoint at {tmp_path / 'checkpoint.npz'} to resume from")


def checkpoint_weights(path):
    return {name: value.numpy() for name, value in tt.load(path)["model"].items()}


def assert_same_weights(a, b):
    assert list(a) == list(b)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_train_mnist_resumes_exactly_and_takes_the_folder_holding_mnist(shared_data, tmp_path, monkeypatch):
    """--data-dir names the folder that holds mnist/; a run stopped after epoch 1 and resumed ends as the
    uninterrupted one does."""
    common = ["--limit", 256, "--epochs", 2, "--dropout", 0.2, "--data-dir", shared_data]
    whole = run_example("train_mnist", *common, "--out-dir", tmp_path / "whole")

    real_train_epoch = training.train_epoch
    epochs_started = []

    def stopped_in_epoch_2(*args, **kwargs):
        epochs_started.append(1)
        if len(epochs_started) == 2:
            raise KeyboardInterrupt                          # Ctrl-C during the second epoch
        return real_train_epoch(*args, **kwargs)
    monkeypatch.setattr(training, "train_epoch", stopped_in_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        run_example("train_mnist", *common, "--out-dir", tmp_path / "resumed")
    monkeypatch.undo()
    resumed = run_example("train_mnist", *common, "--out-dir", tmp_path / "resumed", "--resume")

    assert [row[:-1] for row in resumed] == [row[:-1] for row in whole]    # the accuracies; not the seconds
    assert_same_weights(checkpoint_weights(tmp_path / "whole" / "checkpoint.npz"),
                        checkpoint_weights(tmp_path / "resumed" / "checkpoint.npz"))
    assert (tmp_path / "resumed" / "checkpoint.best.npz").is_file()


def test_autoencoder_and_its_resume(shared_data, tmp_path, capsys):
    """(That a resume is exact is shown with logistic_regression, which uses the same two helpers.)"""
    common = ["--limit", 256, "--data-dir", shared_data / "mnist", "--out-dir", tmp_path]
    test_mse = run_example("autoencoder", *common, "--epochs", 1)
    assert 0 < test_mse < 0.25
    assert (tmp_path / "autoencoder.png").stat().st_size > 5_000
    assert run_example("autoencoder", *common, "--epochs", 2, "--resume") < test_mse
    assert f"resuming from {tmp_path / 'checkpoint.npz'} after epoch 1" in capsys.readouterr().out
    assert tt.load(tmp_path / "checkpoint.npz")["epoch"] == 2


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
    common = ["--limit", 512, "--steps", 5, "--depth", 6, "--width", 32, "--data-dir", shared_data / "mnist"]
    rows = run_example("experiments/deep_activations", *common, "--out-dir", tmp_path)
    ratios = {row[0]: float(row[3]) for row in rows}          # |grad| of the first layer / the last
    assert ratios["sigmoid"] < 0.01 < ratios["relu"]
    assert (tmp_path / "deep_activations.png").stat().st_size > 10_000
    run_example("experiments/deep_activations", *common, "--activations", "sigmoid", "--out-dir", tmp_path / "resumed")
    assert run_example("experiments/deep_activations", *common, "--out-dir", tmp_path / "resumed", "--resume") == rows


def test_draw_graph_help_shows_the_defaults(capsys):
    with pytest.raises(SystemExit):
        run_example("draw_graph", "--help")
    assert "(default: 4,8,3)" in " ".join(capsys.readouterr().out.split())


def test_train_translation_runs_end_to_end_and_resumes_exactly(tmp_path, capsys, monkeypatch):
    common = ["--epochs", 2, "--steps", 3, "--batch-size", 16, "--test-size", 24, "--d-model", 16, "--heads", 2,
              "--layers", 1, "--beam", 2, "--dropout", 0.1]
    match = run_example("train_translation", *common, "--out-dir", tmp_path)
    assert 0 <= match <= 1
    assert (tmp_path / "translation_curves.png").stat().st_size > 10_000
    assert (tmp_path / "translation_attention.png").stat().st_size > 10_000
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1] == f"exact match: {100 * match:.1f}%"
    assert any("greedy" in line and "beam 2" in line for line in out)

    real_save = training.save_checkpoint

    def save_then_stop(*args, **kwargs):                 # Ctrl-C right after the first epoch's checkpoint
        real_save(*args, **kwargs)
        raise KeyboardInterrupt
    monkeypatch.setattr(training, "save_checkpoint", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        run_example("train_translation", *common, "--out-dir", tmp_path / "resumed")
    monkeypatch.undo()
    assert run_example("train_translation", *common, "--out-dir", tmp_path / "resumed", "--resume") == match
    assert_same_weights(checkpoint_weights(tmp_path / "checkpoint.npz"),
                        checkpoint_weights(tmp_path / "resumed" / "checkpoint.npz"))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")    # NumPy's overflow warnings on the way to NaN
def test_a_diverging_run_stops_with_one_paragraph_naming_the_step(shared_data, tmp_path):
    with pytest.raises(SystemExit) as caught:             # SGD with lr 1e30: the weights overflow at once
        run_example("train_mnist", "--optimizer", "sgd", "--lr", 1e30, "--limit", 256, "--epochs", 1,
                    "--data-dir", shared_data / "mnist", "--out-dir", tmp_path)
    message = str(caught.value.code)
    assert message.startswith("error: dropout 0 training stopped at epoch 1, step ") and "of 2: the loss" in message
    assert "a lower learning rate" in message and not (tmp_path / "checkpoint.npz").exists()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_the_autoencoder_stops_at_a_nan_too(shared_data, tmp_path):
    with pytest.raises(SystemExit) as caught:
        run_example("autoencoder", "--lr", 1e30, "--limit", 256, "--epochs", 1, "--data-dir", shared_data / "mnist",
                    "--out-dir", tmp_path)
    assert str(caught.value.code).startswith("error: training stopped at epoch 1, step ")


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
