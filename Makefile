# The two commands of the README. Both install what they need first: `npm ci` brings
# every dependency, Node 24 included (the npm registry's `node` package), so a machine
# with only Node 20, npm and python3 is enough.
NODE := node_modules/.bin/node

.PHONY: demo test bench typecheck
demo: node_modules/.installed
	$(NODE) bin/sacar.ts demo $(ARGS)

test: node_modules/.installed
	$(NODE) test/run.ts

bench: node_modules/.installed
	$(NODE) bench/run.ts

typecheck: node_modules/.installed
	node_modules/.bin/tsc -p .

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@
