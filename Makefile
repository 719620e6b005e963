# Latent Space Imaging — developer commands. `make help` lists them.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
RATIO ?= 512
RATIOS ?= 128 256 512 1024 2048 4096 8192 16384
export OMP_NUM_THREADS ?= 2
# passive OpenMP waits: spinning threads collapse throughput when the 2 cores are shared
export OMP_WAIT_POLICY ?= PASSIVE

.DEFAULT_GOAL := help
.PHONY: help setup lint format test test-full train train-rig pretrain-embedded eval-embedded bench bench-gpu bench-faces bench-masks table compare hardware-e2e clean

help: ## list the targets
	@grep -E '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}'

setup: ## create .venv and install everything (torch CPU/CUDA wheels from pip, all extras, editable)
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install -e ".[hardware,eval,deploy,dev]"
	$(BIN)/python -c "import lsi, datamodules, hardware; print('lsi installed')"

lint: ## ruff check (rules in pyproject.toml); must pass before make test
	$(BIN)/ruff check .

format: ## apply ruff's safe fixes (import order, modern syntax), then ruff format on the files you name: make format FILES=lsi/x.py
	$(BIN)/ruff check --fix .
	$(if $(FILES),$(BIN)/ruff format $(FILES),@echo "ruff format not applied to the whole tree; pass FILES=... to format files")

test: ## fast test suite (no slow, no real-hardware tests)
	$(BIN)/python -m pytest -m "not slow and not hardware" -q

test-full: ## every test except those needing a real DMD/DAQ rig
	$(BIN)/python -m pytest -m "not hardware" -q

# train and test at RATIO: $(1) = configs merged after configs/train_embedded.yaml, $(2) = the run folder
define train_and_test
	@$(BIN)/python -m lsi.cli.check_ratio "$(RATIO)"
	$(BIN)/lsi fit -c configs/train_embedded.yaml $(1) --model.init_args.ratio $(RATIO) --trainer.default_root_dir $(2)
	$(BIN)/lsi test -c configs/train_embedded.yaml $(1) --model.init_args.ratio $(RATIO) --trainer.default_root_dir $(2) \
	  --ckpt_path $(2)/lsi.ckpt
endef

train: ## train O and D_theta on the embedded world, then test: make train RATIO=512 -> runs/ratio512/
	$(call train_and_test,,runs/ratio$(RATIO))

pretrain-embedded: ## retrain the shipped embedded G, E and identity net (CPU, <= 45 min) and re-measure them
	$(BIN)/python -m lsi.experiments.pretrain --evaluate

eval-embedded: ## measure the shipped embedded world -> docs/embedded-world.md
	$(BIN)/python -m lsi.experiments.pretrain.evaluate

bench: ## performance: inference per backend, training steps by part, exports -> docs/performance.md (<= 15 min)
	$(BIN)/python -m lsi.experiments.bench

bench-gpu: ## training steps on a CUDA card, fp32 and bf16 -> GPU section of docs/performance.md
	$(BIN)/python -m lsi.experiments.bench_gpu

bench-faces: ## rendering speed of the procedural face world
	$(BIN)/python -m lsi.experiments.faces_bench

bench-masks: ## learned vs fixed 2-D Hadamard vs random masks at 1:512 and 1:4096, same budget -> docs/results.md (resumable)
	$(BIN)/python -m lsi.experiments.mask_bench

table: ## train + evaluate all eight ratios and every head -> docs/results.md Table 1 and figures (resumable)
	$(BIN)/python -m lsi.experiments.table1

compare: ## Table 2: LSI vs the baselines at equal measurements: make compare RATIO=256 -> docs/table2.json (resumable)
	$(BIN)/python -m lsi.experiments.compare --ratio $(RATIO)

train-rig: ## physics-aware training for a rig (the rig's detector noise in every phase): make train-rig RATIO=512 -> runs/rig512/
	$(call train_and_test,-c configs/rig_noise.yaml,runs/rig$(RATIO))

hardware-e2e: ## simulated rig end to end with runs/rig512 (make train-rig): capture 200 scenes, test, fine-tune, test -> docs/hardware.md
	$(BIN)/python -m lsi.experiments.hardware_e2e --run runs/rig$(RATIO) --capture runs/capture-rig$(RATIO)

clean: ## remove runs and caches (keeps .venv and shipped weights)
	rm -rf runs lightning_logs .pytest_cache
