"""python -m localcloud serve --state-dir DIR [--config FILE] | clean [--state-dir DIR] [--all-worlds]"""

import argparse
import json
import os
import sys
from pathlib import Path

# Three images of moto's own list, not its 1,177: a scenario needs one to launch and another to
# roll to, and loading (then serializing on every DescribeImages) the whole list was a sixth of
# a local cloud's CPU. Set before moto's EC2 is imported.
os.environ.setdefault("MOTO_AMIS_PATH", str(Path(__file__).with_name("amis.json")))


def main() -> int:
    p = argparse.ArgumentParser(prog="localcloud")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve", help="run the local cloud until SIGTERM/SIGINT")
    s.add_argument("--state-dir", type=Path, required=True)
    s.add_argument("--config", type=Path)
    c = sub.add_parser("clean", help="remove namespaces, links and mounts a cloud left behind")
    c.add_argument("--state-dir", type=Path)
    c.add_argument("--all-worlds", action="store_true", help="and every world's (localcloud/world.py)")
    a = p.parse_args()
    if a.cmd == "serve":
        from .server import serve

        cfg = json.loads(a.config.read_text()) if a.config else {}
        serve(a.state_dir, cfg)
        return 0
    from .hosts import clean_leftovers

    for r in clean_leftovers(a.state_dir):
        print(f"removed {r}")
    if a.all_worlds:
        import subprocess

        from . import world

        for ns in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split():
            if ns.startswith("lcw"):
                w = ns.removeprefix("lcw")
                subprocess.run(["ip", "netns", "exec", ns, "env", f"{world.ENV}={w}", sys.executable, "-m", "localcloud",
                                "clean"], check=False)
                world.remove(w)
                print(f"removed world {ns}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
