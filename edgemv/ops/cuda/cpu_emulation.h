// Just enough of CUDA to compile a one-warp-per-block kernel of this folder with g++ and run it on the CPU, for
// tests of its indexing and arithmetic without a GPU (tests/test_scan_cuda_emulation.py): one std::thread per
// CUDA thread of a block, blocks one after another, __shared__ as function statics (one block at a time uses
// them), __syncwarp as a std::barrier of the block's threads. fp16 and bfloat16 are emulated too (below).
#pragma once

#include <algorithm>
#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <thread>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
// a kernel's dynamic shared memory: a static buffer as large as any kernel here asks for (64 KB)
#define EDGEMV_DYNAMIC_SHARED(type, name) alignas(16) static type name[65536 / sizeof(type)]

struct dim3 {
  unsigned x = 0, y = 0, z = 0;
};
struct float2 {
  float x, y;
};
struct float4 {
  float x, y, z, w;
};
struct alignas(8) uint2 {
  unsigned x, y;
};
inline float2 make_float2(float x, float y) { return {x, y}; }
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline uint2 make_uint2(unsigned x, unsigned y) { return {x, y}; }
inline float __uint_as_float(unsigned v) { float f; std::memcpy(&f, &v, 4); return f; }
inline unsigned __float_as_uint(float f) { unsigned v; std::memcpy(&v, &f, 4); return v; }
inline float __fdividef(float a, float b) { return a / b; }
inline float __expf(float x) { return std::exp(x); }
using std::min;

// The 16-bit types as the GPU stores them (two bytes), with the conversions the kernels use: fp16 through g++'s
// _Float16 (round to nearest even), bfloat16 by rounding the float's bits to nearest even; NaN stays NaN.
struct __half {
  unsigned short x;
};
struct __nv_bfloat16 {
  unsigned short x;
};
struct __half2 {
  __half x, y;
};
struct __nv_bfloat162 {
  __nv_bfloat16 x, y;
};
inline unsigned short __half_as_ushort(__half h) { return h.x; }
inline __half __ushort_as_half(unsigned short v) { return {v}; }
inline unsigned short __bfloat16_as_ushort(__nv_bfloat16 b) { return b.x; }
inline __nv_bfloat16 __ushort_as_bfloat16(unsigned short v) { return {v}; }
inline float __half2float(__half h) {
  _Float16 f;
  std::memcpy(&f, &h.x, 2);
  return (float)f;
}
inline __half __float2half_rn(float v) {
  const _Float16 f = (_Float16)v;
  __half h;
  std::memcpy(&h.x, &f, 2);
  return h;
}
inline float __bfloat162float(__nv_bfloat16 b) { return __uint_as_float((unsigned)b.x << 16); }
inline __nv_bfloat16 __float2bfloat16_rn(float v) {
  const unsigned u = __float_as_uint(v);
  if (std::isnan(v)) return {(unsigned short)((u >> 16) | 0x40)};
  return {(unsigned short)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16)};
}
inline float2 __half22float2(__half2 v) { return {__half2float(v.x), __half2float(v.y)}; }
inline __half2 __floats2half2_rn(float a, float b) { return {__float2half_rn(a), __float2half_rn(b)}; }
inline float2 __bfloat1622float2(__nv_bfloat162 v) { return {__bfloat162float(v.x), __bfloat162float(v.y)}; }
inline __nv_bfloat162 __floats2bfloat162_rn(float a, float b) {
  return {__float2bfloat16_rn(a), __float2bfloat16_rn(b)};
}

inline thread_local dim3 threadIdx, blockIdx;
inline std::barrier<>* emu_barrier = nullptr;
inline void __syncwarp() { emu_barrier->arrive_and_wait(); }
// every lane of the block calls it (as on the GPU with a full mask): a slot per lane, written, then read
inline float emu_exchange[1024];
inline float __shfl_xor_sync(unsigned, float v, int mask) {
  emu_exchange[threadIdx.x] = v;
  __syncwarp();
  const float r = emu_exchange[threadIdx.x ^ mask];
  __syncwarp();
  return r;
}

// Runs kernel() for every block of grid (x, y), `threads` threads per block.
inline void emulate_launch(dim3 grid, unsigned threads, const std::function<void()>& kernel) {
  for (unsigned by = 0; by < grid.y; ++by) {
    for (unsigned bx = 0; bx < grid.x; ++bx) {
      std::barrier<> bar((std::ptrdiff_t)threads);
      emu_barrier = &bar;
      std::vector<std::thread> pool;
      for (unsigned t = 0; t < threads; ++t) {
        pool.emplace_back([&, t] {
          threadIdx = dim3{t, 0, 0};
          blockIdx = dim3{bx, by, 0};
          kernel();
        });
      }
      for (auto& th : pool) th.join();
    }
  }
}
