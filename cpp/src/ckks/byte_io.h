#pragma once
// Little-endian byte writing and bounds-checked reading for the wire and key
// formats, plus bit packing of residues.
// Every read past the end throws IntegrityError; nothing reads out of bounds.
// Thread safety: plain values.
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "ckks/errors.h"

namespace xcloud {

// Writes into a buffer of fixed size: the wire and key formats know their
// exact size beforehand, so the bytes go straight to their destination (a
// Python bytes object, a key buffer that must never be reallocated).
class ByteWriter {
 public:
  ByteWriter(uint8_t* out, size_t size) : p_(out), left_(size), written_(0) {}
  void u8(uint8_t v) { *take(1) = v; }
  void u16(uint16_t v) { uint_le(v, 2); }
  void u32(uint32_t v) { uint_le(v, 4); }
  void u64(uint64_t v) { uint_le(v, 8); }
  void i64(int64_t v) { uint_le(static_cast<uint64_t>(v), 8); }
  void f64(double v) {
    uint64_t b;
    std::memcpy(&b, &v, 8);
    uint_le(b, 8);
  }
  void bytes(const uint8_t* p, size_t n) { std::memcpy(take(n), p, n); }
  // The next n bytes, for the caller to fill (bit-packed residues).
  // @throws std::logic_error past the end: the size was computed wrongly.
  uint8_t* take(size_t n) {
    if (n > left_) throw std::logic_error("ByteWriter: the output size was computed wrongly");
    uint8_t* r = p_;
    p_ += n;
    left_ -= n;
    written_ += n;
    return r;
  }
  size_t written() const { return written_; }
  size_t remaining() const { return left_; }

 private:
  void uint_le(uint64_t v, int n) {
    uint8_t* d = take(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) d[i] = static_cast<uint8_t>(v >> (8 * i));
  }
  uint8_t* p_;
  size_t left_;
  size_t written_;
};

class ByteReader {
 public:
  ByteReader(const uint8_t* data, size_t len, const char* what) : p_(data), left_(len), what_(what) {}
  uint8_t u8() { return static_cast<uint8_t>(uint_le(1)); }
  uint16_t u16() { return static_cast<uint16_t>(uint_le(2)); }
  uint32_t u32() { return static_cast<uint32_t>(uint_le(4)); }
  uint64_t u64() { return uint_le(8); }
  int64_t i64() { return static_cast<int64_t>(uint_le(8)); }
  double f64() {
    uint64_t b = uint_le(8);
    double v;
    std::memcpy(&v, &b, 8);
    return v;
  }
  const uint8_t* take(size_t n) {
    need(n);
    const uint8_t* r = p_;
    p_ += n;
    left_ -= n;
    return r;
  }
  size_t remaining() const { return left_; }

 private:
  void need(size_t n) const {
    if (n > left_) throw IntegrityError(std::string(what_) + ": truncated input");
  }
  uint64_t uint_le(int n) {
    need(static_cast<size_t>(n));
    uint64_t v = 0;
    for (int i = 0; i < n; ++i) v |= static_cast<uint64_t>(p_[i]) << (8 * i);
    p_ += n;
    left_ -= static_cast<size_t>(n);
    return v;
  }
  const uint8_t* p_;
  size_t left_;
  const char* what_;
};

// Bytes needed to pack n values of `bits` bits each.
inline size_t packed_size(size_t n, int bits) { return (n * static_cast<size_t>(bits) + 7) / 8; }

// Packs v[0, n) (each < 2^bits, bits in [1, 57]) LSB-first into out[0, packed_size).
void pack_bits(const uint64_t* v, size_t n, int bits, uint8_t* out);
// Inverse of pack_bits; in holds exactly packed_size(n, bits) bytes.
// @throws IntegrityError if any value is >= bound or the padding bits are not zero.
void unpack_bits(const uint8_t* in, size_t n, int bits, uint64_t bound, uint64_t* v, const char* what);

}  // namespace xcloud
