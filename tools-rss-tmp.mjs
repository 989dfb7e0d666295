const mods = process.argv.slice(2)
const mb = () => (process.memoryUsage().rss / 2**20).toFixed(1)
console.log("bare", mb())
for (const m of mods) { await import(m); globalThis.gc?.(); console.log(m, mb()) }
