# The two commands of the README. Both install what they need first: `npm ci` brings
# every dependency, Node 24 included (the npm registry's `node` package), so a machine
# with only Node 20, npm and python3 is enough.
NODE := node_modules/.bin/node

.PHONY: demo test bench check typecheck lint format dist
demo: node_modules/.installed
	$(NODE) bin/sacar.ts demo $(ARGS)

test: node_modules/.installed
	$(NODE) test/run.ts

bench: node_modules/.installed
	$(NODE) bench/run.ts

# The guardrails CI runs before the tests: types, lint (oxlint with type information for
# floating promises; knip for unused exports, files and dependencies; tools/names.ts for
# a name exported from two modules or an error tag used twice) and formatting
# (dprint's plugins, through tools/format.ts).
check: typecheck lint
	$(NODE) tools/format.ts --check

typecheck: node_modules/.installed
	node_modules/.bin/tsc -p .

lint: node_modules/.installed
	node_modules/.bin/oxlint --type-aware --deny-warnings
	node_modules/.bin/knip --no-progress
	$(NODE) tools/names.ts

format: node_modules/.installed
	$(NODE) tools/format.ts

# The self-contained tarball for linux-x64 (Sacar, its production packages, Node 24),
# byte for byte reproducible: dist/sacar-<version>-linux-x64.tar.gz and its .sha256.
dist: node_modules/.installed
	$(NODE) src/bundle/build.ts --out dist

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@
