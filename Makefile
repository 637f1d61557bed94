# uzswap - the two commands README starts with:
#   make demo   install what is missing, build, run uzswap bench on real pages
#   make test   install what is missing, build and run every test in three
#               builds (optimised, ASan+UBSan, TSan), and check that a clang
#               Release build with _FORTIFY_SOURCE=3 compiles warning-free
# make all only builds (make deps installs what is missing).
JOBS ?= $(shell nproc)
BUILD ?= build

.PHONY: all build deps demo test test-release test-asan test-tsan \
	test-clang-release install clean fuzz

all: build

build:
	cmake -S . -B $(BUILD)/release -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD)/release -j $(JOBS)

deps:
	@scripts/install-deps.sh

# The real page corpus when it is there; else uzswap bench's own default (a
# real program it starts, fills and snapshots).
CORPUS ?= ../shared/corpus
demo: deps
	$(MAKE) build
	@if [ -f $(CORPUS)/gcc.pages ]; then \
		$(BUILD)/release/uzswap bench --input $(CORPUS)/*.pages; \
	else \
		$(BUILD)/release/uzswap bench; \
	fi

test: deps
	$(MAKE) test-release test-asan test-tsan test-clang-release
	@echo "make test: all builds passed"

# One configured build per flavour, warnings as errors, the lock-order
# checker on; ctest runs everything, skips exit 77.
define flavour
test-$(1):
	cmake -S . -B $(BUILD)/$(1) -DUZ_WERROR=ON -DUZ_LOCKDEP=ON \
		-DUZ_SANITIZE=$(2) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD)/$(1) -j $(JOBS)
	cd $(BUILD)/$(1) && UZ_FLAVOUR=$(1) ctest --output-on-failure -j $(JOBS) $(3)
endef
$(eval $(call flavour,release,none,))
$(eval $(call flavour,asan,address,-LE nosan))
$(eval $(call flavour,tsan,thread,-LE 'nosan|single'))

# Another compiler, build type and fortification, so that none of them
# gains a warning: everything compiled, the fast unit tests run.
test-clang-release:
	CC=clang cmake -S . -B $(BUILD)/clang-release -DUZ_WERROR=ON \
		-DCMAKE_BUILD_TYPE=Release \
		-DCMAKE_C_FLAGS="-U_FORTIFY_SOURCE -D_FORTIFY_SOURCE=3" >/dev/null
	cmake --build $(BUILD)/clang-release -j $(JOBS)
	cd $(BUILD)/clang-release && ctest --output-on-failure -j $(JOBS) -L unit

install: build
	cmake --install $(BUILD)/release

clean:
	rm -rf $(BUILD)

# Coverage-guided fuzzing of every byte parser with libFuzzer (clang, the
# UZ_FUZZ targets). FUZZ_SECONDS per target; new inputs go to
# build/fuzz/corpus*, not the tree.
FUZZ_SECONDS ?= 60
fuzz: deps
	CC=clang cmake -S . -B $(BUILD)/fuzz -DUZ_FUZZ=ON \
		-DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS=-O1 >/dev/null
	cmake --build $(BUILD)/fuzz -j $(JOBS) --target fuzz_lzo_rle fuzz_decompress
	mkdir -p $(BUILD)/fuzz/corpus $(BUILD)/fuzz/corpus-decompress
	$(BUILD)/fuzz/tests/fuzz_lzo_rle -max_total_time=$(FUZZ_SECONDS) \
		-max_len=16384 $(BUILD)/fuzz/corpus tests/fuzz-corpus/lzo_rle
	$(BUILD)/fuzz/tests/fuzz_decompress -max_total_time=$(FUZZ_SECONDS) \
		-max_len=9000 $(BUILD)/fuzz/corpus-decompress tests/fuzz-corpus/decompress
