#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets from the protocol and NSS cache fixtures.

    python3 fuzz/make_seeds.py          (re)write fuzz/corpus/{frame,build,nsscache}
    python3 fuzz/make_seeds.py --check  fail if they differ from the fixtures, or
                                        hold anything else (make fuzz-smoke runs it)

corpus/frame: every Tests/fixtures/protocol/*.bin as is (fuzz_frame input:
whole frames, accepted and rejected).
corpus/build: for every fixture the codec accepts, the fuzz_build input that
asks for the same message: type, flags 0, then the fields exactly as they are
on the wire (the input format of fuzz_build uses the wire encoding of fields).
Plus a few with a tight buffer (flags 1), free-form fields (flags 2) and a
frame longer than the protocol allows (flags 2 and 4).
corpus/nsscache: every Tests/fixtures/nsscache/*.bin as is (fuzz_nsscache
input: whole cache files, valid and malformed).
"""
import struct
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
FIXTURES = HERE.parent / "Tests" / "fixtures" / "protocol"
CACHE_FIXTURES = HERE.parent / "Tests" / "fixtures" / "nsscache"


def seeds():
    frame, build = {}, {}
    for line in (FIXTURES / "fixtures.tsv").read_text(encoding="utf-8").splitlines():
        name, verdict = line.split("\t")[:2]
        name += ".bin"
        data = (FIXTURES / name).read_bytes()
        frame[name] = data
        if verdict == "ok":
            body = data[4:]
            build[name] = bytes([body[1], 0]) + body[2:]
    # A buffer just too small for an AUTHENTICATE of five 1-byte strings (21 bytes).
    fields = b"".join(struct.pack(">H", 1) + c for c in (b"u", b"s", b"t", b"r", b"x"))
    build["tight_cap_20.bin"] = bytes([0x01, 1]) + struct.pack(">H", 20) + fields
    build["tight_cap_21.bin"] = bytes([0x01, 1]) + struct.pack(">H", 21) + fields
    # RESULT built from a u32 and a str instead of u8 and str; and a u8 alone.
    build["freeform_result.bin"] = bytes([0x86, 2, 2, 2]) + b"\x00\x00\x00\x01" + bytes([0]) + struct.pack(">H", 2) + b"ok"
    build["freeform_u8.bin"] = bytes([0x86, 2, 1, 1, 0])
    # 17 strings of 4096 'a's (flags 4: no bytes of their own): a frame body of
    # 69 668 bytes, which fits the buffer but not the protocol (E_SPACE).
    build["freeform_over_max_frame.bin"] = bytes([0x20, 6, 17]) + bytes([0, 0x10, 0x00]) * 17
    nsscache = {path.name: path.read_bytes() for path in sorted(CACHE_FIXTURES.glob("*.bin"))}
    return {"frame": frame, "build": build, "nsscache": nsscache}


def main():
    check = sys.argv[1:] == ["--check"]
    bad = []
    for sub, files in seeds().items():
        d = HERE / "corpus" / sub
        d.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            path = d / name
            if check:
                if not path.is_file() or path.read_bytes() != data:
                    bad.append(str(path))
            else:
                path.write_bytes(data)
        # A fuzzer run given this folder first writes its finds here: not seeds.
        for path in sorted(d.iterdir()):
            if path.name not in files:
                if check:
                    bad.append(f"{path} (not a seed)")
                else:
                    path.unlink()
    if bad:
        sys.exit("fuzz seeds out of date (run python3 fuzz/make_seeds.py): " + ", ".join(bad))


if __name__ == "__main__":
    main()
