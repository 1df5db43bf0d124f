#!/bin/sh
# Continue training the shipped photo denoiser (models/natural) on one CUDA GPU within a time
# budget, then export the EMA weights into models/natural (card: steps and wall time continue).
#
# Made for a short loan of a GPU machine (the repository copied there, ../shared not): copy
# Train400 (and CBSD432, for CONFIG=configs/natural_full.json) into the working tree first
# (git-ignored data_local/), e.g.
#     mkdir -p data_local && cp -r ../shared/data/train/Train400 ../shared/data/train/CBSD432 data_local/
# CONFIG picks the training config (default configs/natural.json with the data below;
# configs/natural_full.json: CBSD432 + Train400 + bundled + dead leaves over the whole noise range,
# its own data list).
# then, on the GPU machine, from the repository root:
#     MINUTES=6 sh scripts/gpu_natural.sh   (the loan's start-up counts against its budget too)
# (the run folder is RUN_DIR, not OUT, which the device tool sets) and bring models/natural/ (model.safetensors, card.json) and runs/gpu_natural/log.jsonl back.
#
# Steps: (1) a probe of PROBE_STEPS steps measures steps/s at BATCH (it also proves the CUDA
# path end to end); (2) the run: as many steps as fit in MINUTES at that rate, a short warm-up
# (fresh optimizer) and a cosine decay to the end; (3) export. Every part stops on an error.
# DEVICE=cpu with tiny MINUTES/BATCH runs the same script on a CPU (a smoke test).
set -eu
PY=${PY:-python3}
MINUTES=${MINUTES:-6}
BATCH=${BATCH:-64}
LR=${LR:-0.0002}
DEVICE=${DEVICE:-cuda}
# data-loading processes (the GPU machine has 16 cores; on a 2-core CPU they only compete)
if [ "$DEVICE" = "cpu" ]; then WORKERS=${WORKERS:-0}; else WORKERS=${WORKERS:-6}; fi
PROBE_STEPS=${PROBE_STEPS:-100}
RUN_DIR=${RUN_DIR:-runs/gpu_natural}
CONFIG=${CONFIG:-configs/natural.json}
DATA_DIR=${DATA_DIR:-data_local/Train400}
MODEL_DIR=${MODEL_DIR:-models/natural}
EXPORT_TO=${EXPORT_TO:-$MODEL_DIR}

if [ ! -d "$DATA_DIR" ]; then
  echo "Train400 not found at $DATA_DIR (copy it there first, see the top of this script)" >&2
  exit 2
fi
START=$($PY -c "import json,sys; print(json.load(open(sys.argv[1]))['steps'])" "$MODEL_DIR/card.json")
# TRAIN_ARGS: more train flags for every part, e.g. TRAIN_ARGS="--p-edge-chroma 0.6"
TRAIN_ARGS=${TRAIN_ARGS:-}
COMMON="--config $CONFIG --device $DEVICE --batch $BATCH --workers $WORKERS --eval-every 500 --sample-every 0 $TRAIN_ARGS"
if [ "$CONFIG" = "configs/natural.json" ]; then
  DATA="--data folder:$DATA_DIR@0.45 bundled@0.3 deadleaves@0.25"
else
  DATA=""  # the config's own data list
fi

echo "== probe: $PROBE_STEPS steps from step $START at batch $BATCH on $DEVICE"
rm -rf "$RUN_DIR.probe"
T0=$($PY -c "import time; print(time.time())")
# shellcheck disable=SC2086
$PY -m diffusion_core train $COMMON --out "$RUN_DIR.probe" --init "$MODEL_DIR/model.safetensors" \
  --steps $((START + PROBE_STEPS)) --lr 0.00001 --ckpt-every 100000 $DATA
T1=$($PY -c "import time; print(time.time())")
# the training rate from the probe's log (its last steps_per_s); the rest of the probe's time
# was set-up (data loading, CUDA start), paid twice more below (warm-up and main run)
N=$($PY -c "
import json, sys
t0, t1, m, probe, log = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
recs = [json.loads(line) for line in open(log) if line.strip()]
rate = max([r['steps_per_s'] for r in recs if 'steps_per_s' in r][-1:] or [probe / max(t1 - t0, 1e-6)])
setup = max(0.0, (t1 - t0) - probe / rate)
print(max(probe, int(rate * (m * 60 - 2 * setup))))" "$T0" "$T1" "$MINUTES" "$PROBE_STEPS" "$RUN_DIR.probe/log.jsonl")
echo "== probe took $($PY -c "import sys; print(round(float(sys.argv[2]) - float(sys.argv[1]), 1))" "$T0" "$T1") s; planning $N steps"

END=$((START + N))
WARM=$((N / 20 + 1))
rm -rf "$RUN_DIR"
# warm-up: the fresh optimizer's first steps at a low rate, then the cosine cycle
# shellcheck disable=SC2086
$PY -m diffusion_core train $COMMON --out "$RUN_DIR" --init "$MODEL_DIR/model.safetensors" \
  --steps $((START + WARM)) --lr 0.00002 --ckpt-every 200 $DATA
# shellcheck disable=SC2086
$PY -m diffusion_core train $COMMON --out "$RUN_DIR" --resume --steps "$END" \
  --lr-decay-start $((START + WARM)) --lr "$LR" --ckpt-every 200 $DATA

# the card keeps the earlier history: hardware and command get this part appended
EXTRA=$($PY -c "
import json, sys, torch
start, end, batch, dev, card, extra, config, data = sys.argv[1:9]
old = json.load(open(card))
hw = torch.cuda.get_device_name(0) if dev.startswith('cuda') else 'CPU'
part = f'steps {start}-{end}'
print(json.dumps({
    'hardware': old.get('hardware', '') + f'; {part}: {hw}',
    'command': old.get('command', '') + (f'; {part}: scripts/gpu_natural.sh (BATCH={batch}, '
        f'DEVICE={dev}, CONFIG={config}, TRAIN_ARGS={extra!r}) from the shipped weights, data '
        f'{data or config}, a short low-rate warm-up then one cosine cycle'),
    'trained_in_sessions': old.get('trained_in_sessions', '') + f'; {part} on {hw}'}))
" "$START" "$END" "$BATCH" "$DEVICE" "$MODEL_DIR/card.json" "$TRAIN_ARGS" "$CONFIG" "${DATA#--data }")
$PY -m diffusion_core export --run "$RUN_DIR" --out "$EXPORT_TO" --extra "$EXTRA"
echo "== exported step $END to $EXPORT_TO"
