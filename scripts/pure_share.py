"""The share of pure logic in the non-test Swift sources: lines (not blank, not comment) in
files that do no I/O themselves, out of all. Generated protobuf code is left out.

A file does I/O when it imports a module that does (swift-nio, libnghttp2, swift-service-
lifecycle, or one of ours that drives them: AeroCacheTransport, AeroCacheNode,
AeroCacheClient, AeroCacheTestKit), or calls Foundation's or libc's process, file or socket
APIs. Package.swift turns on MemberImportVisibility, so a file that uses such a module must
import it: the imports tell the truth.

    python3 scripts/pure_share.py [--files]
"""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Sources")
IO_MODULES = re.compile(
    r"^(?:@\S+\s+)*import\s+(NIO\w*|CNghttp2|ServiceLifecycle|AeroCacheTransport|AeroCacheNode|AeroCacheClient|AeroCacheTestKit)\b",
    re.M)
IO_CALLS = re.compile(
    r"\b(Process|FileHandle|FileManager|URLSession|Pipe)\s*[(.]"
    r"|(?<![.\w])(socket|fopen|fread|fwrite|accept|getaddrinfo|sendmsg|recvmsg)\(")


def code_lines(text):
    return sum(1 for line in text.splitlines() if line.strip() and not line.strip().startswith("//"))


def main():
    total = pure = 0
    rows = []
    for directory, _, files in sorted(os.walk(ROOT)):
        for name in sorted(files):
            if not name.endswith(".swift") or name.endswith(".pb.swift"):
                continue
            path = os.path.join(directory, name)
            text = open(path, encoding="utf-8").read()
            lines = code_lines(text)
            io = IO_MODULES.search(text) or IO_CALLS.search(text)
            total += lines
            if not io:
                pure += lines
            rows.append((os.path.relpath(path, os.path.join(ROOT, "..")), lines, "io" if io else "pure"))
    if "--files" in sys.argv:
        for path, lines, kind in rows:
            print(f"{kind:4}  {lines:5}  {path}")
    print(f"pure logic: {pure} of {total} lines ({100 * pure / total:.1f}%)")


if __name__ == "__main__":
    main()
