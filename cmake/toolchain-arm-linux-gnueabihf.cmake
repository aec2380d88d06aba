# toolchain-arm-linux-gnueabihf.cmake - cross-compile fedl for 32-bit Raspberry Pi OS (Debian armhf)
# with Debian's cross compiler and the target's -dev packages installed through
# multiarch (/usr/lib/arm-linux-gnueabihf), running tests under qemu-user.
#
#   cmake -S . -B build-cross-armhf -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-arm-linux-gnueabihf.cmake
#
# scripts/cross-test installs the packages, configures, builds and runs ctest.
set(CMAKE_SYSTEM_PROCESSOR armv7l)
set(FEDL_CROSS_TRIPLE arm-linux-gnueabihf)
set(FEDL_QEMU_NAME qemu-arm)
set(FEDL_TARGET_LOADER /lib/ld-linux-armhf.so.3)
include(${CMAKE_CURRENT_LIST_DIR}/toolchain-debian-cross.cmake)
