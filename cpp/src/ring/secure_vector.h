#pragma once
// A fixed-size heap array for secret material: zeroed on destruction and on
// move-from, never copied implicitly.
// Thread safety: as std::vector (no internal synchronisation).
#include <cstddef>
#include <memory>
#include <utility>

#include "ring/secure.h"

namespace xcloud {

template <typename T>
class SecureVector {
 public:
  SecureVector() = default;
  explicit SecureVector(size_t n) : data_(new T[n]()), size_(n) {}
  ~SecureVector() { wipe(); }
  SecureVector(const SecureVector&) = delete;
  SecureVector& operator=(const SecureVector&) = delete;
  SecureVector(SecureVector&& o) noexcept : data_(std::move(o.data_)), size_(o.size_) { o.size_ = 0; }
  SecureVector& operator=(SecureVector&& o) noexcept {
    if (this != &o) {
      wipe();
      data_ = std::move(o.data_);
      size_ = o.size_;
      o.size_ = 0;
    }
    return *this;
  }
  SecureVector clone() const {
    SecureVector c(size_);
    for (size_t i = 0; i < size_; ++i) c.data_[i] = data_[i];
    return c;
  }

  T* data() { return data_.get(); }
  const T* data() const { return data_.get(); }
  size_t size() const { return size_; }
  T& operator[](size_t i) { return data_[i]; }
  const T& operator[](size_t i) const { return data_[i]; }

 private:
  void wipe() {
    if (data_) secure_zero(data_.get(), size_ * sizeof(T));
    data_.reset();
    size_ = 0;
  }
  std::unique_ptr<T[]> data_;
  size_t size_ = 0;
};

}  // namespace xcloud
