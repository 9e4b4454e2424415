# Finds the project's dependencies: libtorch, nlohmann-json, spdlog (and, for the Python module, Python and
# pybind11). libtorch comes from the system (Debian's libtorch-dev) or, when CMake cannot find it there, from the
# torch package of the Python interpreter (a PyTorch wheel carries libtorch and its CMake config). Python is looked
# for only where it is needed: for the module (and the tests, which need the module), or to find that libtorch.

macro(attnprox_find_python)
  if(NOT Python3_EXECUTABLE AND EXISTS /usr/bin/python3)
    set(Python3_EXECUTABLE /usr/bin/python3 CACHE FILEPATH "Python interpreter (the one with the matching torch)")
  endif()
  find_package(Python3 REQUIRED COMPONENTS Interpreter)
endmacro()

# libtorch and Eigen are in attnprox::attnprox's interface: their imported targets are GLOBAL, so that a project
# that builds attnprox inside its own tree (add_subdirectory, FetchContent) sees them where it links attnprox.
set(ATTNPROX_TORCH_FROM_PYTHON OFF)
find_package(Torch QUIET GLOBAL)
if(NOT Torch_FOUND)
  attnprox_find_python()
  set(ATTNPROX_TORCH_FROM_PYTHON ON)
  execute_process(COMMAND "${Python3_EXECUTABLE}" -c "import torch; print(torch.utils.cmake_prefix_path)"
                  OUTPUT_VARIABLE _torch_prefix OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE _torch_rc)
  if(_torch_rc EQUAL 0)
    list(APPEND CMAKE_PREFIX_PATH "${_torch_prefix}")
  endif()
  find_package(Torch REQUIRED GLOBAL)
elseif(ATTNPROX_BUILD_PYTHON)
  # A libtorch given through CMAKE_PREFIX_PATH may still be the one inside the Python torch package (a CUDA build
  # against a PyTorch wheel). The module must then import torch before it loads: torch's own loading of its
  # libraries and their CUDA dependencies aborts when the engine has loaded them first.
  attnprox_find_python()
  execute_process(COMMAND "${Python3_EXECUTABLE}" -c "import os, torch; print(os.path.dirname(torch.__file__))"
                  OUTPUT_VARIABLE _torch_package OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE _torch_rc
                  ERROR_QUIET)
  if(_torch_rc EQUAL 0)
    file(REAL_PATH "${_torch_package}" _torch_package)
    file(REAL_PATH "${TORCH_INSTALL_PREFIX}" _torch_prefix_real)
    if(_torch_package STREQUAL _torch_prefix_real)
      set(ATTNPROX_TORCH_FROM_PYTHON ON)
    endif()
  endif()
endif()
message(STATUS "attnprox: libtorch ${Torch_VERSION} from ${TORCH_INSTALL_PREFIX}")

# The engine's fused CUDA kernels (lib/engine/kernels.cu): AUTO builds them where libtorch has CUDA and CMake finds a
# CUDA compiler, ON requires them, OFF leaves them out (the same work then runs as ATen operations on CUDA too).
set(ATTNPROX_CUDA_KERNELS AUTO CACHE STRING "Fused CUDA kernels: AUTO, ON or OFF")
set_property(CACHE ATTNPROX_CUDA_KERNELS PROPERTY STRINGS AUTO ON OFF)
set(ATTNPROX_CUDA_ARCHITECTURES "80-real;90" CACHE STRING "CUDA architectures the fused kernels are built for")
set(ATTNPROX_HAVE_CUDA_KERNELS OFF)
if(NOT ATTNPROX_CUDA_KERNELS STREQUAL "OFF" AND (TARGET c10_cuda OR TARGET torch_cuda OR C10_CUDA_LIBRARY))
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    enable_language(CUDA)
    set(ATTNPROX_HAVE_CUDA_KERNELS ON)
  endif()
endif()
if(ATTNPROX_CUDA_KERNELS STREQUAL "ON" AND NOT ATTNPROX_HAVE_CUDA_KERNELS)
  message(FATAL_ERROR "ATTNPROX_CUDA_KERNELS=ON needs a libtorch built with CUDA and a CUDA compiler (nvcc)")
endif()
message(STATUS "attnprox: fused CUDA kernels ${ATTNPROX_HAVE_CUDA_KERNELS}")

find_package(nlohmann_json 3.2 REQUIRED)
# Logging goes through spdlog. PyTorch 2.x wheels put fmt 12 headers first on the include path, which spdlog
# releases before 1.15 do not compile against: ATTNPROX_WITH_SPDLOG=OFF then logs through a minimal stderr logger.
option(ATTNPROX_WITH_SPDLOG "Log through spdlog (OFF: a minimal built-in stderr logger)" ON)
if(ATTNPROX_WITH_SPDLOG)
  find_package(spdlog REQUIRED)
endif()
