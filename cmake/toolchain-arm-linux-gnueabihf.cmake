# toolchain-arm-linux-gnueabihf.cmake - cross-compile fedl for 32-bit Raspberry Pi OS (Debian armhf)
# with Debian's cross compiler and the target's -dev packages installed through
# multiarch (/usr/lib/arm-linux-gnueabihf), running tests under qemu-user.
#
#   cmake -S . -B build-cross-armhf -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-arm-linux-gnueabihf.cmake
#
# scripts/cross-test installs the packages, configures, builds and runs ctest.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR armv7l)
set(FEDL_CROSS_TRIPLE arm-linux-gnueabihf)

set(CMAKE_C_COMPILER ${FEDL_CROSS_TRIPLE}-gcc)
# Debian installs the multiarch target libraries and headers in the ordinary
# /usr tree (/usr/lib/${FEDL_CROSS_TRIPLE}, /usr/include/${FEDL_CROSS_TRIPLE}),
# and the cross libc in /usr/${FEDL_CROSS_TRIPLE}.
set(CMAKE_LIBRARY_ARCHITECTURE ${FEDL_CROSS_TRIPLE})
set(CMAKE_FIND_ROOT_PATH /usr/${FEDL_CROSS_TRIPLE} /)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# pkg-config (cmocka): only the target's .pc files, never the host's.
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/${FEDL_CROSS_TRIPLE}/pkgconfig:/usr/share/pkgconfig)
set(ENV{PKG_CONFIG_PATH} "")
set(ENV{PKG_CONFIG_SYSROOT_DIR} "")

# ctest (and the cli test script) run target binaries through qemu-user.
# Host paths such as /usr/share/datasets are visible unchanged. -L is where
# qemu finds the dynamic loader: the target's own multiarch libc (libc6:<arch>,
# which the -dev packages pull in, the same glibc as on the device) when it is
# installed, else the cross toolchain's copy in /usr/${FEDL_CROSS_TRIPLE}.
# Prefer the former: with Debian 12's libc6-*-cross (glibc 2.36-8) a forked
# child and OpenBLAS's thread pool spin forever under qemu 7.2, and neither
# does with libc6:<arch> 2.36-9+deb12u*.
find_program(FEDL_QEMU qemu-arm)
if(NOT FEDL_QEMU)
  set(FEDL_QEMU qemu-arm)
endif()
if(EXISTS /lib/ld-linux-armhf.so.3)
  set(FEDL_QEMU_LD_PREFIX /)
else()
  set(FEDL_QEMU_LD_PREFIX /usr/${FEDL_CROSS_TRIPLE})
endif()
set(CMAKE_CROSSCOMPILING_EMULATOR ${FEDL_QEMU} -L ${FEDL_QEMU_LD_PREFIX})
