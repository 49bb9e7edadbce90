"""`edgemv plugin`: build the SelectiveScan TensorRT plugin library."""

import json
import os

import click

__all__ = ["plugin"]


@click.command()
@click.option("--out", "-o", type=click.Path(dir_okay=False), default="libedgemv_scan_plugin.so", show_default=True,
              help="The library to write (under a temporary name, then renamed).")
@click.option("--trt-include", type=click.Path(file_okay=False), default=None,
              help="TensorRT's include folder (the one holding NvInferRuntime.h; default: $TENSORRT_INCLUDE, then "
                   "/usr/include/x86_64-linux-gnu, /usr/include/aarch64-linux-gnu, /usr/include, "
                   "/usr/local/tensorrt/include).")
@click.option("--arch", "archs", multiple=True, default=("native",), show_default=True,
              help="GPU architecture to build for, repeatable: sm_87 (Jetson Orin), sm_86, sm_89, sm_90, sm_120, ... "
                   "or native (this machine's GPUs).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def plugin(out, trt_include, archs, as_json):
    """Build the SelectiveScan TensorRT plugin library that a graph from `edgemv export --scan plugin` needs.

    An IPluginV3 for TensorRT 10.x (JetPack 6's 10.3 included) and 11.x, running edgemv's CUDA scan kernels
    (8 states, float32/float16/bfloat16). Needs nvcc and TensorRT's headers; links no TensorRT library, so it
    builds wherever the headers are and loads into the TensorRT of the same major version.

    \b
    Examples:
      edgemv plugin --arch sm_87 --trt-include /usr/include/aarch64-linux-gnu   # on a Jetson Orin
      edgemv plugin --trt-include ~/TensorRT-10.16/include -o build/libedgemv_scan_plugin.so
    Then: trtexec --onnx=model.onnx --dynamicPlugins=libedgemv_scan_plugin.so --saveEngine=model.engine
    """
    from ..compile.plugin import build_plugin

    result = build_plugin(out, trt_include=trt_include, archs=archs)
    if as_json:
        click.echo(json.dumps({"path": result.path, "tensorrt_include": result.tensorrt_include,
                               "tensorrt_version": ".".join(map(str, result.tensorrt_version)),
                               "archs": list(result.archs), "bytes": os.path.getsize(result.path),
                               "command": list(result.command)}, indent=2))
        return
    version = ".".join(map(str, result.tensorrt_version))
    click.echo(f"{result.path}: SelectiveScan plugin for TensorRT {version} (headers in {result.tensorrt_include}), "
               f"{', '.join(result.archs)}, {os.path.getsize(result.path) / 1e6:.1f} MB")
    click.echo(f"  load it before building or deserializing: trtexec --dynamicPlugins={result.path} (add "
               f"--setPluginsToSerialize={result.path} to carry it inside the engine), "
               f"IPluginRegistry::loadLibrary in C++, or tensorrt.get_plugin_registry().load_library in Python")
    click.echo(f"  to check a plugin-form graph with it: edgemv export RUN --scan plugin --plugin {result.path} "
               f"(where TensorRT-RTX is installed: it builds the graph ahead of time with the plugin loaded)")
