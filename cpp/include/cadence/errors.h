// Exceptions of the public API that carry structured data beyond their message.
#pragma once

#include <stdexcept>
#include <string>
#include <utility>

namespace cadence {

// A bad value for one named parameter (a SamplingParams field, a config option). what() is
// the whole message ("temperature must be in [0, 2], got 3"); param() is the parameter's
// name as the API spells it, so callers name the field at fault without parsing the
// message. Python sees it as cadence.errors.InvalidParameterError (a ValueError).
class InvalidParameter : public std::invalid_argument {
 public:
  InvalidParameter(std::string param, const std::string& message)
      : std::invalid_argument(message), param_(std::move(param)) {}
  const std::string& param() const { return param_; }

 private:
  std::string param_;
};

}  // namespace cadence
