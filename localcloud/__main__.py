"""python -m localcloud serve --state-dir DIR [--config FILE] | clean [--state-dir DIR]"""

import argparse
import json
import sys
from pathlib import Path


def main() -> int:
    p = argparse.ArgumentParser(prog="localcloud")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve", help="run the local cloud until SIGTERM/SIGINT")
    s.add_argument("--state-dir", type=Path, required=True)
    s.add_argument("--config", type=Path)
    c = sub.add_parser("clean", help="remove namespaces, links and mounts a cloud left behind")
    c.add_argument("--state-dir", type=Path)
    a = p.parse_args()
    if a.cmd == "serve":
        from .server import serve

        cfg = json.loads(a.config.read_text()) if a.config else {}
        serve(a.state_dir, cfg)
        return 0
    from .hosts import clean_leftovers

    for r in clean_leftovers(a.state_dir):
        print(f"removed {r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
