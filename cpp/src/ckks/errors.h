#pragma once
// xcloud's own exception types. The bindings register them as Python
// subclasses of ValueError (xcloud.ParameterError, xcloud.IntegrityError).
#include <stdexcept>
#include <string>

namespace xcloud {

// A parameter set that is malformed or below the requested security level.
class ParameterError : public std::invalid_argument {
 public:
  explicit ParameterError(const std::string& what) : std::invalid_argument(what) {}
};

// Bytes that are malformed, truncated, oversized, tampered with, or that
// belong to another parameter set or key.
class IntegrityError : public std::invalid_argument {
 public:
  explicit IntegrityError(const std::string& what) : std::invalid_argument(what) {}
};

// Well-formed bytes of a format version this build does not read (a
// subclass of IntegrityError: xcloud.crypto.UnsupportedVersionError).
class UnsupportedVersionError : public IntegrityError {
 public:
  explicit UnsupportedVersionError(const std::string& what) : IntegrityError(what) {}
};

}  // namespace xcloud
