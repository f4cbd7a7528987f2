"""`make bench-profiles`: which release-profile settings win on size, init time and build time.

Builds the lifecycle-hook function (the three functions share all their code) once per
variant, in its own target directory so the main cache is untouched, zips the binary as
cargo-lambda does (deflate), and measures init with the same probe as `make bench`.
Writes bench/profiles.json and prints a table; BENCH.md renders it. A benchmark, not a test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from run import init_ms, med  # noqa: E402

# (name, opt-level, lto, codegen-units); strip and panic settings as in Cargo.toml.
VARIANTS = [
    ("s-fat-cgu1 (shipped)", "s", "fat", "1"),
    ("z-fat-cgu1", "z", "fat", "1"),
    ("3-fat-cgu1", "3", "fat", "1"),
    ("s-thin-cgu16", "s", "thin", "16"),
]


# Build from this tree (PROFILE_SRC, e.g. a `git worktree` of a commit) so that edits made
# while the variants build cannot mix into them.
SRC = Path(os.environ.get("PROFILE_SRC", ROOT))


def build(name: str, opt: str, lto: str, cgu: str, target: Path) -> dict:
    env = dict(os.environ, CARGO_TARGET_DIR=str(target), CARGO_PROFILE_RELEASE_OPT_LEVEL=opt,
               CARGO_PROFILE_RELEASE_LTO=lto, CARGO_PROFILE_RELEASE_CODEGEN_UNITS=cgu,
               CARGO_PROFILE_RELEASE_STRIP="true")
    t0 = time.time()
    subprocess.run(["cargo", "build", "--release", "--locked", "-q", "-p", "lifecycle-hook"], cwd=SRC, env=env, check=True)
    build_s = round(time.time() - t0, 1)
    binary = target / "release" / "lifecycle-hook"
    zpath = target / f"{name.split()[0]}.zip"
    with zipfile.ZipFile(zpath, "w", zipfile.ZIP_DEFLATED) as z:
        z.write(binary, "bootstrap")
    return {"variant": name, "opt_level": opt, "lto": lto, "codegen_units": cgu, "build_s": build_s,
            "binary_bytes": binary.stat().st_size, "zip_bytes": zpath.stat().st_size,
            "init_ms_median": med(init_ms(binary))}


def main() -> int:
    base = Path(os.environ.get("PROFILE_TARGET_BASE", "/var/cache/swarm-lifecycle/profiles"))
    out_path = ROOT / "bench" / "profiles.json"
    if sys.argv[1:] == ["--init-only"]:
        # Init again, on a quiet machine, for binaries already built: 100 runs each.
        out = json.loads(out_path.read_text())
        for row in out["variants"]:
            binary = base / row["variant"].split()[0] / "release" / "lifecycle-hook"
            row["init_ms_median"] = med(init_ms(binary, runs=100))
            print(json.dumps(row), flush=True)
        out_path.write_text(json.dumps(out, indent=2) + "\n")
        return 0
    rows = []
    for name, opt, lto, cgu in VARIANTS:
        # Each variant compiles every dependency at its own opt-level: build times are cold builds.
        rows.append(build(name, opt, lto, cgu, base / name.split()[0]))
        print(json.dumps(rows[-1]), flush=True)
    out = {"date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "function": "lifecycle-hook", "variants": rows}
    out_path.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
