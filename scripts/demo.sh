#!/usr/bin/env bash
# make demo: synthesise a user utterance with espeak-ng, run it through
# `rspp run`, print what was recognised and replied, and check the spoken
# reply by decoding the output WAV against the reply grammar.
set -euo pipefail
phrase=${1:-what time is it}
out=${2:-demo-out}
mkdir -p "$out"
espeak-ng -v en-us -s 140 -w "$out/user-22k.wav" "$phrase"
sox -D "$out/user-22k.wav" -r 16000 -c 1 -b 16 "$out/user.wav"
rm -f "$out/user-22k.wav"
echo "user said:  $phrase  ($out/user.wav)"
bin/rspp run --config examples/voice-agent.yaml --input "$out/user.wav" \
  --output "$out/agent.wav" --timeline "$out/timeline.jsonl"
heard=$(pocketsphinx_continuous -infile "$out/agent.wav" -jsgf examples/replies.jsgf \
  -hmm /usr/share/pocketsphinx/model/en-us/en-us -dict /usr/share/pocketsphinx/model/en-us/cmudict-en-us.dict \
  -beam 1e-80 -wbeam 1e-60 -pbeam 1e-80 -logfn /dev/null 2>/dev/null | tail -n 1)
echo "agent audio decodes as: ${heard:-<nothing>}"
[ -n "$heard" ] || { echo "demo: the agent's audio did not decode to a reply" >&2; exit 1; }
