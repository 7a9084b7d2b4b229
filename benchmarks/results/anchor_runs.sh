#!/bin/bash
# The anchor runs and the judge run, each model run under the shared heavy lock, all
# stopped (SIGINT: finished problems stay stored) at $DEADLINE. Run from the repository root.
set -u
L=/tmp/llamarch-heavy.lock
B=.venv/bin/llamarch
M=/root/.local/share/llamarch/models
PAR=${PAR:-4}
DEADLINE=$(date -u -d "${DEADLINE:-03:08}" +%s)
log() { echo "[$(date -u +%H:%M:%S)] $*"; }
left() { echo $(( DEADLINE - $(date -u +%s) )); }
locked() {  # locked CMD...: run (the whole script holds the lock), interrupted at the deadline
  local t; t=$(left); [ "$t" -gt 30 ] || { log "no time left for: $*"; return 1; }
  timeout -s INT "$t" /usr/bin/time -f "wall %e s" "$@"
}
# One hold for the whole chain: these results are shared (other runs reuse them from the store).
if [ -z "${EJ_LOCKED:-}" ]; then
  exec env EJ_LOCKED=1 flock -w "$(left)" $L "$0" "$@"
fi
log "lock acquired"
if [ ! -s /tmp/ej-seq.json ]; then
  log "sequential --limit 8"
  locked env LLAMARCH_HOME=/tmp/ej-seq LLAMARCH_MODELS=$M $B eval humaneval -m qwen2.5-coder-0.5b --limit 8 --json --out /tmp/ej-seq.json > /dev/null
fi
python3 - <<'PY'
import json
a=json.load(open('/tmp/ej-par.json')); b=json.load(open('/tmp/ej-seq.json'))
same=sum(x['completion']==y['completion'] for x,y in zip(a['results'],b['results'])); ok=sum(x['passed']==y['passed'] for x,y in zip(a['results'],b['results']))
print(f"parallel 4 vs sequential: {same}/8 identical replies, {ok}/8 same pass/fail; tok/s {a['summary']['tok_per_s']} vs {b['summary']['tok_per_s']}")
PY
anchor() {
  log "HumanEval $1 --parallel $PAR"
  locked $B eval humaneval -m $1 --parallel $PAR --json --out benchmarks/results/humaneval-$2.json > benchmarks/results/humaneval-$2.summary.json
  python3 -c "import json,sys; s=json.load(open(sys.argv[1])); print(s['model'], s['pass@1'], s['statuses'], s['completion_tokens'], s['tok_per_s'], s['wall_s'])" benchmarks/results/humaneval-$2.summary.json
}
anchor qwen2.5-coder-0.5b qwen05
anchor smollm2-135m smollm
log "eval judge -s qwen2.5-coder-0.5b -t qwen2.5-coder-1.5b --limit ${JUDGE_LIMIT:-48}"
locked $B eval judge -s qwen2.5-coder-0.5b -t qwen2.5-coder-1.5b --limit ${JUDGE_LIMIT:-48} --parallel $PAR --json --out benchmarks/results/judge-qwen05-by-qwen15.json > benchmarks/results/judge-qwen05-by-qwen15.summary.json
anchor qwen2.5-coder-1.5b qwen15
log done
