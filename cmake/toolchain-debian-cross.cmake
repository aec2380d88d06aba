# toolchain-debian-cross.cmake - the part of a Debian multiarch cross build
# every target shares. The per-target toolchain files set
#   FEDL_CROSS_TRIPLE  (e.g. aarch64-linux-gnu)
#   FEDL_QEMU_NAME     (e.g. qemu-aarch64)
#   FEDL_TARGET_LOADER (the target's dynamic loader, e.g. /lib/ld-linux-aarch64.so.1)
#   FEDL_TARGET_CFLAGS (code generation for the board, e.g. -mcpu=cortex-a53)
#   FEDL_QEMU_CPU      (the core qemu emulates; unset: qemu's default)
# plus CMAKE_SYSTEM_PROCESSOR, then include this file.
#
# Where the target's libraries come from:
#   multiarch (default)  Debian's <pkg>:<arch> packages in the host's /usr
#                        (dpkg --add-architecture; needs root to install).
#   -DFEDL_SYSROOT=DIR   a target root filesystem: what scripts/make-sysroot
#                        unpacks from Debian's packages (no root needed), or
#                        a copy of the board's own /usr and /lib.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_C_COMPILER ${FEDL_CROSS_TRIPLE}-gcc)
set(CMAKE_C_FLAGS_INIT "${FEDL_TARGET_CFLAGS}")

set(FEDL_SYSROOT "" CACHE PATH "the target's root filesystem (empty: Debian multiarch packages)")
# try_compile re-reads this file in a project of its own: hand it the choice.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES FEDL_SYSROOT FEDL_TARGET_CFLAGS)

set(CMAKE_LIBRARY_ARCHITECTURE ${FEDL_CROSS_TRIPLE})
if(FEDL_SYSROOT)
  # gcc --sysroot: headers, crt files and libraries all from DIR.
  set(CMAKE_SYSROOT ${FEDL_SYSROOT})
  set(CMAKE_FIND_ROOT_PATH ${FEDL_SYSROOT})
  set(_fedl_pc_root ${FEDL_SYSROOT})
else()
  # Debian installs the multiarch target libraries and headers in the
  # ordinary /usr tree (/usr/lib/${FEDL_CROSS_TRIPLE},
  # /usr/include/${FEDL_CROSS_TRIPLE}), and the cross libc in
  # /usr/${FEDL_CROSS_TRIPLE}.
  set(CMAKE_FIND_ROOT_PATH /usr/${FEDL_CROSS_TRIPLE} /)
  set(_fedl_pc_root "")
endif()
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# pkg-config (cmocka): only the target's .pc files, never the host's.
set(ENV{PKG_CONFIG_LIBDIR}
  ${_fedl_pc_root}/usr/lib/${FEDL_CROSS_TRIPLE}/pkgconfig:${_fedl_pc_root}/usr/share/pkgconfig)
set(ENV{PKG_CONFIG_PATH} "")
set(ENV{PKG_CONFIG_SYSROOT_DIR} "${_fedl_pc_root}")

# ctest (and the cli test script) run target binaries through qemu-user.
# Host paths such as /usr/share/datasets are visible unchanged. -L is where
# qemu finds the dynamic loader: the target's own multiarch libc (libc6:<arch>,
# which the -dev packages pull in, the same glibc as on the device) when it is
# installed, else the cross toolchain's copy in /usr/${FEDL_CROSS_TRIPLE};
# with a sysroot, the sysroot's.
# Prefer the former: with Debian 12's libc6-*-cross (glibc 2.36-8) a forked
# child and OpenBLAS's thread pool spin forever under qemu 7.2, and neither
# does with libc6:<arch> 2.36-9+deb12u*.
find_program(FEDL_QEMU ${FEDL_QEMU_NAME})
if(NOT FEDL_QEMU)
  set(FEDL_QEMU ${FEDL_QEMU_NAME})
endif()
if(FEDL_SYSROOT)
  set(FEDL_QEMU_LD_PREFIX ${FEDL_SYSROOT})
elseif(EXISTS ${FEDL_TARGET_LOADER})
  set(FEDL_QEMU_LD_PREFIX /)
else()
  set(FEDL_QEMU_LD_PREFIX /usr/${FEDL_CROSS_TRIPLE})
endif()
if(FEDL_QEMU_CPU)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${FEDL_QEMU} -cpu ${FEDL_QEMU_CPU} -L ${FEDL_QEMU_LD_PREFIX})
else()
  set(CMAKE_CROSSCOMPILING_EMULATOR ${FEDL_QEMU} -L ${FEDL_QEMU_LD_PREFIX})
endif()
