# Finds pybind11's CMake package shipped inside the `pybind11` PyPI package
# (no source is vendored). scikit-build-core puts it on CMAKE_PREFIX_PATH; for a plain
# CMake build we ask the active Python where it lives.
find_package(Python REQUIRED COMPONENTS Interpreter Development.Module)
if(NOT pybind11_DIR)
  execute_process(COMMAND ${Python_EXECUTABLE} -m pybind11 --cmakedir
                  OUTPUT_VARIABLE pybind11_DIR OUTPUT_STRIP_TRAILING_WHITESPACE
                  RESULT_VARIABLE _pybind11_rc)
  if(NOT _pybind11_rc EQUAL 0)
    message(FATAL_ERROR "pybind11 not found: pip install pybind11")
  endif()
endif()
find_package(pybind11 CONFIG REQUIRED)
