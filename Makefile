# symbreak: `make reproduce` runs every default experiment; `make test` runs the tests.
# Both build in release mode, so they share one build.

CARGO ?= cargo
SYMBREAK = $(CARGO) run --release --locked --quiet --
EXPERIMENTS := $(basename $(notdir $(wildcard experiments/*.toml)))
# Small test variants, the papers' full scale, the regime sweeps and the experiments that
# download (dwe-googlebooks) run only when named.
ONLINE_EXPERIMENTS := dwe-googlebooks
DEFAULT_EXPERIMENTS := $(filter-out %-smoke %-paper %-sweep $(ONLINE_EXPERIMENTS),$(EXPERIMENTS))
# Parallel downloads and stage instances of the online experiments.
JOBS ?= 4

.PHONY: all build reproduce test bench lint clean chromium $(addprefix reproduce-,$(EXPERIMENTS))

all: build

build:
	$(CARGO) build --release --locked

# Ends with the claims of every default experiment judged against results/reference/.
reproduce: build $(addprefix reproduce-,$(DEFAULT_EXPERIMENTS))
	@echo
	$(SYMBREAK) check $(DEFAULT_EXPERIMENTS)

$(addprefix reproduce-,$(filter-out $(ONLINE_EXPERIMENTS),$(EXPERIMENTS))): reproduce-%: build
	$(SYMBREAK) run $*

# Says what it will download and how large it is (the server's sizes) before downloading.
$(addprefix reproduce-,$(ONLINE_EXPERIMENTS)): reproduce-%: build
	@echo "$* downloads Google Books n-gram slices; asking the server for their sizes first:"
	$(SYMBREAK) fetch $* --dry-run -j $(JOBS)
	@echo "downloading (resumable; pinned in data/googlebooks.lock), then running $*"
	$(SYMBREAK) fetch $* -j $(JOBS)
	$(SYMBREAK) run $* -j $(JOBS)

test:
	$(CARGO) test --release --locked

bench: build
	$(SYMBREAK) bench

# Debian's chromium, for the test that renders a run's report.html headless (skipped without it).
chromium:
	command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; }

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --release --locked --all-targets -- -D warnings

clean:
	rm -rf .symbreak
	find results -mindepth 1 -maxdepth 1 -type d -exec rm -rf {} +
