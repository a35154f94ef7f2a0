# keysim — the two commands a fresh machine needs (both install missing system packages first):
#   make demo   runs the main job on the built-in emulated card
#   make test   runs every check CI runs (format, lints, no_std probe, unit and integration tests,
#               the same APDU cases through a real pcscd with vpcd, osmocom pySim against that card)
.PHONY: demo test build system

CARGO ?= cargo

system:
	@scripts/setup-system.sh build

build: system
	$(CARGO) build --release

demo: build
	scripts/demo.sh

test:
	scripts/test.sh
