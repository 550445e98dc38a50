// cadence._core: the C++ runtime as seen from Python. Each bound class lives in its own
// bind_<thing>.cc; this file only registers them.
#include <pybind11/pybind11.h>

namespace py = pybind11;

void bind_checkpoint(py::module_& m);
void bind_config(py::module_& m);
void bind_engine(py::module_& m);

PYBIND11_MODULE(_core, m) {
  m.doc() = "cadence C++ runtime: engine, paged KV cache, scheduler and CPU kernels";
  bind_config(m);
  bind_engine(m);
  bind_checkpoint(m);
}
