# shellcheck shell=bash
# Interleaved rounds and their ratios, shared by berth's engine benches
# (engine-run.sh, engine-net.sh). Sourced after ../shared/bench/lib.sh
# (median).
#
# interleave: ROUNDS rounds; in each, ILOOP_N sequential runs of every
# tool of TOOLS in turn, the order rotating from round to round, each run
# `one TOOL ROUND-I` (the caller's function). The time per run of each
# round goes to IL[TOOL] (space-separated ms), the failed runs' count to
# IF[TOOL]; then each tool's median over the rounds to IL[TOOL.med] and a
# line per tool to stdout and $LOG.
declare -A IL IF
interleave() {
  local r j i tool t0 t1
  echo "== interleaved: $ROUNDS rounds x $ILOOP_N sequential runs per tool (${TOOLS[*]})"
  for ((r = 0; r < ROUNDS; r++)); do
    for ((j = 0; j < ${#TOOLS[@]}; j++)); do
      tool=${TOOLS[$(((r + j) % ${#TOOLS[@]}))]}
      t0=$EPOCHREALTIME
      for ((i = 0; i < ILOOP_N; i++)); do
        one "$tool" "$r-$i" </dev/null >/dev/null 2>&1 || IF[$tool]=$((${IF[$tool]:-0} + 1))
      done
      t1=$EPOCHREALTIME
      IL[$tool]+="$(awk -v a="$t0" -v b="$t1" -v n="$ILOOP_N" 'BEGIN{ printf "%.1f", (b - a) * 1000 / n }') "
    done
  done
  for tool in "${TOOLS[@]}"; do
    IL[$tool.med]=$(tr ' ' '\n' <<<"${IL[$tool]}" | grep . | median)
    printf '%-22s %7.1f ms per run  (rounds: %s)%s\n' "$tool" "${IL[$tool.med]}" "${IL[$tool]% }" \
      "$([ "${IF[$tool]:-0}" != 0 ] && echo "  FAILED: ${IF[$tool]} runs")" | tee -a "$LOG"
  done
}

# round_ratio A B: the median over the rounds of A's time / B's, each
# round's tools having run back to back under one load: the figure to
# read first on a shared host.
round_ratio() {
  paste -d' ' <(tr ' ' '\n' <<<"${IL[$1]}" | grep .) <(tr ' ' '\n' <<<"${IL[$2]}" | grep .) |
    awk '$2 > 0 { print $1 / $2 }' | median | awk '{ printf "%.2f", $1 }'
}
# ratio_of A B: A / B to two places, "-" when either is missing.
ratio_of() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a == "" || b == "" || b + 0 == 0) print "-"; else printf "%.2f", a / b }'; }
# verdict RATIO LIMIT: ok, MISS, or ? without a ratio.
verdict() { awk -v r="$1" -v l="$2" 'BEGIN{ if (r == "-") print "?"; else print (r + 0 <= l + 0) ? "ok" : "MISS" }'; }
