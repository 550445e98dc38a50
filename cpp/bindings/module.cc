// cadence._core: the C++ runtime as seen from Python. Each bound class lives in its own
// bind_<thing>.cc; this file only registers them.
#include <pybind11/pybind11.h>

#include "cadence/errors.h"

namespace py = pybind11;

void bind_checkpoint(py::module_& m);
void bind_config(py::module_& m);
void bind_engine(py::module_& m);

PYBIND11_MODULE(_core, m) {
  m.doc() = "cadence C++ runtime: engine, paged KV cache, scheduler and CPU kernels";
  // cadence::InvalidParameter -> cadence.errors.InvalidParameterError(param, message), a
  // ValueError like every other std::invalid_argument.
  py::register_exception_translator([](std::exception_ptr thrown) {
    try {
      if (thrown) std::rethrow_exception(thrown);
    } catch (const cadence::InvalidParameter& error) {
      py::object type = py::module_::import("cadence.errors").attr("InvalidParameterError");
      py::object value = type(error.param(), error.what());
      PyErr_SetObject(type.ptr(), value.ptr());
    }
  });
  bind_config(m);
  bind_engine(m);
  bind_checkpoint(m);
}
