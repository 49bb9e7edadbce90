"""The edgemv command line: registration and error handling only; each command lives in its own module."""

import click

from .. import __version__
from .errors import main, run_cli
from .export import export
from .models import predict, variants
from .plugin import plugin
from .quantize import quantize
from .validate import validate

__all__ = ["cli", "main", "run_cli"]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="edgemv")
def cli():
    """edgemv: MambaVision from a PyTorch checkpoint to validated INT8/FP8 TensorRT engines.

    \b
    Typical flow:
      edgemv variants                      what each MambaVision variant costs
      edgemv predict cat.jpg --variant t   classify images (checks your weights)
      edgemv quantize --variant t          INT8/FP8 post-training quantization
      edgemv validate RUN                  accuracy drop against FP32, with a budget
      edgemv export RUN                    ONNX with Q/DQ for TensorRT
      edgemv plugin --arch sm_87           the scan's TensorRT plugin (for export --scan plugin)

    Weights: every command takes --weights (a file, a Hugging Face folder or hub id, 'official', or 'random'
    for a dry run). Set EDGEMV_DEBUG=1 to see full tracebacks.
    """


for command in (variants, predict, quantize, validate, export, plugin):
    cli.add_command(command)
