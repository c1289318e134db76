# galzoo: `make demo` and `make test` create the environment (.venv) when needed.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
GALZOO := $(VENV)/bin/galzoo
STAMP := $(VENV)/.installed-stamp
DEMO := data/demo

.PHONY: venv test docs-check lint demo bench base-model gampen-base campaign clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "galzoo needs Python 3.11; set PYTHON=/path/to/python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

venv: $(STAMP)

test: venv
	$(PY) -m pytest -n 2 --dist loadgroup -q

# The user guide's commands (docs/guide.md), run as written; also part of make test.
docs-check: venv
	$(PY) -m pytest -q tests/test_guide.py

lint: venv
	$(VENV)/bin/ruff check .

# The demo grows with the pipeline. Today: the embedded default data set, 5000 simulated
# galaxies with simulated volunteers (records, manifest and montage.png in data/demo/synthetic);
# the shipped base model (docs/representation.md) fine-tuned on it for the bar question, 64 px,
# bfloat16 mixed precision, up to 20 epochs with early stopping;
# its calibration on the test split, with the test-time dropout rate and logit spread tuned on the validation
# split (report and the paper's figures in data/demo/calibration); and a posterior catalogue of
# the test split (data/demo/bar-test.fits), sampled as tuned; then 1000 new simulated
# galaxies as the unlabelled pool (data/demo/pool: none of them in the model's splits) and the
# 128 of them volunteers should label next by BALD (data/demo/acquired.csv and a montage).
# From 0.1: the fine-tuned model's best rate lies below 0.5 (docs/representation.md, in-domain table).
DEMO_DROPOUT_RATES := 0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9

demo: venv
	$(GALZOO) prepare synthetic --n 5000 --out $(DEMO)/synthetic --seed 0
	rm -rf $(DEMO)/bar-model
	$(GALZOO) train --data $(DEMO)/synthetic --question bar --init-from base --image-size 64 --mixed-precision \
		--epochs 20 --out $(DEMO)/bar-model --seed 0
	$(GALZOO) calibrate --model $(DEMO)/bar-model --data $(DEMO)/synthetic --out $(DEMO)/calibration \
		--tune-dropout $(DEMO_DROPOUT_RATES) --seed 0
	$(GALZOO) predict --model $(DEMO)/bar-model --data $(DEMO)/synthetic --split test \
		--out $(DEMO)/bar-test.fits --overwrite --seed 0
	$(GALZOO) prepare synthetic --n 1000 --seed 1 --out $(DEMO)/pool --test-size 0 --val-fraction 0
	$(GALZOO) acquire --model $(DEMO)/bar-model --pool $(DEMO)/pool --n 128 --out $(DEMO)/acquired.csv --seed 0
	@echo
	@echo "calibration report: $(DEMO)/calibration/calibration.json"
	@echo "figures (coverage, posteriors, distributions, ROC, confusion): $(DEMO)/calibration/*.png"
	@echo "posterior catalogue of the test split: $(DEMO)/bar-test.fits (columns: docs/posteriors.md)"
	@echo "galaxies to label next: $(DEMO)/acquired.csv; montage: $(DEMO)/acquired-montage.png"

# The base model shipped as galzoo_tf/weights/base (docs/representation.md): 50,000 simulated galaxies
# (about 17 minutes on 2 cores), one head per question of the tree, 64 px greyscale, bfloat16 mixed
# precision, up to 40 epochs (about 50 minutes); every step resumes where an interrupted run stopped.
# The shipped weights were made at commit 4e6dc1e, before issue 19's renderer; on later commits this
# target trains the new universe, which measured worse on real rings (docs/representation.md).
BASE_DATA := data/pretrain
BASE_RUN := data/base-run
BASE_PREPARE := prepare synthetic --n 50000 --seed 100 --out $(BASE_DATA)
BASE_TRAIN := train --data $(BASE_DATA) --question all --image-size 64 --batch-size 64 --epochs 40 --patience 6 \
	--mixed-precision --seed 0 --out $(BASE_RUN)

base-model: venv
	$(GALZOO) $(BASE_PREPARE)
	$(GALZOO) $(BASE_TRAIN) --resume
	$(PY) -m galzoo_tf.training.base_model $(BASE_RUN) "galzoo $(BASE_PREPARE) && galzoo $(BASE_TRAIN)"

# GaMPEN pretrained at length (docs/parameters.md, issue 21), shipped as galzoo_tf/weights/gampen-base: 32,000
# galaxies of Ghosh et al. (2022)'s Table 1 population in HSC g (nJy; about 11 minutes on 2 cores), the slim
# network (width 0.125) on the central 1/1.5 of each frame at 96 px, float32, up to 40 epochs (about 100 s each);
# every step resumes where an interrupted run stopped.
GAMPEN_DATA := data/gampen-pretrain
GAMPEN_RUN := data/gampen-base-run
GAMPEN_PREPARE := prepare synthetic --survey hsc --n 32000 --test-size 2000 --val-fraction 0.08 --seed 21 \
	--out $(GAMPEN_DATA)
GAMPEN_TRAIN := train --task parameters --data $(GAMPEN_DATA) --image-size 96 --zoom 1.5 1.5 --width 0.125 \
	--epochs 40 --batch-size 32 --learning-rate 3e-4 --patience 6 --seed 0 --out $(GAMPEN_RUN)

gampen-base: venv
	$(GALZOO) $(GAMPEN_PREPARE)
	$(GALZOO) $(GAMPEN_TRAIN) --resume
	$(PY) -m galzoo_tf.training.base_model $(GAMPEN_RUN) "galzoo $(GAMPEN_PREPARE) && galzoo $(GAMPEN_TRAIN)" gampen-base

# Active learning on a representation (docs/acquisition.md, issue 20): 25,000 simulated galaxies to pretrain a trunk
# on every question but bar (64 px, 20 epochs), 60,000 others as the pool (a 2500-galaxy test set; 19,647 pool
# galaxies of 54,625 have N_bar >= 10, the paper's cut), then the bar campaign of heads on the trunk's features: 6 repeats x
# 15 iterations x 4 strategies. Every step resumes or is a no-op when done.
CAMPAIGN := data/campaign
CAMPAIGN_TRAIN := train --data $(CAMPAIGN)/pretrain --question all --leave-out bar --image-size 64 --batch-size 64 \
	--epochs 20 --patience 4 --mixed-precision --seed 0 --out $(CAMPAIGN)/trunk-without-bar
CAMPAIGN_SIMULATE := acquire simulate --data $(CAMPAIGN)/pool --representation $(CAMPAIGN)/trunk-without-bar \
	--question bar --min-votes 10 --initial 256 --step 128 --iterations 15 --repeats 6 \
	--strategies bald,power-bald,epig,random --steps 1000 --hidden 64 --learning-rate 3e-3 --batch-size 128 \
	--seed 0 --out $(CAMPAIGN)/bar

campaign: venv
	$(GALZOO) prepare synthetic --n 25000 --seed 400 --out $(CAMPAIGN)/pretrain
	test -f $(CAMPAIGN)/trunk-without-bar/model.keras || $(GALZOO) $(CAMPAIGN_TRAIN) --resume
	$(GALZOO) prepare synthetic --n 60000 --seed 300 --test-size 2500 --val-fraction 0.05 --out $(CAMPAIGN)/pool
	$(GALZOO) $(CAMPAIGN_SIMULATE) --resume

# The benchmark suite: every stage at a size that runs in about 6 minutes on 2 cores, one table
# (inputs cached in data/bench/suite; numbers also in data/bench/suite.json). docs/performance.md.
bench: venv
	$(PY) bench/suite.py

clean:
	rm -rf $(VENV) $(DEMO) data/bench .pytest_cache .ruff_cache
