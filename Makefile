# uzswap - the two commands README starts with:
#   make demo   install what is missing, build, run uzswap bench on real pages
#   make test   install what is missing, build and run every test three
#               times: optimised, ASan+UBSan, TSan
JOBS ?= $(shell nproc)
BUILD ?= build

.PHONY: all deps demo test test-release test-asan test-tsan install clean fuzz

all: deps
	cmake -S . -B $(BUILD)/release -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD)/release -j $(JOBS)

deps:
	@scripts/install-deps.sh

# The real page corpus when it is there; else uzswap bench's own default (a
# real program it starts, fills and snapshots).
CORPUS ?= ../shared/corpus
demo: all
	@if [ -f $(CORPUS)/gcc.pages ]; then \
		$(BUILD)/release/uzswap bench --input $(CORPUS)/*.pages; \
	else \
		$(BUILD)/release/uzswap bench; \
	fi

test: deps test-release test-asan test-tsan
	@echo "make test: all three builds passed"

# One configured build per flavour; ctest runs everything, skips exit 77.
define flavour
test-$(1): deps
	cmake -S . -B $(BUILD)/$(1) -DUZ_WERROR=ON -DUZ_SANITIZE=$(2) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD)/$(1) -j $(JOBS)
	cd $(BUILD)/$(1) && UZ_FLAVOUR=$(1) ctest --output-on-failure -j $(JOBS) $(3)
endef
$(eval $(call flavour,release,none,))
$(eval $(call flavour,asan,address,-LE nosan))
$(eval $(call flavour,tsan,thread,-LE 'nosan|single'))

install: all
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
