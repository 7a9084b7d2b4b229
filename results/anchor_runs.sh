#!/bin/bash
# The anchor runs, each model run under the shared heavy lock. Run from the worktree root.
set -u
L=/tmp/llamarch-heavy.lock
B=.venv/bin/llamarch
M=/root/.local/share/llamarch/models
PAR=${PAR:-4}
log() { echo "[$(date -u +%H:%M:%S)] $*"; }
if [ ! -s /tmp/ej-seq.json ]; then
  log "sequential --limit 8"
  /usr/bin/time -f "wall %e s" flock $L env LLAMARCH_HOME=/tmp/ej-seq LLAMARCH_MODELS=$M $B eval humaneval -m qwen2.5-coder-0.5b --limit 8 --json --out /tmp/ej-seq.json
fi
python3 - <<'PY'
import json
a=json.load(open('/tmp/ej-par.json'))['results']; b=json.load(open('/tmp/ej-seq.json'))['results']
same=sum(x['completion']==y['completion'] for x,y in zip(a,b)); ok=sum(x['passed']==y['passed'] for x,y in zip(a,b))
print(f"parallel 4 vs sequential: {same}/8 identical replies, {ok}/8 same pass/fail")
PY
for m in qwen2.5-coder-0.5b:qwen05 smollm2-135m:smollm qwen2.5-coder-1.5b:qwen15; do
  id=${m%%:*}; tag=${m##*:}
  log "full HumanEval $id --parallel $PAR"
  /usr/bin/time -f "wall %e s" flock $L $B eval humaneval -m $id --parallel $PAR --json --out results/humaneval-$tag.json > results/humaneval-$tag.summary.json
  cat results/humaneval-$tag.summary.json | python3 -c "import json,sys; s=json.load(sys.stdin); print(s['model'], s['pass@1'], s['statuses'], s['completion_tokens'], s['tok_per_s'], s['wall_s'])"
done
log done
