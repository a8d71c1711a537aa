#!/usr/bin/env bash
# The static gates, with the virtualenv's pinned tools (scripts/test.sh and pre-commit run
# them; any user can). With no argument, all of them; or name some: ruff, imports, types.
#
#   ruff     lint, import order, complexity (C901) and line length, as pyproject.toml sets
#   imports  import contracts (import-linter): the engine imports neither Django nor the
#            console; the console reaches the engine only through console.drivers
#   types    mypy on the engine package (the lenient settings in pyproject.toml)
source "$(dirname "$0")/lib.sh"
cd "$BERTH_HOME"
checks=("$@")
[ ${#checks[@]} -gt 0 ] || checks=(ruff imports types)
for check in "${checks[@]}"; do
  case "$check" in
    ruff) "$VENV/bin/ruff" check . ;;
    imports) "$VENV/bin/lint-imports" --no-cache ;;
    types) "$VENV/bin/mypy" ;;
    *) say "unknown check $check (ruff, imports, types)"; exit 2 ;;
  esac
done
