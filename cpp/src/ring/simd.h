#pragma once
// Run-time choice between the portable scalar kernels and the AVX2 + FMA ones.
//
// Every hot kernel of the ring layer (NTT, element-wise residue arithmetic,
// ChaCha20, the samplers) and the decryption's CRT is a dispatcher over a
// scalar reference and a SIMD version that produces bit-identical results.
// The dispatchers call simd_enabled() once per call.
//
// The SIMD path is used when
//   - the build compiled it (x86-64 with a compiler that accepts -mavx2 -mfma:
//     XCLOUD_HAVE_AVX2 is defined), and
//   - the CPU reports AVX2 and FMA (checked once, __builtin_cpu_supports), and
//   - the scalar path is not forced: the environment variable
//     XCLOUD_FORCE_SCALAR set to anything but "" or "0" when it is first read
//     (once per process), or set_force_scalar(true) (tests and benchmarks).
// No AVX-512 instruction is used anywhere.
//
// Thread safety: all functions may be called from any thread. Changing the
// forced state while kernels run on other threads is allowed (each kernel
// call reads it once) but makes their choice unpredictable: tests and
// benchmarks switch it only between calls.

namespace xcloud {

// True when this build has the AVX2 kernels and this CPU can run them.
bool simd_supported();

// True when the dispatchers take the SIMD path (see above).
bool simd_enabled();

// Forces the scalar path (true) or allows the SIMD path again (false, even
// if the environment forced the scalar one); returns the previous forced
// state, so a caller can restore it. The environment variable, once read, is
// the initial forced state.
bool set_force_scalar(bool force);

}  // namespace xcloud
