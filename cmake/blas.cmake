# blas.cmake - pick the GEMM backend (FEDL_BLAS = auto | blis | openblas | c).
#
# auto prefers OpenBLAS (Debian's 0.3.21 runs its Haswell AVX2 kernels on
# the x86 machines we measured, 2-7x faster than Debian's BLIS 0.9, which fell
# back to its 'generic' configuration there; OpenBLAS is also the tuned choice
# for the Cortex-A53), then BLIS, then the portable C kernel. The figures are
# in docs/PERFORMANCE.md.
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
  set(_order openblas blis c)
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
