"""The simple per-group measurement behind the default recipe: quantize one group at a time and compare with FP32.

Each row quantizes a fresh copy of the FP32 model with ModelOpt (same calibration batches, same method), then
compares logits with the FP32 model on held-out images (top-1 agreement, logit cosine, KL) and, when labels are
given, top-1 accuracy. Rows:

- ``only <group>``: that group alone (every group, including the high-precision ones);
- ``default``: the default recipe; ``default + <group>``: the default recipe plus one high-precision group;
- ``all``: every quantizable group, the naive W8A8 baseline.

The validate stage's sensitivity sweep (per level and per kind, with a budget) builds on the same idea; this module
only supports the choice of defaults and is run by hand::

    python -m edgemv.quantize.group_effects --variant t --weights random --calib calib/ --precision int8
"""

import argparse
import copy
import json
import sys
import time
from typing import Callable, List, Optional, Sequence

import torch

from .config import GROUPS, HIGH_PRECISION, make_recipe
from .fidelity import compare_logits
from .model_quant import quantize

__all__ = ["measure_group_effects", "default_rows"]


def default_rows() -> List[tuple]:
    """(row name, quantized groups) for the standard table."""
    default = tuple(g.name for g in GROUPS if g.quantize)
    rows = [(f"only {g.name}", (g.name,)) for g in GROUPS]
    rows.append(("default", default))
    for g in GROUPS:
        if not g.quantize:
            rows.append((f"default + {g.name}", default + (g.name,)))
    hp = tuple(g.name for g in GROUPS if not g.quantize)
    if len(hp) > 1:
        rows.append(("default + " + " + ".join(hp), default + hp))
    rows.append(("all (+ mixer_conv1d)", tuple(g.name for g in GROUPS) + ("mixer_conv1d",)))
    return rows


def _recipe(precision, method, groups):
    quantized = tuple(g for g in groups if g in {x.name for x in GROUPS})
    include = tuple(p for h in HIGH_PRECISION if h.name in groups for p in h.patterns)
    return make_recipe(precision, method, include=include, quantized_groups=quantized)


class _MixerTap:
    """Records the output of every MambaVisionMixer (the SSM branch + z, after out_proj) during a forward."""

    def __init__(self, model):
        self.outputs, self.handles = [], []
        for m in model.modules():
            if type(m).__name__ == "MambaVisionMixer":
                self.handles.append(m.register_forward_hook(lambda mod, i, o: self.outputs.append(o.float().cpu())))

    def run(self, model, evals):
        self.outputs = []
        logits = torch.cat([model(x) for x in evals]).float().cpu()
        return logits, list(self.outputs)

    def close(self):
        for h in self.handles:
            h.remove()


def _mixer_error(ref_outs, outs) -> Optional[float]:
    """Mean over mixers of ||y_q - y_fp32|| / ||y_fp32||: how much a recipe disturbs the mixers' outputs."""
    if not ref_outs:
        return None
    errs = [((a - b).norm() / b.norm().clamp_min(1e-12)).item() for a, b in zip(outs, ref_outs)]
    return sum(errs) / len(errs)


@torch.no_grad()
def measure_group_effects(model: torch.nn.Module, calib: Sequence[torch.Tensor], evals: Sequence[torch.Tensor],
                          labels: Optional[torch.Tensor] = None, precision: str = "int8", method: str = "max",
                          rows: Optional[List[tuple]] = None, log: Callable[[str], None] = print) -> List[dict]:
    """One dict per row: name, groups, top-1 agreement, cosine, KL (and accuracy with ``labels``), seconds."""
    model = model.eval()
    tap = _MixerTap(model)
    ref, ref_mixers = tap.run(model, evals)
    tap.close()
    out = []
    labels = labels.cpu() if labels is not None else None
    if labels is not None:
        acc = (ref.argmax(-1) == labels).double().mean().item()
        out.append({"row": "fp32", "groups": [], "accuracy": acc})
        log(f"fp32: accuracy {acc * 100:.2f}%")

    def forward_loop(m):
        for x in calib:
            m(x)

    for name, groups in rows or default_rows():
        t0 = time.perf_counter()
        q = quantize(copy.deepcopy(model), _recipe(precision, method, groups), forward_loop)
        tap = _MixerTap(q)
        logits, mixers = tap.run(q, evals)
        tap.close()
        fid = compare_logits(ref, logits)
        row = {"row": name, "groups": list(groups), **fid.as_dict(), "mixer_rel_err": _mixer_error(ref_mixers, mixers),
               "seconds": round(time.perf_counter() - t0, 1)}
        if labels is not None:
            row["accuracy"] = (logits.argmax(-1) == labels).double().mean().item()
        out.append(row)
        acc = f", accuracy {row['accuracy'] * 100:.2f}%" if labels is not None else ""
        merr = row["mixer_rel_err"]
        merr = f", mixer rel. err {merr:.4f}" if merr is not None else ""
        log(f"{name}: top-1 agreement {fid.top1_agreement * 100:.1f}%, cosine {fid.cosine_mean:.5f}, "
            f"KL {fid.kl_mean:.3g}{merr}{acc}  ({row['seconds']}s)")
        del q
    return out


def _tensors(image_set, transform, batch_size):
    from ..data import ImageBatches

    images, labels = [], []
    for x, y, _ in ImageBatches(image_set, transform, batch_size=batch_size):
        images.append(x)
        if y is not None:
            labels.append(y)
    return images, (torch.cat(labels) if labels else None)


def main(argv=None) -> int:  # pragma: no cover - a measurement script
    from ..data import default_calib_dir, discover_images, eval_transform
    from ..models import create_model
    from .pipeline import split_holdout

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variant", default="t")
    p.add_argument("--weights", default="random")
    p.add_argument("--num-classes", type=int, default=None)
    p.add_argument("--no-layer-scale", action="store_true", help="build without gamma_1/gamma_2")
    p.add_argument("--calib", default=None)
    p.add_argument("--eval", default=None, help="separate held-out set (default: a quarter of --calib)")
    p.add_argument("--calib-size", type=int, default=64)
    p.add_argument("--eval-size", type=int, default=256)
    p.add_argument("--input-size", type=int, default=None)
    p.add_argument("--precision", default="int8")
    p.add_argument("--method", default="max")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--rows", default=None, help="comma-separated row names (default: all)")
    p.add_argument("--json", default=None)
    a = p.parse_args(argv)
    torch.manual_seed(a.seed)
    kwargs = {"num_classes": a.num_classes} if a.num_classes else {}
    if a.no_layer_scale:
        kwargs["layer_scale"] = None
    model = create_model(a.variant, weights=a.weights, **kwargs).to(a.device)
    transform = eval_transform(model.pretrained_cfg, input_size=a.input_size)
    source = discover_images(a.calib or default_calib_dir())
    if a.eval:
        from .pipeline import _take

        calib_set, eval_set = _take(source, a.seed, a.calib_size), _take(discover_images(a.eval), a.seed, a.eval_size)
    else:
        calib_set, eval_set = split_holdout(source, a.seed, a.calib_size, a.eval_size)
    calib, _ = _tensors(calib_set, transform, a.batch_size)
    evals, labels = _tensors(eval_set, transform, a.batch_size)
    calib, evals = [x.to(a.device) for x in calib], [x.to(a.device) for x in evals]
    labels = labels.to(a.device) if labels is not None else None
    rows = default_rows()
    if a.rows:
        wanted = [r.strip() for r in a.rows.split(",")]
        rows = [r for r in rows if r[0] in wanted]
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    log(f"{a.variant} {a.weights} {a.precision} {a.method}: calib {sum(len(x) for x in calib)}, "
        f"eval {sum(len(x) for x in evals)} images")
    rows = measure_group_effects(model, calib, evals, labels, a.precision, a.method, rows=rows, log=log)
    text = json.dumps({"args": vars(a), "rows": rows}, indent=1)
    if a.json:
        from ..atomic import write_bytes_atomic

        write_bytes_atomic(a.json, (text + "\n").encode())
    else:
        print(text)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
