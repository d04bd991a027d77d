"""Refresh a persistent python-tuf client from a repository, and look up targets.

Usage: tuf_refresh.py METADATA_DIR ROOT_JSON BASE_URL TARGET_PATH...

METADATA_DIR keeps the client's trusted metadata between runs (a client
that refreshes again later, as a long-lived installation does); on the first
run it is bootstrapped with ROOT_JSON. BASE_URL serves BASE_URL/metadata/.
Prints one JSON line: the trusted versions after the refresh and, for each
TARGET_PATH, its custom field (or null when the repository does not list
it). Stock python-tuf: nothing is patched; a rollback or any other refusal
fails the refresh and the script.
"""

import json
import os
import sys
import tempfile

from tuf.ngclient import Updater


def main() -> int:
    if len(sys.argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    metadata_dir, root_json, base_url = sys.argv[1:4]
    targets = sys.argv[4:]
    base_url = base_url.rstrip("/")
    os.makedirs(metadata_dir, exist_ok=True)
    with open(root_json, "rb") as f:
        root_bytes = f.read()
    if not os.path.exists(os.path.join(metadata_dir, "root.json")):
        with open(os.path.join(metadata_dir, "root.json"), "wb") as f:
            f.write(root_bytes)
    with tempfile.TemporaryDirectory() as target_dir:
        updater = Updater(
            metadata_dir=metadata_dir,
            metadata_base_url=f"{base_url}/metadata/",
            target_dir=target_dir,
            target_base_url=f"{base_url}/targets/",
            # Trust what the metadata directory holds (root.json there).
            bootstrap=None,
        )
        updater.refresh()
        found = {}
        for path in targets:
            info = updater.get_targetinfo(path)
            found[path] = None if info is None else info.unrecognized_fields.get("custom")
        trusted = updater._trusted_set
        print(
            json.dumps(
                {
                    "versions": {
                        "root": trusted.root.version,
                        "timestamp": trusted.timestamp.version,
                        "snapshot": trusted.snapshot.version,
                        "targets": trusted.targets.version,
                    },
                    "targets": found,
                }
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
