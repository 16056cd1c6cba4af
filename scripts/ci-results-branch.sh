#!/usr/bin/env bash
# Keep asv results across CI runs on a dedicated git branch, so each run measures only the
# commits that have no results yet and the published history keeps growing.
#
#   scripts/ci-results-branch.sh restore [DIR]   copy the branch's files into DIR
#   scripts/ci-results-branch.sh store [DIR]     add DIR's files to the branch and push
#
# DIR defaults to .asv/results (asv.conf.json's results_dir); the branch's root is that folder.
# restore on a branch that does not exist yet leaves DIR as it is (the first run starts empty).
# store commits on top of the branch tip the union of the tip's files and DIR's files (results
# are never deleted), creates the branch the first time, and pushes without force: a concurrent
# writer makes the push fail instead of losing results (the workflow also serialises runs).
#
#   ASV_RESULTS_BRANCH   branch name (default asv-results)
#   ASV_RESULTS_REMOTE   git remote name or URL/path (default origin); a local bare repository
#                        works, which is how this script is tested
#   GH_TOKEN             if set, sent as HTTP basic auth to github.com (Actions' GITHUB_TOKEN), so
#                        the checkout never has to persist credentials
#   ASV_RESULTS_MESSAGE  commit message for store (default names the current commit)
#
# Everything happens in a scratch bare repository: the project's own .git, index and working tree
# are never touched.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

usage() { sed -n '5,6p' "$0" | sed 's/^# *//' >&2; exit 2; }
[ $# -ge 1 ] || usage
action=$1
dir=${2:-.asv/results}
branch=${ASV_RESULTS_BRANCH:-asv-results}
remote=${ASV_RESULTS_REMOTE:-origin}
case "$dir" in /*) ;; *) dir="$root/$dir" ;; esac

# A named remote of the project resolves to its URL; anything else is used as a URL or path.
url=$(git -C "$root" remote get-url "$remote" 2>/dev/null || printf '%s' "$remote")

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
git init --quiet --bare "$scratch/repo.git"
g() { git --git-dir="$scratch/repo.git" "${auth[@]}" "$@"; }
auth=()
if [ -n "${GH_TOKEN:-}" ]; then
  basic=$(printf 'x-access-token:%s' "$GH_TOKEN" | base64 | tr -d '\n')
  if [ -n "${GITHUB_ACTIONS:-}" ]; then echo "::add-mask::$basic"; fi
  auth=(-c "http.https://github.com/.extraheader=AUTHORIZATION: basic $basic")
fi

# The branch tip, fetched into the scratch repository; empty if the branch does not exist.
tip=""
set +e
g ls-remote --exit-code --heads "$url" "refs/heads/$branch" >/dev/null
status=$?
set -e
if [ "$status" = 0 ]; then
  g fetch --quiet --depth=1 "$url" "+refs/heads/$branch:refs/heads/$branch"
  tip=$(g rev-parse "refs/heads/$branch")
elif [ "$status" != 2 ]; then
  echo "ci-results-branch.sh: cannot read $url (git ls-remote exit $status)" >&2
  exit "$status"
fi

case "$action" in
  restore)
    mkdir -p "$dir"
    if [ -z "$tip" ]; then
      echo "no branch $branch at $url yet: starting from an empty $dir"
      exit 0
    fi
    g archive "$tip" | tar -x -C "$dir"
    echo "restored $(g ls-tree -r --name-only "$tip" | wc -l) files from $branch@${tip:0:12} into $dir"
    ;;
  store)
    if [ ! -d "$dir" ] || [ -z "$(ls -A "$dir")" ]; then
      echo "ci-results-branch.sh: $dir is missing or empty: nothing to store" >&2
      exit 1
    fi
    export GIT_INDEX_FILE="$scratch/index"
    if [ -n "$tip" ]; then g read-tree "$tip"; fi
    # Add (never remove) every file of DIR on top of the tip's tree.
    g --work-tree="$dir" add --force --ignore-removal -- .
    tree=$(g write-tree)
    if [ -n "$tip" ] && [ "$tree" = "$(g rev-parse "$tip^{tree}")" ]; then
      echo "$branch already holds every file of $dir: nothing to push"
      exit 0
    fi
    head=$(git -C "$root" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
    message=${ASV_RESULTS_MESSAGE:-"asv results after $head"}
    # Commit identity: git's own config if set, else the Actions bot's.
    name=$(git -C "$root" config user.name || echo "github-actions[bot]")
    email=$(git -C "$root" config user.email || echo "41898282+github-actions[bot]@users.noreply.github.com")
    export GIT_AUTHOR_NAME=${GIT_AUTHOR_NAME:-$name} GIT_COMMITTER_NAME=${GIT_COMMITTER_NAME:-$name}
    export GIT_AUTHOR_EMAIL=${GIT_AUTHOR_EMAIL:-$email} GIT_COMMITTER_EMAIL=${GIT_COMMITTER_EMAIL:-$email}
    commit=$(g commit-tree "$tree" ${tip:+-p "$tip"} -m "$message")
    g push --quiet "$url" "$commit:refs/heads/$branch"
    echo "stored $(g ls-tree -r --name-only "$commit" | wc -l) files on $branch@${commit:0:12}"
    ;;
  *) usage ;;
esac
