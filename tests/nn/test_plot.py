"""nn.plot: training curves stay readable for a one-epoch run and for a long one."""
import numpy as np

from tinytensor.nn.plot import curves_figure, plot_curves

ONE_EPOCH = {"train_loss": [2.1], "val_loss": [1.74], "train_acc": [0.38], "val_acc": [0.59]}


def visible_ticks(ax):
    low, high = ax.get_xlim()
    return [tick for tick in ax.get_xticks() if low <= tick <= high]


def test_one_epoch_has_a_whole_number_tick_and_train_and_validation_look_different(tmp_path):
    fig = curves_figure({"run": ONE_EPOCH})
    for ax in fig.axes:
        assert visible_ticks(ax) == [1.0]
        train, val = ax.lines
        assert (train.get_marker(), train.get_linestyle()) != (val.get_marker(), val.get_linestyle())
        assert train.get_marker() != val.get_marker()          # a single point has no line to tell them apart
    assert fig.axes[0].get_yscale() == "linear"                # a narrow range: a log axis would label it 2 x 10^0
    assert plot_curves({"run": ONE_EPOCH}, tmp_path / "curves.png").stat().st_size > 10_000


def test_many_epochs_have_whole_number_ticks_and_a_log_loss_axis_over_decades():
    losses = list(np.geomspace(0.5, 0.02, 12))
    fig = curves_figure({"run": {"train_loss": losses, "val_loss": losses}})
    ticks = visible_ticks(fig.axes[0])
    assert len(ticks) >= 4 and all(float(t).is_integer() for t in ticks)
    assert fig.axes[0].get_yscale() == "log"
