#!/usr/bin/env sh
# Clean PandaLM's human-labelled test set with a judge model: keep the pairs whose
# majority-preferred answer the judge also prefers, in both presentation orders.
#
#   sh examples/clean_pandalm.sh [INPUT] [OUTPUT_DIR] [MODEL]
#
# PandaLM rows (instruction, input, response1, response2, annotator1..3) are read
# as prompt/chosen/rejected by the annotators' majority; a pair without a majority
# goes to rejected.jsonl as a tie, so that rows in = kept + dropped + rejected.
# The script is restartable: run it again after a crash or Ctrl-C and it continues
# (--resume) where the last checkpoint left it; it starts the job when there is none.
# critic filter exits 1 when rows were rejected (PandaLM's ties always are): not a failure here.
#
# The demo model (135M parameters) is a weak judge with a strong first-position
# bias: it keeps almost nothing. Use the real judge on a GPU for useful labels:
#   sh examples/clean_pandalm.sh ../shared/data/pandalm/testset-v1.json out/pandalm-8b Skywork/Skywork-Critic-Llama-3.1-8B
set -eu
INPUT=${1:-../shared/data/pandalm/testset-v1.json}
OUT=${2:-out/pandalm}
MODEL=${3:-demo}
CRITIC=${CRITIC:-critic}

RESUME=""
if [ -f "$OUT/checkpoint.json" ]; then RESUME="--resume"; fi
"$CRITIC" filter "$INPUT" --output-dir "$OUT" --model "$MODEL" $RESUME || [ $? -eq 1 ]

echo
echo "first kept pair (if any), first dropped pair, first rejected row:"
for name in kept dropped rejected; do
    head -n 1 "$OUT/$name.jsonl" | cut -c 1-300
done
