#!/usr/bin/env bash
# Fails when the drizzle models and the committed migrations disagree: generates migrations from the
# models into a scratch copy of drizzle/ and checks that drizzle-kit finds nothing to add. Also runs
# drizzle-kit's own consistency check of the migration history.
set -euo pipefail
cd "$(dirname "$0")/.."
# drizzle-kit resolves `out` relative to the project, so the scratch copy lives inside it (git-ignored).
scratch=$(mktemp -d .db-check.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
cp -r drizzle "$scratch/drizzle"
npx drizzle-kit check >/dev/null
DRIZZLE_OUT="$scratch/drizzle" npx drizzle-kit generate --name pending >"$scratch/log" 2>&1 || true
if grep -q 'No schema changes' "$scratch/log"; then
  echo "db:check: migrations match the models"
  exit 0
fi
if compgen -G "$scratch/drizzle/*_pending.sql" >/dev/null; then
  echo "db:check: the models changed without a migration. Run 'npm run db:generate' and commit the result. Missing:" >&2
  sed 's/^/  /' "$scratch"/drizzle/*_pending.sql >&2
else
  echo "db:check: drizzle-kit generate failed:" >&2
  cat "$scratch/log" >&2
fi
exit 1
