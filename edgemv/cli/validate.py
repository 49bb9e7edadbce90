"""`edgemv validate`: the accuracy drop of a quantized/exported model against FP32, with a budget."""

import json
import os
import sys

import click

from .options import scan_impl_option, trust_pickle_option, VariantType, batch_size_option, device_option, seed_option
from .table import format_table

__all__ = ["validate", "EXIT_BUDGET", "BudgetExceeded"]

EXIT_BUDGET = 3  # the drop exceeds --max-drop (1 is any other error, 2 a usage error)


class BudgetExceeded(click.ClickException):
    """Over budget: exit status 3 and one line (a ClickException, so run_cli and Click's own main both exit 3)."""

    exit_code = EXIT_BUDGET

    def __init__(self, message: str, quiet: bool = False):
        super().__init__(message)
        self.quiet = quiet

    def show(self, file=None):
        if not self.quiet:
            click.echo(f"FAIL: {self.message}", err=True)


def _max_drop(value):
    return None if value is None or value == float("inf") else value


@click.command()
@click.argument("run_or_model", type=click.Path())
@click.option("--data", "-d", type=click.Path(), default=None,
              help="Evaluation images: an ImageFolder tree (folder names = ImageNet synsets n01440764... or class "
                   "indices 0..N-1), a CSV/list of path,label, a plain folder (no labels), or .npy/.npz. "
                   "Default: the run's own held-out images (unlabelled).")
@click.option("--max-drop", type=float, default=0.5, show_default=True,
              help="Budget in percentage points: top-1 accuracy drop with labels, top-1 disagreement with FP32 "
                   "without. Exceeding it exits with status 3. 'inf' disables the gate.")
@batch_size_option
@device_option
@scan_impl_option
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="At most N images (a seeded subset, the same on every machine).")
@seed_option
@click.option("--reference", type=click.Path(), default=None,
              help="The FP32 model to compare with: a run folder, a whole pickled model, or a checkpoint with "
                   "--variant. Default: the run the model belongs to (quantizers switched off).")
@click.option("--variant", "-v", type=VariantType(), default=None,
              help="Variant of the FP32 reference (with --weights) when there is no run to take it from.")
@click.option("--weights", "-w", default=None, help="Weights of --variant (file, hub id, 'official').")
@click.option("--out", "-o", type=click.Path(), default=None,
              help="Folder for the reports [default: the run folder, else edgemv-out/validate].")
@click.option("--report", "report_path", type=click.Path(), default=None,
              help="Where to write the JSON report [default: OUT/validate.json, or validate-<file>.json].")
@click.option("--sensitivity", is_flag=True,
              help="Also quantize one group of layers at a time (per level and kind) and report the drop each "
                   "causes: sensitivity.json and sensitivity.png in OUT. Needs a run folder and --data.")
@click.option("--calib", type=click.Path(), default=None,
              help="Calibration images for --sensitivity [default: the run's own calibration images].")
@click.option("--plugin", "plugins", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="A TensorRT plugin library the engine needs, loaded before it is deserialized (repeatable): the "
                   "SelectiveScan one from `edgemv plugin` for a graph exported with --scan plugin.")
@trust_pickle_option
@click.option("--json", "as_json", is_flag=True, help="Print the JSON report instead of the table.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar or stage lines.")
def validate(run_or_model, data, max_drop, batch_size, device, limit, seed, reference, variant, weights, out,
             report_path, sensitivity, calib, plugins, trust_pickle, as_json, quiet):
    """Compare RUN_OR_MODEL with its FP32 model on the same images and fail when the drop exceeds --max-drop.

    RUN_OR_MODEL is a quantize run folder, an ONNX file (run by ONNX Runtime), a TensorRT engine (when tensorrt is
    installed) or a whole pickled PyTorch model (with --trust-pickle). With labels: top-1/top-5 of both and the
    drop in points. Without: top-1/top-5 agreement with FP32, logit cosine and KL. Writes a JSON report; exit
    status 3 when over budget.

    Data parallel: torchrun --nproc-per-node N -m edgemv validate RUN --data DIR (gloo on the CPU, NCCL on CUDA).

    \b
    Examples:
      edgemv validate edgemv-out/t-int8 --data ~/imagenet/val --max-drop 0.5
      edgemv validate edgemv-out/t-int8/model.onnx --data val.csv --limit 5000
      edgemv validate edgemv-out/t-int8 --data val/ --sensitivity --limit 1000
    """
    from ..validate import setup_distributed, validate as run_validate
    from ..validate.distributed import teardown

    if reference is not None and variant is not None:
        raise click.UsageError("--reference and --variant both name the FP32 model; pass one")
    if weights is not None and variant is None:
        raise click.UsageError("--weights needs --variant")
    ctx = setup_distributed(device)
    if sensitivity and ctx.enabled:
        raise click.UsageError("--sensitivity runs in one process; start it without torchrun")
    main = ctx.is_main
    log = (lambda msg: None) if quiet or not main else (lambda msg: click.echo(msg, err=True))
    command = "edgemv " + " ".join(sys.argv[1:]) if sys.argv else None
    try:
        report = run_validate(run_or_model, data=data, max_drop=_max_drop(max_drop), batch_size=batch_size,
                              device=device, limit=limit, seed=seed, reference=reference, variant=variant,
                              weights=weights, progress=not quiet, ctx=ctx, log=log, command=command,
                              trust_pickle=trust_pickle, plugins=plugins)
    finally:
        teardown(ctx)
    if not main:
        if not report.passed:
            raise BudgetExceeded(report.budget.line(), quiet=True)
        return
    out_dir = out or (report.candidate.path if report.candidate.kind == "torch-quantized" else None)
    if out_dir is None and report.candidate.path and os.path.isfile(
            os.path.join(os.path.dirname(report.candidate.path), "quantize.json")):
        out_dir = os.path.dirname(report.candidate.path)
    out_dir = out_dir or os.path.join("edgemv-out", "validate")
    if report_path is None:
        name = "validate.json" if report.candidate.kind == "torch-quantized" else \
            f"validate-{os.path.basename(str(report.candidate.path or 'model'))}.json"
        report_path = os.path.join(out_dir, name)
    written = report.write(report_path)

    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2, default=str))
    else:
        click.echo(format_table(["metric", "FP32", "model", "difference"], report.rows(), align="lrrr"))
        click.echo()
        d = report.data
        click.echo(f"images: {d.used} used of {d.selected}" + (f", {len(d.skipped)} skipped" if d.skipped else "")
                   + (f", labels: {d.label_space}" if d.labelled else ", no labels")
                   + (f"; {report.world_size} processes" if report.world_size > 1 else ""))
        for note in report.notes:
            click.echo(f"note: {note}")
        for s in d.skipped[:10]:
            click.echo(f"skipped {s['path']}: {s['reason']}", err=True)
        click.echo(f"saved {written}")

    if sensitivity:
        from ..validate.sensitivity import sensitivity_for_run

        if report.candidate.kind != "torch-quantized" and not (report.candidate.path and os.path.isfile(
                os.path.join(os.path.dirname(report.candidate.path), "quantize.json"))):
            raise click.UsageError("--sensitivity needs a quantize run folder (its FP32 model and calibration set)")
        run = report.candidate.path if report.candidate.kind == "torch-quantized" else \
            os.path.dirname(report.candidate.path)
        sens, paths = sensitivity_for_run(run, data, limit=limit, seed=seed, batch_size=batch_size, device=device,
                                          calib=calib, out_dir=out_dir, max_drop=_max_drop(max_drop),
                                          progress=not quiet, log=log)
        if not as_json:
            click.echo()
            click.echo(format_table(["group", "modules", "drop (pts)", "top-5 drop", "agreement", "KL", "cosine",
                                     "in recipe"], sens.rows(), align="lrrrrrrl"))
            if sens.full is not None:
                click.echo(f"whole default recipe: drop {sens.full.drop:+.2f} points, KL {sens.full.kl_mean:.3g}")
            click.echo(f"saved {paths['json']}")
            click.echo(f"saved {paths['png']}")

    if report.passed:
        click.echo(f"PASS: {report.budget.line()}", err=True)
    else:
        raise BudgetExceeded(report.budget.line())
