/**
 * AppConfig `nodes` globs over node names: `*` any run of characters, `?` one
 * character, `[abc]`/`[a-z]` a class. Node names cannot contain `/`, so there is no
 * path semantics to honour.
 */
const toRegExp = (glob: string): RegExp => {
  let out = ""
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!
    if (c === "*") out += ".*"
    else if (c === "?") out += "."
    else if (c === "[") {
      const end = glob.indexOf("]", i + 1)
      if (end === -1) out += "\\["
      else {
        const body = glob.slice(i + 1, end).replace(/^!/, "^").replace(/\\/g, "\\\\")
        out += `[${body}]`
        i = end
      }
    } else out += c.replace(/[.+^${}()|\\]/g, "\\$&")
  }
  return new RegExp(`^${out}$`)
}

const cache = new Map<string, RegExp>()

export const matchesGlob = (name: string, glob: string): boolean => {
  let re = cache.get(glob)
  if (re === undefined) {
    re = toRegExp(glob)
    cache.set(glob, re)
  }
  return re.test(name)
}

export const matchesAny = (name: string, globs: ReadonlyArray<string>): boolean =>
  globs.some((g) => matchesGlob(name, g))
