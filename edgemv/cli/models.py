"""Commands about the models themselves: `edgemv variants`, `edgemv predict`."""

import json

import click

from .options import batch_size_option, device_option, scan_impl_option, variant_option, weights_option
from .table import format_table

__all__ = ["variants", "predict"]


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--no-gmacs", is_flag=True, help="Skip counting multiply-accumulates (faster).")
def variants(as_json, no_gmacs):
    """List the MambaVision variants: parameters, GMACs at native resolution, windows and scan lengths.

    GMACs are counted by torch's FlopCounterMode on the meta device (1 MAC = 2 FLOPs; the paper's "GFLOPs"
    column counts MACs). Scan L is the number of tokens per window in levels 2 and 3: the length of each
    selective scan.
    """
    from ..models.summary import summarize_variant
    from ..models.variants import list_variants

    summaries = [summarize_variant(name, with_gmacs=not no_gmacs) for name in list_variants()]
    if as_json:
        click.echo(json.dumps([s.as_dict() for s in summaries], indent=2))
        return
    rows = [
        (s.name, f"{s.params_m:.3f}", "-" if s.gmacs is None else f"{s.gmacs:.2f}", f"{s.resolution[0]}x{s.resolution[1]}",
         f"{s.crop_pct:g}", "/".join(map(str, s.windows)), "/".join(map(str, s.scan_lengths)), s.hub_id)
        for s in summaries
    ]
    click.echo(format_table(["variant", "params (M)", "GMACs", "input", "crop", "window L2/L3", "scan L", "weights"],
                            rows, align="lrrrrrrl"))


@click.command()
@click.argument("images", nargs=-1, required=True, type=click.Path())
@variant_option
@weights_option
@device_option
@scan_impl_option
@batch_size_option
@click.option("--top-k", "-k", type=click.IntRange(1, 1000), default=5, show_default=True, help="Classes to show.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def predict(images, variant, weights, device, batch_size, top_k, as_json):
    """Classify IMAGES (files or folders) with a MambaVision variant and print the top classes.

    Uses the variant's own evaluation transform (resize, crop, ImageNet mean/std). Unreadable images are
    skipped and reported.

    \b
    Example:
      edgemv predict cat.jpg dog.png --variant t --weights mambavision_tiny_1k.pth.tar
    """
    from ..inference import classify_images
    from ..models import create_model
    model = create_model(variant, weights=weights)
    predictions, skipped = classify_images(model, images, top_k=top_k, batch_size=batch_size, device=device)
    if as_json:
        click.echo(json.dumps({
            "variant": variant, "weights": model.weights_info.source,
            "predictions": [{"path": p.path, "top": [{"index": i, "name": n, "prob": round(v, 6)} for i, n, v in p.top]}
                            for p in predictions],
            "skipped": [{"path": s, "reason": r} for s, r in skipped],
        }, indent=2))
        return
    if model.weights_info.is_random:
        click.echo("note: random weights (--weights random): the classes below are meaningless", err=True)
    for p in predictions:
        click.echo(p.path)
        for rank, (index, name, prob) in enumerate(p.top, 1):
            click.echo(f"  {rank}. {prob * 100:6.2f}%  {name} ({index})")
    for path, reason in skipped:
        click.echo(f"skipped {path}: {reason}", err=True)
