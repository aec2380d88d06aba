# fedl - thin driver around CMake. The two commands a newcomer needs:
#   make demo   federated LeNet-5 on Fashion-MNIST: 10 simulated clients, 5 rounds
#   make test   build everything and run the test suite
BUILD ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=
PREFIX ?= /usr/local

.PHONY: all build test test-arm demo install clean sanitize bench fuzz format check-format

all: build

$(BUILD)/CMakeCache.txt:
	@scripts/install-deps build
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=$(PREFIX) $(CMAKE_FLAGS)

build: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

test:
	@scripts/install-deps test
	@$(MAKE) --no-print-directory build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# The Raspberry Pi targets: cross-built with Debian's compilers, the unit
# tests and the cross-architecture tests (label cross: checkpoints, a
# federated job) under qemu-user (docs/RASPBERRY-PI.md).
# ARM_TARGETS=aarch64 for one; CROSS_SYSROOT=DIR builds against a sysroot.
ARM_TARGETS ?= aarch64 armhf
test-arm:
	@$(MAKE) --no-print-directory build
	@for arch in $(ARM_TARGETS); do \
	    HOST_BUILD=$(BUILD) JOBS=$(JOBS) scripts/cross-test $$arch -- -L 'unit|cross' || exit 1; \
	done

demo:
	@scripts/install-deps demo
	@$(MAKE) --no-print-directory build
	$(BUILD)/fedl simulate --clients 10 --rounds 5 --model lenet5 \
	    --data /usr/share/datasets/fashion-mnist --partition iid --strategy fedavg \
	    --local-epochs 1 --batch 32 --lr 0.05 --seed 1 --out $(BUILD)/lenet5-fedavg.fedl
	$(BUILD)/fedl eval --model-file $(BUILD)/lenet5-fedavg.fedl --data /usr/share/datasets/fashion-mnist

install: build
	cmake --install $(BUILD)

# Unit tests under AddressSanitizer + UndefinedBehaviorSanitizer.
sanitize:
	@scripts/install-deps test
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DFEDL_SANITIZE=ON -DFEDL_BUILD_BENCH=OFF
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	    ctest --output-on-failure -j $(JOBS) -L "unit|cli"

bench:
	@scripts/install-deps bench
	@$(MAKE) --no-print-directory build
	bench/train_vs_torch.sh $(BUILD)

fuzz:
	@scripts/install-deps fuzz
	cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	    -DFEDL_FUZZ=ON -DFEDL_BUILD_TESTS=OFF -DFEDL_BUILD_BENCH=OFF -DFEDL_BUILD_EXAMPLES=OFF
	cmake --build build-fuzz -j $(JOBS)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

check-format:
	clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) build-asan build-fuzz
