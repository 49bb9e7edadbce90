// What the CUDA C++ scan kernels share (selective_scan_n8.cu here, bench/cuda/selective_scan_fwd.cu): the parameter
// block edgemv.ops.scan_cuda fills, the element conversions, 2^x and the softplus. With EDGEMV_CPU_EMULATION (g++ on
// the CPU; tests/test_scan_cuda_emulation.py) the CUDA headers are replaced by cpu_emulation.h, which also emulates
// the half/bfloat16 types and conversions; the MUFU instructions become std::exp2 and std::log2.
#pragma once

#ifdef EDGEMV_CPU_EMULATION
#include "cpu_emulation.h"
#else
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#endif
#include <stdint.h>

#ifndef EDGEMV_CPU_EMULATION
// a kernel's dynamic shared memory (sized at launch)
#define EDGEMV_DYNAMIC_SHARED(type, name) extern __shared__ __align__(16) type name[]
#endif

namespace {

constexpr int N = 8;  // states (MambaVision's d_state)

struct Params {  // mirrored by edgemv.ops.scan_cuda.Params (checked against edgemv_scan_params_size() at load)
  const void *u, *dt, *B, *C, *z;
  const void *A, *D, *bias;  // each in its own dtype (A_dtype ...): read as stored, no per-call fp32 copies
  void *y;
  int64_t dim, length;
  int64_t su_b, su_d, su_l, sdt_b, sdt_d, sdt_l, sA_d, sA_n, sB_b, sB_n, sB_l, sC_b, sC_n, sC_l;
  int64_t sz_b, sz_d, sz_l, sy_b, sy_d, sy_l;
  int has_d, has_z, has_bias, softplus;
  int A_dtype, D_dtype, bias_dtype;  // 0 fp32, 1 fp16, 2 bf16
};

template <typename E> __device__ __forceinline__ float to_f(E x);
template <> __device__ __forceinline__ float to_f<float>(float x) { return x; }
template <> __device__ __forceinline__ float to_f<__half>(__half x) { return __half2float(x); }
template <> __device__ __forceinline__ float to_f<__nv_bfloat16>(__nv_bfloat16 x) { return __bfloat162float(x); }

template <typename E> __device__ __forceinline__ E from_f(float x);
template <> __device__ __forceinline__ float from_f<float>(float x) { return x; }
template <> __device__ __forceinline__ __half from_f<__half>(float x) { return __float2half_rn(x); }
template <> __device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }

// an element's bits in a 32-bit word (16-bit types in the low half) and back to float: loads kept raw until staged
__device__ __forceinline__ uint32_t to_bits(float x) { return __float_as_uint(x); }
template <typename E> __device__ __forceinline__ float bits_to_f(uint32_t w);
template <> __device__ __forceinline__ float bits_to_f<float>(uint32_t w) { return __uint_as_float(w); }
__device__ __forceinline__ uint32_t to_bits(__half x) { return __half_as_ushort(x); }
__device__ __forceinline__ uint32_t to_bits(__nv_bfloat16 x) { return __bfloat16_as_ushort(x); }
template <> __device__ __forceinline__ float bits_to_f<__half>(uint32_t w) {
  return __half2float(__ushort_as_half((unsigned short)w));
}
template <> __device__ __forceinline__ float bits_to_f<__nv_bfloat16>(uint32_t w) {
  return __bfloat162float(__ushort_as_bfloat16((unsigned short)w));
}

// element i of a parameter (A, D, delta_bias) stored as fp32, fp16 or bf16 (dtype code as Params)
__device__ __forceinline__ float param_f(const void* p, int64_t i, int dtype) {
  if (dtype == 1) return __half2float(static_cast<const __half*>(p)[i]);
  if (dtype == 2) return __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]);
  return static_cast<const float*>(p)[i];
}

__device__ __forceinline__ float ex2(float x) {  // 2^x, one MUFU instruction (subnormal results flushed to 0)
#ifdef EDGEMV_CPU_EMULATION
  return std::exp2(x);
#else
  float r;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(x));
  return r;
#endif
}

// A 128-bit shared-memory read as volatile PTX: ptxas keeps volatile accesses in program order, so a scan's reads of
// a step ahead stay ahead (plain ones were each moved down next to their use, and the warp waited on them: Nsight
// Compute, short scoreboard).
__device__ __forceinline__ float4 lds_f4(const float4* p) {
#ifdef EDGEMV_CPU_EMULATION
  return *p;
#else
  float4 r;
  asm volatile("ld.volatile.shared.v4.f32 {%0, %1, %2, %3}, [%4];"
               : "=f"(r.x), "=f"(r.y), "=f"(r.z), "=f"(r.w) : "r"((unsigned)__cvta_generic_to_shared(p)));
  return r;
#endif
}

__device__ __forceinline__ float lg2(float x) {  // log2(x), one MUFU instruction
#ifdef EDGEMV_CPU_EMULATION
  return std::log2(x);
#else
  float r;
  asm("lg2.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(x));
  return r;
#endif
}

// softplus in 6 instructions (2 MUFU): max(x, 0) + ln2 log2(1 + 2^(-|x| log2 e)). 1 + v rounds away v's low bits, an
// absolute error of about 6e-8 in delta (up to 1e-5 relative for x near -5): far below what fp16/bf16 inputs carry,
// so 16-bit inputs use it; fp32 inputs keep the accurate softplus below (12 instructions, 1 MUFU). x > 20 gives x
// exactly (1 + v == 1), as torch's threshold does.
__device__ __forceinline__ float softplus_fast(float x) {
  return fmaxf(x, 0.0f) + 0.6931471805599453f * lg2(1.0f + ex2(-fabsf(x) * 1.4426950408889634f));
}

__device__ __forceinline__ float softplus(float x) {
  // torch's softplus (threshold 20) to fp32 rounding: max(x, 0) + log1p(v), v = exp(-|x|) in (0, 1], log1p(v) =
  // v P(v) with P a degree-8 minimax polynomial for log1p(v) / v on [0, 1] (relative error 3e-8; 1.7e-7 evaluated
  // in fp32, as the odd atanh series with a division it replaced, which took 22 instructions and 2 MUFU; ninth
  // session, docs/scan.md). Above 20, v P(v) < 2.1e-9 is less than half an ulp of x, so the sum is x exactly, as
  // torch's threshold gives.
  const float v = ex2(-fabsf(x) * 1.4426950408889634f);
  float p = 5.232694093e-03f;
  p = fmaf(p, v, -2.950523980e-02f);
  p = fmaf(p, v, 7.822595537e-02f);
  p = fmaf(p, v, -1.366324723e-01f);
  p = fmaf(p, v, 1.910600811e-01f);
  p = fmaf(p, v, -2.484298199e-01f);
  p = fmaf(p, v, 3.331909776e-01f);
  p = fmaf(p, v, -4.999949336e-01f);
  p = fmaf(p, v, 9.999999404e-01f);
  return fmaf(v, p, fmaxf(x, 0.0f));
}

}  // namespace
