// A C entry point to mamba_ssm's CUDA forward scan kernel, for a side-by-side timing on one GPU
// (bench/scan_vs_mamba.py). mamba_ssm's own sources (csrc/selective_scan of state-spaces/mamba: selective_scan.h and
// the selective_scan_fwd_*.cu files with their headers) are not part of edgemv: the script compiles this file
// together with a local copy of them (--src), on the machine that runs it, and commits nothing it builds.
//
// Fills mamba_ssm's parameter block (SSMParamsBase) as its own Python binding does for the forward pass with
// variable B and C, one group, no z, and launches the kernel of the input dtype with fp32 weights.
#include <cstdint>
#include <cstring>

#include <cuda_runtime.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include "selective_scan.h"

template <typename input_t, typename weight_t>
void selective_scan_fwd_cuda(SSMParamsBase& params, cudaStream_t stream);

// dims: batch, dim, seqlen, dstate. ptrs: u, delta, A, B, C, D (or null), delta_bias (or null), out, x (the
// (batch, dim, n_chunks, 2 dstate) fp32 chunk states the kernel writes). strides (elements): A d, A n; B batch,
// group, n; C batch, group, n; u batch, d; delta batch, d; out batch, d (u, delta, B, C, out contiguous along L).
// dtype: 0 fp32, 1 fp16, 2 bf16. Returns the CUDA error of the launch.
extern "C" int mamba_scan_fwd(int dtype, const int64_t* dims, void* const* ptrs, const int64_t* strides,
                              int softplus, void* stream) {
  SSMParamsBase p;
  std::memset(&p, 0, sizeof(p));
  p.batch = (int)dims[0];
  p.dim = (int)dims[1];
  p.seqlen = (int)dims[2];
  p.dstate = (int)dims[3];
  p.n_groups = 1;
  p.n_chunks = (p.seqlen + 2047) / 2048;  // as mamba_ssm's binding
  p.dim_ngroups_ratio = p.dim;
  p.is_variable_B = p.is_variable_C = true;
  p.delta_softplus = softplus != 0;
  p.u_ptr = ptrs[0];
  p.delta_ptr = ptrs[1];
  p.A_ptr = ptrs[2];
  p.B_ptr = ptrs[3];
  p.C_ptr = ptrs[4];
  p.D_ptr = ptrs[5];
  p.delta_bias_ptr = ptrs[6];
  p.out_ptr = ptrs[7];
  p.x_ptr = ptrs[8];
  p.A_d_stride = strides[0];
  p.A_dstate_stride = strides[1];
  p.B_batch_stride = strides[2];
  p.B_group_stride = strides[3];
  p.B_dstate_stride = strides[4];
  p.C_batch_stride = strides[5];
  p.C_group_stride = strides[6];
  p.C_dstate_stride = strides[7];
  p.u_batch_stride = strides[8];
  p.u_d_stride = strides[9];
  p.delta_batch_stride = strides[10];
  p.delta_d_stride = strides[11];
  p.out_batch_stride = strides[12];
  p.out_d_stride = strides[13];
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  if (dtype == 0) selective_scan_fwd_cuda<float, float>(p, s);
  else if (dtype == 1) selective_scan_fwd_cuda<c10::Half, float>(p, s);
  else selective_scan_fwd_cuda<c10::BFloat16, float>(p, s);
  return (int)cudaGetLastError();
}
