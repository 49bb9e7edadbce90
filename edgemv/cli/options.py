"""Options shared by several commands, defined once and stacked onto commands."""

import click

from ..errors import UnknownVariantError

__all__ = ["VariantType", "variant_option", "weights_option", "device_option", "out_option", "scan_impl_option",
           "batch_size_option", "seed_option", "trust_pickle_option"]


class VariantType(click.ParamType):
    """A variant name, checked against the variant table (case-insensitive, official names accepted)."""

    name = "variant"

    def convert(self, value, param, ctx):
        from ..models.variants import get_variant

        if not isinstance(value, str):
            return value
        try:
            return get_variant(value).name
        except UnknownVariantError as exc:
            self.fail(str(exc), param, ctx)


variant_option = click.option(
    "--variant", "-v", type=VariantType(), default="t", show_default=True,
    help="MambaVision variant: t, t2, s, b, b-21k, l, l-21k, l2, l2-512-21k, l3-256-21k, l3-512-21k "
         "(see `edgemv variants`).",
)
weights_option = click.option(
    "--weights", "-w", default="official", show_default=True,
    help="Checkpoint file (.pth.tar/.pth/.pt/.safetensors), Hugging Face snapshot folder, hub id "
         "(nvidia/MambaVision-T-1K), 'official' (the variant's published weights from Hugging Face), "
         "or 'random' for a dry run with random weights.",
)
device_option = click.option(
    "--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True, help="Where to run PyTorch.",
)
out_option = click.option("--out", "-o", type=click.Path(), default=None, help="Output path.")
def _set_scan_impl(ctx, param, value):
    # Applied as soon as the option is parsed: the process-wide setting the model's mixers read. Not given: edgemv.ops
    # keeps its own setting ('auto', or EDGEMV_SCAN_IMPL, which it reads at import).
    if value is not None:
        from ..ops import set_scan_impl

        set_scan_impl(value)
    return value


# The choices are edgemv.ops.IMPLS, written out: importing edgemv.ops imports torch, too slow for `edgemv --help`.
scan_impl_option = click.option(
    "--scan-impl", type=click.Choice(["auto", "ref", "chunked", "doubling", "triton"]), default=None,
    show_default="auto", expose_value=False, callback=_set_scan_impl,
    help="Selective-scan implementation in PyTorch (auto: triton on CUDA, the faster plain-PyTorch form on the "
         "CPU). On CUDA the first call of each shape times the Triton kernels and caches the fastest in "
         "~/.cache/edgemv (EDGEMV_SCAN_TUNE=0: no tuning). Also settable with EDGEMV_SCAN_IMPL.",
)
batch_size_option = click.option("--batch-size", "-b", type=click.IntRange(min=1), default=32, show_default=True,
                                 help="Images per batch.")
seed_option = click.option("--seed", type=int, default=0, show_default=True, help="Seed for subsets and sampling.")
trust_pickle_option = click.option(
    "--trust-pickle", is_flag=True,
    help="Load a whole model saved with torch.save(model) (a .pt/.pth of Python objects, e.g. a pruned model). "
         "Unpickling runs code stored in the file: only for files you made. Checkpoints of tensors never need it.",
)
