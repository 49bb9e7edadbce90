"""The sensitivity sweep as a PNG bar chart (matplotlib, Agg backend: no display needed)."""

import io
from typing import Optional

from ..atomic import write_bytes_atomic

__all__ = ["plot_sensitivity"]


def plot_sensitivity(report, path, max_drop: Optional[float] = None) -> str:
    """One horizontal bar per group, network order top to bottom: the drop its quantization alone causes.
    Groups the default recipe quantizes are dark, groups it keeps in high precision light; the budget (if any) is
    a dashed line. Written atomically."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    groups = list(report.groups)
    labels = [g.group for g in groups]
    drops = [g.drop for g in groups]
    colors = ["#1f4e79" if g.in_recipe else "#9dc3e6" for g in groups]
    fig, ax = plt.subplots(figsize=(7.5, 0.38 * len(groups) + 1.6), dpi=110)
    y = list(range(len(groups)))[::-1]
    ax.barh(y, drops, color=colors)
    for yi, g in zip(y, groups):
        ax.text(max(g.drop, 0) + 0.02 * (max(drops + [1.0])), yi, f"{g.drop:+.2f}  KL {g.kl_mean:.2g}",
                va="center", fontsize=8)
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=9)
    unit = "top-1 drop (points)" if report.metric == "top1_drop" else "top-1 disagreement with FP32 (points)"
    ax.set_xlabel(f"{unit} when only this group is {report.precision.upper()}")
    if max_drop is not None:
        ax.axvline(max_drop, color="#c00000", linestyle="--", linewidth=1, label=f"budget {max_drop:g}")
        ax.legend(loc="lower right", fontsize=8)
    ax.axvline(0, color="black", linewidth=0.6)
    title = f"Sensitivity, {report.precision.upper()} ({report.calib_method}), {report.images} images"
    if report.full is not None:
        title += f"\ndefault recipe: {report.full.drop:+.2f} points"
    ax.set_title(title, fontsize=10)
    right = max(drops + [max_drop or 0.0, 0.5])
    ax.set_xlim(min(min(drops + [0.0]) * 1.1, 0), right * 1.35 + 0.1)
    fig.tight_layout()
    png = io.BytesIO()
    try:
        fig.savefig(png, format="png")
    finally:
        plt.close(fig)
    return write_bytes_atomic(path, png.getvalue())
