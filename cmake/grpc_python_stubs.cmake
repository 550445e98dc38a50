# Generates the Python gRPC stubs of protos/cadence/v1/*.proto with grpcio-tools at build
# time and installs them as the package cadence.v1 (never hand-edited, never committed).
# Needs Python_EXECUTABLE (found by third_party/pybind11.cmake) with grpcio-tools installed.
execute_process(COMMAND ${Python_EXECUTABLE} -c "import grpc_tools.protoc"
                RESULT_VARIABLE _grpc_tools_rc OUTPUT_QUIET ERROR_QUIET)
if(NOT _grpc_tools_rc EQUAL 0)
  message(FATAL_ERROR "grpcio-tools not found for ${Python_EXECUTABLE}: pip install grpcio-tools")
endif()

file(GLOB CADENCE_PROTOS CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/protos/cadence/v1/*.proto)
set(_stub_dir ${CMAKE_CURRENT_BINARY_DIR}/proto_stubs)
set(_stub_files ${_stub_dir}/cadence/v1/__init__.py)
foreach(_proto ${CADENCE_PROTOS})
  get_filename_component(_name ${_proto} NAME_WE)
  list(APPEND _stub_files ${_stub_dir}/cadence/v1/${_name}_pb2.py
       ${_stub_dir}/cadence/v1/${_name}_pb2.pyi ${_stub_dir}/cadence/v1/${_name}_pb2_grpc.py)
endforeach()
add_custom_command(
  OUTPUT ${_stub_files}
  COMMAND ${CMAKE_COMMAND} -E make_directory ${_stub_dir}/cadence/v1
  COMMAND ${Python_EXECUTABLE} -m grpc_tools.protoc -I ${PROJECT_SOURCE_DIR}/protos
          --python_out=${_stub_dir} --pyi_out=${_stub_dir} --grpc_python_out=${_stub_dir}
          ${CADENCE_PROTOS}
  COMMAND ${CMAKE_COMMAND} -E touch ${_stub_dir}/cadence/v1/__init__.py
  DEPENDS ${CADENCE_PROTOS}
  COMMENT "Generating the cadence.v1 gRPC Python stubs"
  VERBATIM)
add_custom_target(grpc_python_stubs ALL DEPENDS ${_stub_files})
install(FILES ${_stub_files} DESTINATION cadence/v1)
