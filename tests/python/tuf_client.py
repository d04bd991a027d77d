"""Download one target from a TUF repository with python-tuf's ngclient.

Usage: tuf_client.py ROOT_JSON BASE_URL TARGET_PATH OUT_FILE [--metadata-only]

BASE_URL serves BASE_URL/metadata/ and BASE_URL/targets/. ROOT_JSON is the
trusted root (version 1): the bootstrap root of a fresh metadata directory. Prints one
JSON line on stdout: the target's length, hashes and custom field as the
repository signed them, and where the file was written. This is stock
python-tuf: nothing is patched. With --metadata-only, the target is looked
up but not downloaded (OUT_FILE is not written).
"""

import json
import os
import sys
import tempfile

from tuf.ngclient import Updater


def main() -> int:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    metadata_only = "--metadata-only" in sys.argv[1:]
    if len(args) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    root_json, base_url, target_path, out_file = args
    base_url = base_url.rstrip("/")
    with tempfile.TemporaryDirectory() as tmp:
        metadata_dir = os.path.join(tmp, "metadata")
        target_dir = os.path.join(tmp, "targets")
        os.makedirs(metadata_dir)
        os.makedirs(target_dir)
        with open(root_json, "rb") as f:
            root_bytes = f.read()
        with open(os.path.join(metadata_dir, "root.json"), "wb") as f:
            f.write(root_bytes)
        updater = Updater(
            metadata_dir=metadata_dir,
            metadata_base_url=f"{base_url}/metadata/",
            target_dir=target_dir,
            target_base_url=f"{base_url}/targets/",
            bootstrap=root_bytes,
        )
        updater.refresh()
        info = updater.get_targetinfo(target_path)
        if info is None:
            print(f"target {target_path!r} not found", file=sys.stderr)
            return 1
        path = None
        if not metadata_only:
            path = updater.download_target(info, filepath=out_file)
        trusted = updater._trusted_set
        print(
            json.dumps(
                {
                    "path": path,
                    "length": info.length,
                    "hashes": info.hashes,
                    "custom": info.unrecognized_fields.get("custom"),
                    "versions": {
                        "root": trusted.root.version,
                        "timestamp": trusted.timestamp.version,
                        "snapshot": trusted.snapshot.version,
                        "targets": trusted.targets.version,
                    },
                }
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
