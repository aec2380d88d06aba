# toolchain-arm-linux-gnueabihf.cmake - cross-compile fedl for 32-bit Raspberry Pi OS (Debian armhf)
# with Debian's cross compiler and the target's -dev packages installed through
# multiarch (/usr/lib/arm-linux-gnueabihf), running tests under qemu-user.
#
#   cmake -S . -B build-cross-armhf -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-arm-linux-gnueabihf.cmake
#
# or against a target root filesystem instead of multiarch packages
# (scripts/make-sysroot armhf DIR unpacks one from Debian's packages):
#
#   cmake ... -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-arm-linux-gnueabihf.cmake -DFEDL_SYSROOT=DIR
#
# scripts/cross-test installs the packages, configures, builds and runs ctest.
set(CMAKE_SYSTEM_PROCESSOR armv7l)
set(FEDL_CROSS_TRIPLE arm-linux-gnueabihf)
set(FEDL_QEMU_NAME qemu-arm)
set(FEDL_TARGET_LOADER /lib/ld-linux-armhf.so.3)
# Tuned for the Pi 3's Cortex-A53 in 32-bit mode, NEON on: the build runs on
# ARMv8 boards (Pi 3, 4, 5, Zero 2), not on the ARMv7 Pi 2 v1.1 or ARMv6
# boards (configure with -DFEDL_TARGET_CFLAGS=-march=armv7-a+fp for those).
# qemu-arm has no cortex-a53 model; its "max" core runs ARMv8's AArch32.
set(FEDL_TARGET_CFLAGS "-mcpu=cortex-a53 -mfpu=neon-fp-armv8 -mfloat-abi=hard"
  CACHE STRING "the target's code generation flags")
include(${CMAKE_CURRENT_LIST_DIR}/toolchain-debian-cross.cmake)
