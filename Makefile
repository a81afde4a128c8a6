# symbreak: `make reproduce` runs every default experiment; `make test` runs the tests.
# Both build in release mode, so they share one build.

CARGO ?= cargo
SYMBREAK = $(CARGO) run --release --locked --quiet --
EXPERIMENTS := $(basename $(notdir $(wildcard experiments/*.toml)))
# Small test variants, the papers' full scale and the regime sweeps run only when named.
DEFAULT_EXPERIMENTS := $(filter-out %-smoke %-paper %-sweep,$(EXPERIMENTS))

.PHONY: all build reproduce test bench lint clean chromium $(addprefix reproduce-,$(EXPERIMENTS))

all: build

build:
	$(CARGO) build --release --locked

reproduce: build $(addprefix reproduce-,$(DEFAULT_EXPERIMENTS))

$(addprefix reproduce-,$(EXPERIMENTS)): reproduce-%: build
	$(SYMBREAK) run $*

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
