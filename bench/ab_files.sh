# A/B of kernel sources on the device machine, sourced by the session scripts: `ab_files DIR FILE...` keeps this
# tree's copies of FILE (in edgemv/ops/cuda) aside, then `ab_use new` or `ab_use baseline` puts them, or DIR's copies
# (the previous commit's, carried), in place. The library's build cache is keyed by the sources, so each is built once.
AB_SOURCES=edgemv/ops/cuda
ab_files() {
  AB_BASELINE=$1
  shift
  AB_NAMES=("$@")
  AB_KEPT=$(mktemp -d)
  for f in "${AB_NAMES[@]}"; do cp "$AB_SOURCES/$f" "$AB_KEPT/$f"; done
}
ab_use() {  # new|baseline
  local from=$AB_KEPT
  [ "$1" = baseline ] && from=$AB_BASELINE
  for f in "${AB_NAMES[@]}"; do cp "$from/$f" "$AB_SOURCES/$f"; done
}
