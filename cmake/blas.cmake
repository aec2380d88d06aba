# blas.cmake - pick the GEMM backend (FEDL_BLAS = auto | blis | openblas | c).
#
# auto prefers BLIS on x86_64 (Debian's OpenBLAS 0.3.21 does not recognise
# recent x86 CPUs and falls back to generic kernels; see docs/PERFORMANCE.md)
# and OpenBLAS elsewhere (well tuned for the Cortex-A53), then the portable C
# kernel.
set(_fedl_arch ${CMAKE_LIBRARY_ARCHITECTURE})

function(_fedl_find_blis)
  find_path(FEDL_BLIS_INCLUDE cblas.h
    PATHS /usr/include/${_fedl_arch}/blis-serial /usr/include/${_fedl_arch}/blis-pthread
          /usr/include/${_fedl_arch}/blis-openmp /usr/include/blis
    NO_DEFAULT_PATH)
  find_library(FEDL_BLIS_LIB NAMES blis)
  if(FEDL_BLIS_INCLUDE AND FEDL_BLIS_LIB)
    set(_blis_found TRUE PARENT_SCOPE)
  endif()
endfunction()

function(_fedl_find_openblas)
  find_path(FEDL_OPENBLAS_INCLUDE cblas.h
    PATHS /usr/include/${_fedl_arch}/openblas-pthread /usr/include/${_fedl_arch}/openblas-openmp
          /usr/include/${_fedl_arch}/openblas-serial /usr/include/openblas
    NO_DEFAULT_PATH)
  find_library(FEDL_OPENBLAS_LIB NAMES openblas)
  if(FEDL_OPENBLAS_INCLUDE AND FEDL_OPENBLAS_LIB)
    set(_openblas_found TRUE PARENT_SCOPE)
  endif()
endfunction()

set(_want ${FEDL_BLAS})
if(_want STREQUAL "auto")
  if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64|amd64")
    set(_order blis openblas c)
  else()
    set(_order openblas blis c)
  endif()
else()
  set(_order ${_want})
endif()

set(FEDL_BLAS_BACKEND "")
foreach(_candidate ${_order})
  if(_candidate STREQUAL "blis")
    _fedl_find_blis()
    if(_blis_found)
      set(FEDL_BLAS_BACKEND blis)
      set(FEDL_BLAS_INCLUDE ${FEDL_BLIS_INCLUDE})
      set(FEDL_BLAS_LIBRARY ${FEDL_BLIS_LIB})
      set(FEDL_BLAS_LINK_FLAG "-lblis")
      break()
    endif()
  elseif(_candidate STREQUAL "openblas")
    _fedl_find_openblas()
    if(_openblas_found)
      set(FEDL_BLAS_BACKEND openblas)
      set(FEDL_BLAS_INCLUDE ${FEDL_OPENBLAS_INCLUDE})
      set(FEDL_BLAS_LIBRARY ${FEDL_OPENBLAS_LIB})
      set(FEDL_BLAS_LINK_FLAG "-lopenblas")
      break()
    endif()
  elseif(_candidate STREQUAL "c")
    set(FEDL_BLAS_BACKEND c)
    set(FEDL_BLAS_INCLUDE "")
    set(FEDL_BLAS_LIBRARY "")
    set(FEDL_BLAS_LINK_FLAG "")
    break()
  else()
    message(FATAL_ERROR "FEDL_BLAS must be auto, blis, openblas or c (got '${_candidate}')")
  endif()
endforeach()
if(FEDL_BLAS_BACKEND STREQUAL "")
  message(FATAL_ERROR "FEDL_BLAS=${FEDL_BLAS}: library not found (install libblis-dev or libopenblas-dev, or use -DFEDL_BLAS=c)")
endif()
