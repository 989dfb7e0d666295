import { join } from "node:path"
import { pathToFileURL } from "node:url"
import { buildReleaseTarball, smallWheels } from "../test/support/tarballs.ts"
import { input, run, successOf } from "../test/steps/helpers.ts"
const dir = "/tmp/t1"; 
const tarball = await buildReleaseTarball(join(dir, "src", "app.tgz"), { wheels: smallWheels(31), prepare: "#!/bin/sh\necho hi\n" })
for (let i = 0; i < 3; i++) {
  const r = await run(input(join(dir, "root" + i), pathToFileURL(tarball.path).href, { root: i == 2 ? join(dir, "root1") : join(dir, "root" + i), sha: (i==2? "1": "0").repeat(40) }))
  console.log(successOf(r.exit).steps)
}
