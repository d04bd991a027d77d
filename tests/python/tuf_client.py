"""Download one target from a TUF repository with python-tuf's ngclient.

Usage: tuf_client.py ROOT_JSON BASE_URL TARGET_PATH OUT_FILE [--stock] [--metadata-only]

BASE_URL serves BASE_URL/metadata/ and BASE_URL/targets/. ROOT_JSON is the
trusted root (version 1): the bootstrap root of a fresh metadata directory. Prints one
JSON line on stdout: the target's length and hashes as the repository signed
them, and where the file was written.

python-tuf verifies every hash a target lists, through hashlib, and hashlib
has no blake3. Unless --stock is given, the digest helper of
tuf.api._payload is taught "blake3" through the PyPI `blake3` package; every
other step (metadata verification, length, sha256) is stock python-tuf.
With --metadata-only, the target is looked up but not downloaded (OUT_FILE is
not written): that part needs no blake3 at all.
"""

import json
import os
import sys
import tempfile

from tuf.ngclient import Updater


def teach_blake3() -> None:
    import blake3
    from tuf.api import _payload

    stock = _payload._get_digest

    def get_digest(algo: str):
        if algo == "blake3":
            return blake3.blake3()
        return stock(algo)

    _payload._get_digest = get_digest


def main() -> int:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    stock = "--stock" in sys.argv[1:]
    metadata_only = "--metadata-only" in sys.argv[1:]
    if len(args) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    root_json, base_url, target_path, out_file = args
    if not stock:
        teach_blake3()
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
