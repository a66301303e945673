#!/usr/bin/env bash
# Write the generated inputs of corpus/{idx,cifar,weights,model,experiment}/: seed-*
# files, and the crash-* files that reproduce a bug the targets found (other crash-*
# files, saved from a fuzzing run, are kept as they are).
# Bash, printf and gzip only. Run from anywhere; rerun after changing a format.
set -euo pipefail
cd "$(dirname "$0")/corpus"
root=../../..

le16() { printf "\\x$(printf %02x $(($1 & 255)))\\x$(printf %02x $(($1 >> 8 & 255)))"; }
le32() { le16 $(($1 & 65535)); le16 $(($1 >> 16 & 65535)); }
be32() { printf "\\x$(printf %02x $(($1 >> 24 & 255)))\\x$(printf %02x $(($1 >> 16 & 255)))"
         printf "\\x$(printf %02x $(($1 >> 8 & 255)))\\x$(printf %02x $(($1 & 255)))"; }
bytes() { local n=$1 v=$2; for ((i = 0; i < n; i++)); do printf "\\x$(printf %02x $(((v + i * 37) & 255)))"; done; }
# prefix FLAGS LIMIT SPLIT: the 4 bytes the idx and cifar targets read first
prefix() { printf "\\x$(printf %02x "$1")\\x$(printf %02x "$2")"; le16 "$3"; }
# crc FILE: CRC-32 of FILE, little-endian (gzip's trailer holds it)
crc() { gzip -c "$1" | tail -c 8 | head -c 4; }

mkdir -p idx cifar weights model experiment
rm -f idx/seed-* cifar/seed-* weights/seed-* model/seed-* experiment/seed-*
rm -f idx/crash-header-2g-images experiment/crash-leak-cell*-* experiment/crash-leak-fingerprint-*
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# ---- IDX: 3 images of 2x2 and their labels
{ be32 0x803; be32 3; be32 2; be32 2; bytes 12 0; } > "$tmp/img"
{ be32 0x801; be32 3; printf '\x00\x01\x02'; } > "$tmp/lab"
seed_idx() { # name flags limit image-file label-file
  { prefix "$2" "$3" "$(stat -c %s "$4")"; cat "$4" "$5"; } > "idx/${6:-seed}-$1"; }
seed_idx raw 0 0 "$tmp/img" "$tmp/lab"
seed_idx raw-limit2 0 2 "$tmp/img" "$tmp/lab"
seed_idx gz-by-harness 3 0 "$tmp/img" "$tmp/lab"
gzip -c -n "$tmp/img" > "$tmp/img.gz"; gzip -c -n "$tmp/lab" > "$tmp/lab.gz"
seed_idx gz-in-file 0 0 "$tmp/img.gz" "$tmp/lab.gz"
{ be32 0x801; be32 3; be32 2; be32 2; bytes 12 0; } > "$tmp/bad"
seed_idx wrong-magic 0 0 "$tmp/bad" "$tmp/lab"
seed_idx swapped 0 0 "$tmp/lab" "$tmp/img"
head -c 20 "$tmp/img" > "$tmp/bad"; seed_idx truncated 0 0 "$tmp/bad" "$tmp/lab"
{ be32 0x801; be32 4; printf '\x00\x01\x02\x03'; } > "$tmp/bad"
seed_idx count-mismatch 0 0 "$tmp/img" "$tmp/bad"
{ be32 0x803; be32 3; be32 0; be32 2; } > "$tmp/bad"; seed_idx zero-dim 0 0 "$tmp/bad" "$tmp/lab"
{ be32 0x803; be32 0x7fffffff; be32 1; be32 1; bytes 4 0; } > "$tmp/bad"
{ be32 0x801; be32 0x7fffffff; bytes 4 0; } > "$tmp/bad2"
# a header declaring 2^31-1 images in a 20-byte file: once an 8 GB allocation
seed_idx header-2g-images 0 0 "$tmp/bad" "$tmp/bad2" crash
{ be32 0x803; be32 3; be32 2; be32 2; bytes 13 0; } > "$tmp/bad"; seed_idx extra-byte 0 0 "$tmp/bad" "$tmp/lab"
head -c 30 "$tmp/img.gz" > "$tmp/bad"; seed_idx gz-cut 0 0 "$tmp/bad" "$tmp/lab.gz"

# ---- CIFAR-10: records of 1 label + 3072 pixels
record() { printf "\\x$(printf %02x "$1")"; bytes 3072 "$1"; }
record 3 > "$tmp/r1"; { record 7; record 0; } > "$tmp/r2"
{ prefix 0 0 0; cat "$tmp/r1"; } > cifar/seed-one-record
{ prefix 4 0 3073; cat "$tmp/r1" "$tmp/r2"; } > cifar/seed-two-files
{ prefix 5 2 3073; cat "$tmp/r1" "$tmp/r2"; } > cifar/seed-two-files-gz-limit2
gzip -c -n "$tmp/r1" > "$tmp/r1.gz"; { prefix 0 0 0; cat "$tmp/r1.gz"; } > cifar/seed-gz-in-file
{ prefix 0 0 0; record 12; } > cifar/seed-bad-label
{ prefix 0 0 0; head -c 3000 "$tmp/r1"; } > cifar/seed-short
{ prefix 4 0 3073; cat "$tmp/r1"; } > cifar/seed-empty-second

# ---- weights for fuzz_weights.c's network (conv1 2x1x3x3, fc1 3x8)
tensor() { le16 ${#1}; printf %s "$1"; le32 "$2"; le32 0; bytes $(($2 * 4)) 0; }
{ printf CNBW; le32 1; le32 4; tensor conv1.weights 18; tensor conv1.bias 2
  tensor fc1.weights 24; tensor fc1.bias 3; } > "$tmp/w"
{ printf '\x00'; cat "$tmp/w"; crc "$tmp/w"; } > weights/seed-valid
{ printf '\x01'; cat "$tmp/w"; } > weights/seed-valid-crc-by-harness
{ printf '\x00'; cat "$tmp/w"; printf '\x00\x00\x00\x00'; } > weights/seed-bad-crc
{ printf '\x01'; head -c 100 "$tmp/w"; } > weights/seed-truncated
{ printf '\x01'; printf CNBW; le32 2; le32 4; } > weights/seed-version-2
{ printf '\x01'; printf CNBW; le32 1; le32 3; } > weights/seed-count-3
{ printf '\x01'; printf CNBW; le32 1; le32 4; tensor conv1.bias 2; } > weights/seed-misnamed
{ printf '\x01'; printf CNBW; le32 1; le32 4; tensor conv1.weights 19; } > weights/seed-missized

# ---- models: the shipped ones, then malformed ones
for m in "$root"/experiments/models/*.ini; do cp "$m" "model/seed-$(basename "$m" .ini)"; done
net='[net]
channels = 1
height = 8
width = 8
classes = 2
'
printf '%s' "$net" > model/seed-no-layers
printf 'type = conv\n%s' "$net" > model/seed-key-before-section
printf '%s[a]\ntype = flatten\n[a]\ntype = flatten\n' "$net" > model/seed-duplicate-section
printf '%s[vars]\nact = relu\n[a]\ntype = act.${nosuch}\n[p]\ntype = softmax\n' "$net" > model/seed-undefined-var
printf '%s[a]\ntype = act.${act\n' "$net" > model/seed-unterminated-var
printf '%s[a]\ntype = flatten\n[f]\ntype = fc\noutputs = 100000000\n[p]\ntype = softmax\n' "$net" > model/seed-huge-fc
printf '%s[c]\ntype = conv\nfilters = 2\nkernel = 9\n[p]\ntype = softmax\n' "$net" > model/seed-kernel-too-big
printf '%s[c]\ntype = conv\nfilters = 2\nkernel = 3\nstride = 2\n[f]\ntype = flatten\n' "$net" > model/seed-no-loss
printf '%s[l]\ntype = lrn\nsize = 5\n[d]\ntype = dropout\nrate = 0.5\n[f]\ntype = fc\noutputs = 2\n[p]\ntype = softmax\n[q]\ntype = softmax\n' "$net" > model/seed-loss-twice
{ printf '%s[c]\ntype = conv\nfilters = 2\nkernel = 3\n; ' "$net"; bytes 300 65 | tr -c 'A-Za-z' x; printf '\n[p]\ntype = softmax\n'; } > model/seed-long-line

# ---- experiments: an experiment, then its parts (%%model, %%set, %%profile)
lenet=$(cat "$root/experiments/models/lenet5.ini")
small=$(cat "$root/experiments/models/alexnet-small.ini")
for e in lenet5-ablation lenet5-fashion alexnet-small-fashion; do
  { sed 's/^model = .*/model = model.ini/' "$root/experiments/$e.ini"; printf '\n%%%%model\n'
    case $e in alexnet*) printf '%s\n' "$small" ;; *) printf '%s\n' "$lenet" ;; esac; } > "experiment/seed-$e"
done
{ cat experiment/seed-lenet5-ablation; printf '%%%%set\ntrain.epochs=2\nvars.act=relu\nsweep.seed=1,2\n%%%%profile\nquick\n'; } > experiment/seed-set-profile
ex='[experiment]
model = model.ini
'
# only/exclude that fail or leave no cell: the cell list once leaked
printf '%s[sweep]\nact = sigmoid, relu\npool = avg, max\nonly = act=relu pool; act=sigmoid\n' "$ex" > experiment/crash-leak-cells-only-bad-term
printf '%s[sweep]\nact = sigmoid, relu\nexclude = act=relu; act=sigmoid\n' "$ex" > experiment/crash-leak-cells-exclude-all
# 64 variables and an axis of a new name: the 65th fails to be set, and the cell's copies
# of the 64 once leaked
{ printf '%s[vars]\n' "$ex"; for i in $(seq 1 64); do echo "v$i = $i"; done
  printf '[sweep]\nact = sigmoid, relu\n'; } > experiment/crash-leak-cell-too-many-vars
# a model the INI reader refuses (a section twice): the fingerprint once leaked it
printf '%s%%%%model\n[net]\nchannels = 1\n[net]\nchannels = 2\n' "$ex" > experiment/crash-leak-fingerprint-bad-model
printf '%s[sweep]\nact = sigmoid, relu\nonly = nosuch=1\n' "$ex" > experiment/seed-only-unknown-name
printf '%s[vars]\nact = tanh\n' "$ex" > experiment/seed-unknown-plugin
printf '%s[nosuch]\nkey = 1\n' "$ex" > experiment/seed-unknown-section
printf '%s[train]\nepochs = many\nbatch = 0\n' "$ex" > experiment/seed-bad-numbers
printf '%s[data]\nformat = cifar\nresize = 40x40\ncrop = 32x32\naugment = flip+crop+lighting\nlighting = image\n' "$ex" > experiment/seed-cifar-augment
printf '[experiment]\nname = x\n' > experiment/seed-no-model
printf '%s%%%%set\ntrain.nosuch=1\nnodot=1\n' "$ex" > experiment/seed-bad-set
printf '%s%%%%profile\nnosuch\n' "$ex" > experiment/seed-missing-profile
printf '%s%%%%model\n[net]\nchannels = 1\n[a]\ntype = act.${nosuch}\n' "$ex" > experiment/seed-model-undefined-var
echo "seeds written under $(pwd)"
