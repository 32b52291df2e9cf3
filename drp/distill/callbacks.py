"""Trainer callbacks: the loss curve as a PNG next to the checkpoints, refreshed at every save."""

from __future__ import annotations

from pathlib import Path

from transformers import TrainerCallback

LOSS_PNG = "loss.png"


def plot_loss(log_history: list[dict], path: Path, title: str = "") -> Path | None:
    """Training (and eval) loss against the step; None when nothing was logged yet."""
    train = [(entry["step"], entry["loss"]) for entry in log_history if "loss" in entry]
    evals = [(entry["step"], entry["eval_loss"]) for entry in log_history if "eval_loss" in entry]
    if not train and not evals:
        return None
    try:
        import matplotlib
    except ImportError:  # a bare training machine: never lose a finished run over a plot
        print(f"[drp distill] matplotlib is not installed: {path.name} not written", flush=True)
        return None

    matplotlib.use("Agg")  # no display on training machines
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    figure, axes = plt.subplots(figsize=(7, 4))
    if train:
        axes.plot(*zip(*train), label="train loss", marker="." if len(train) < 50 else None)
    if evals:
        axes.plot(*zip(*evals), label="eval loss", marker="o")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("step")
    axes.set_ylabel("loss")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


class LossPlotCallback(TrainerCallback):
    def __init__(self, title: str = ""):
        self.title = title

    def _plot(self, args, state) -> None:
        if state.is_world_process_zero:
            plot_loss(state.log_history, Path(args.output_dir) / LOSS_PNG, self.title)

    def on_save(self, args, state, control, **kwargs):
        self._plot(args, state)

    def on_train_end(self, args, state, control, **kwargs):
        self._plot(args, state)
