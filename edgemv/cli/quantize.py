"""`edgemv quantize`: INT8 / FP8 post-training quantization with NVIDIA Model Optimizer."""

import sys

import click

from .options import scan_impl_option, batch_size_option, device_option, seed_option, variant_option, weights_option
from .table import format_table

__all__ = ["quantize"]


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


@click.command()
@variant_option
@weights_option
@click.option("--precision", "-p", type=click.Choice(["int8", "fp8"], case_sensitive=False), default="int8",
              show_default=True, help="int8: per-channel weights, per-tensor activations. fp8: E4M3 per tensor "
                                      "(engines need sm_89+; not Jetson Orin).")
@click.option("--calib", type=click.Path(), default=None,
              help="Calibration images: a folder (recursive), an ImageFolder tree, a .txt/.csv list of paths, or "
                   "a .npy/.npz tensor. Default: the shipped calib/ set.")
@click.option("--calib-size", type=click.IntRange(min=1), default=512, show_default=True,
              help="At most N calibration images (a seeded subset).")
@click.option("--calib-method", type=click.Choice(["max", "entropy", "percentile"], case_sensitive=False),
              default="max", show_default=True,
              help="Activation range: max, or a ModelOpt histogram method (entropy: INT8 only; percentile 99.99).")
@batch_size_option
@device_option
@scan_impl_option
@click.option("--out", "-o", type=click.Path(), default=None,
              help="Run folder [default: edgemv-out/<variant>-<precision>].")
@seed_option
@click.option("--exclude", multiple=True, metavar="PATTERN",
              help="Keep modules matching this fnmatch pattern in high precision (repeatable), "
                   "e.g. '*.mixer.out_proj' or 'levels.3.*'.")
@click.option("--include", multiple=True, metavar="PATTERN",
              help="Quantize modules matching this pattern even if the default recipe keeps them in high "
                   "precision (repeatable), e.g. '*.mixer.x_proj'. --exclude wins over --include.")
@click.option("--conv-output", is_flag=True,
              help="Also quantize the outputs of the stem, ConvBlock and downsample convs, for ONNX Runtime on the "
                   "CPU: it then runs them as integer QLinearConv (MambaVision-T INT8 1.6-1.8x faster than FP32 "
                   "instead of 1.2-1.35x, measured). Costs a little fidelity; TensorRT does not need it. "
                   "See docs/quantize.md.")
@click.option("--eval", "eval_data", type=click.Path(), default=None,
              help="Held-out images for the fidelity check. Default: a seeded quarter of --calib, never used "
                   "for calibration.")
@click.option("--eval-size", type=click.IntRange(min=1), default=256, show_default=True,
              help="At most N held-out images.")
@click.option("--force", is_flag=True, help="Replace an existing run folder.")
# --max-drop: added by the validate stage (edgemv.validate.sensitivity.make_plan)
@click.option("--max-drop", type=float, default=None,
              help="Budget in points (top-1 drop with labelled --eval data, top-1 disagreement without): keep the "
                   "most sensitive layer groups in high precision until the held-out drop holds it; the choice and "
                   "its measurements go to quantize.json ('plan'). Exit status 3 if no choice holds it.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars or stage lines.")
def quantize(variant, weights, precision, calib, calib_size, calib_method, batch_size, device, out, seed, exclude,
             include, conv_output, eval_data, eval_size, force, quiet, max_drop=None):
    """Quantize a MambaVision variant to INT8 or FP8 with NVIDIA Model Optimizer (post-training, calibrated).

    Calibrates on --calib images with the variant's evaluation transform, keeps the scan, its inputs
    (x_proj/dt_proj), the depthwise conv1d, norms and softmax in high precision, checks agreement with FP32 on
    held-out images, and writes a run folder (model.pth via ModelOpt's save/restore, quantize.json) for
    `edgemv validate` and `edgemv export`. Real deployments calibrate on about 500 images of their own domain.

    \b
    Examples:
      edgemv quantize --variant t --weights random
      edgemv quantize --variant t --weights mambavision_tiny_1k.pth.tar --calib ~/photos --calib-size 500
      edgemv quantize -v t -p fp8 --calib-method percentile --exclude '*.mixer.out_proj'
    """
    from ..quantize.pipeline import run_quantize

    precision, calib_method = precision.lower(), calib_method.lower()
    if precision == "fp8" and calib_method == "entropy":
        raise click.UsageError("--calib-method entropy works on ModelOpt's integer grid only; with --precision fp8 "
                               "use max or percentile")
    if conv_output and max_drop is not None:
        raise click.UsageError("--conv-output and --max-drop cannot be combined yet: the sensitivity search "
                               "measures the default recipe")
    log = (lambda msg: None) if quiet else (lambda msg: click.echo(msg, err=True))
    result = run_quantize(
        variant=variant, weights=weights, precision=precision, calib=calib, calib_size=calib_size,
        calib_method=calib_method, batch_size=batch_size, device=device, out=out, seed=seed, include=include,
        exclude=exclude, force=force, eval_data=eval_data, eval_size=eval_size, progress=not quiet, log=log,
        plan=_max_drop_plan(max_drop, log, device), conv_output=conv_output,
        command="edgemv " + " ".join(sys.argv[1:]) if sys.argv and sys.argv[0].endswith("edgemv") else None,
    )
    info = result.info
    rows = [(g, c["quantized"], c["high_precision"]) for g, c in result.report.groups().items()]
    click.echo(format_table(["group", "quantized modules", "high-precision modules"], rows, align="lrr"))
    click.echo()
    fid = result.fidelity
    calib_info = info["calibration"]
    summary = [
        ("precision", f"{info['precision']} ({calib_info['method']} calibration)"),
        ("quantizers", f"{result.report.enabled_quantizers} enabled, {result.report.disabled_quantizers} disabled"),
        ("calibration", f"{calib_info['used']} images used, {len(calib_info['skipped'])} skipped"),
    ]
    if fid is not None:
        summary += [
            ("held-out images", f"{fid.images}" + (" (smoke test: pass --eval for a measurement)"
                                                    if fid.images < 50 else "")),
            ("top-1 agreement", f"{fid.top1_agreement * 100:.1f}%"),
            ("top-5 agreement", f"{fid.top5_agreement * 100:.1f}%"),
            ("logit cosine", f"{fid.cosine_mean:.4f} mean, {fid.cosine_min:.4f} min"),
            ("KL(fp32||q)", f"{fid.kl_mean:.4g} mean, {fid.kl_max:.4g} max"),
        ]
    else:
        summary.append(("fidelity", "not measured: no held-out images (pass --eval)"))
    if info["weights"]["random"]:
        summary.append(("note", "random weights: agreement numbers say little about a trained model"))
    if info["precision"] == "fp8":
        summary.append(("note", "FP8 engines need sm_89+ (Ada/Hopper/Blackwell): Jetson Orin cannot run them"))
    summary.append(("time", f"{result.seconds:.1f} s"))
    click.echo(format_table(["", "value"], summary, align="ll"))
    click.echo()
    for name, size in result.sizes.items():
        click.echo(f"saved {result.out_dir / name} ({_mb(size)})")
    click.echo(f"quantize success, {result.seconds:.1f} s, run folder {result.out_dir}")
    plan = info.get("plan") or {}
    if max_drop is not None and plan.get("met") is False:  # --max-drop (validate stage)
        from .validate import BudgetExceeded

        raise BudgetExceeded(f"--max-drop {max_drop:g} not reached: {plan['final_drop']:.2f} points with "
                             f"{', '.join(plan['excluded_groups']) or 'no group'} in high precision")


def _max_drop_plan(max_drop, log, device):
    """--max-drop: the validate stage's search as run_quantize's ``plan`` hook (None without the option)."""
    if max_drop is None:
        return None
    from ..validate.sensitivity import make_plan

    return make_plan(max_drop, log=log, device=device)
