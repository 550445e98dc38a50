// Read access to checkpoint files for inspection and tests (the engine loads weights itself).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <memory>
#include <string>
#include <vector>

#include "cadence/gguf_tensor.h"

namespace py = pybind11;

void bind_checkpoint(py::module_& m) {
  m.def(
      "read_gguf_tensor",
      [](const std::string& path, const std::string& name) {
        auto tensor = std::make_unique<cadence::FloatTensor>();
        {
          py::gil_scoped_release release;
          *tensor = cadence::read_gguf_tensor(path, name);
        }
        const std::vector<py::ssize_t> shape(tensor->shape.begin(), tensor->shape.end());
        float* data = tensor->values.data();
        py::capsule owner(tensor.release(),
                          [](void* p) { delete static_cast<cadence::FloatTensor*>(p); });
        return py::array_t<float>(shape, data, owner);
      },
      py::arg("path"), py::arg("name"),
      "The GGUF tensor `name` (its name in the file, e.g. 'blk.0.attn_q.weight') dequantized to\n"
      "a float32 array shaped like the file's dims reversed (outermost first), rows in file\n"
      "order: llama q/k rows keep llama.cpp's permutation, which the engine undoes at load.\n"
      "RuntimeError, naming the file and tensor, when the tensor is absent, its type is not\n"
      "readable, or the file is corrupt or truncated.");
}
