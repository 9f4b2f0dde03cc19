#!/usr/bin/env bash
# Fuzzes the DNS decoder and the capture reader with libFuzzer (results go to the issue notes and README by hand).
#
#   fuzz/run.sh [SECONDS]    each target runs SECONDS (default 600); crashes are written to fuzz/out/
#
# The seed inputs are made fresh from Quarry's own capture generator: small pcap and pcapng files, and the DNS
# messages inside them.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
out=fuzz/out
mkdir -p "$out/seeds/dns" "$out/seeds/capture" "$out/corpus/dns" "$out/corpus/capture"

swift build --product quarry
for format in pcap pcapng; do
    .build/debug/quarry sample capture --out "$out/seeds/capture/sample.$format" --format "$format" --hosts 2 \
        --minutes 1 --rate 10 2> /dev/null
done
python3 - "$out/seeds/capture/sample.pcap" "$out/seeds/dns" <<'PY'
import struct, sys
data = open(sys.argv[1], "rb").read()
offset, count = 24, 0
while offset + 16 <= len(data) and count < 200:
    caplen = struct.unpack("<I", data[offset + 8:offset + 12])[0]
    frame = data[offset + 16:offset + 16 + caplen]
    offset += 16 + caplen
    if len(frame) > 42 and frame[12:14] == b"\x08\x00" and frame[23] == 17:
        header = (frame[14] & 15) * 4
        payload = frame[14 + header + 8:]
        open(f"{sys.argv[2]}/message-{count}", "wb").write(payload)
        count += 1
PY

flags=(-Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING --build-path .build-fuzz)
for target in FuzzDNS FuzzCapture; do
    swift build --product "$target" "${flags[@]}"
done
.build-fuzz/debug/FuzzDNS -max_total_time="$seconds" -artifact_prefix="$out/" "$out/corpus/dns" "$out/seeds/dns" \
    2>&1 | tail -5
.build-fuzz/debug/FuzzCapture -max_total_time="$seconds" -max_len=65536 -artifact_prefix="$out/" \
    "$out/corpus/capture" "$out/seeds/capture" 2>&1 | tail -5
