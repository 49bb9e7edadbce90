# The opening lines of a device session script (sourced inside its logged block): the time, the GPU and its clocks,
# the torch/CUDA/Triton versions; `device_header --build` also builds the CUDA scan kernel once, so its 25 s are not
# inside a timed step.
device_header() {
  date -u
  nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem,driver_version --format=csv,noheader
  python -c "import torch, triton; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'triton', triton.__version__)"
  if [ "${1:-}" = "--build" ]; then
    python -c "import torch; from edgemv.ops import scan_cuda; scan_cuda.library(torch.device('cuda'))"
  fi
}
