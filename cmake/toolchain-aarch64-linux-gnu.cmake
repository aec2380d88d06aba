# toolchain-aarch64-linux-gnu.cmake - cross-compile fedl for 64-bit Raspberry Pi OS (Debian arm64)
# with Debian's cross compiler and the target's -dev packages installed through
# multiarch (/usr/lib/aarch64-linux-gnu), running tests under qemu-user.
#
#   cmake -S . -B build-cross-aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-aarch64-linux-gnu.cmake
#
# or against a target root filesystem instead of multiarch packages
# (scripts/make-sysroot aarch64 DIR unpacks one from Debian's packages):
#
#   cmake ... -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-aarch64-linux-gnu.cmake -DFEDL_SYSROOT=DIR
#
# scripts/cross-test installs the packages, configures, builds and runs ctest.
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(FEDL_CROSS_TRIPLE aarch64-linux-gnu)
set(FEDL_QEMU_NAME qemu-aarch64)
set(FEDL_TARGET_LOADER /lib/ld-linux-aarch64.so.1)
# Tuned for the Pi 3's Cortex-A53 (NEON and the CRC extension are part of
# it); qemu emulates that core, so an instruction it lacks fails the tests.
set(FEDL_TARGET_CFLAGS "-mcpu=cortex-a53" CACHE STRING "the target's code generation flags")
set(FEDL_QEMU_CPU cortex-a53)
include(${CMAKE_CURRENT_LIST_DIR}/toolchain-debian-cross.cmake)
