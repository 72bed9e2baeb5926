// Compile every Solidity source in this folder with the pinned solc-js and write
// build/<ContractName>.json ({contractName, sourceName, abi, bytecode, compiler}), which is committed
// so that neither users nor CI need a compiler. `make contracts` runs it after `npm ci`.
//
//   node build.mjs [--out DIR]    (default: build/ beside this file)
//
// The output depends only on the sources and the settings below: sources are named by file name
// (not by path), so the metadata hash inside the bytecode is the same on every machine and the
// files are byte-for-byte identical from one run to the next.
import { readdirSync, readFileSync, writeFileSync, mkdirSync, unlinkSync } from 'node:fs'
import { join, dirname, basename } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const solc = require('solc')

const here = dirname(fileURLToPath(import.meta.url))
const EVM_VERSION = 'cancun'
const OPTIMIZER = { enabled: true, runs: 200 }

function parseArguments (argv) {
  let out = join(here, 'build')
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--out' && i + 1 < argv.length) out = argv[++i]
    else throw new Error(`unknown argument ${argv[i]}; usage: node build.mjs [--out DIR]`)
  }
  return { out }
}

function findImports (path) {
  // Only sources in this folder may be imported: nothing is fetched or read from elsewhere.
  if (path !== basename(path)) return { error: `import ${path}: only files in this folder can be imported` }
  try {
    return { contents: readFileSync(join(here, path), 'utf8') }
  } catch {
    return { error: `import ${path}: not found in ${here}` }
  }
}

function compile () {
  const files = readdirSync(here).filter((name) => name.endsWith('.sol')).sort()
  if (files.length === 0) throw new Error(`no .sol files in ${here}`)
  const input = {
    language: 'Solidity',
    sources: Object.fromEntries(files.map((name) => [name, { content: readFileSync(join(here, name), 'utf8') }])),
    settings: {
      optimizer: OPTIMIZER,
      evmVersion: EVM_VERSION,
      outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object'] } }
    }
  }
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }))
  const problems = output.errors ?? []
  for (const problem of problems) console.error(problem.formattedMessage ?? problem.message)
  if (problems.some((problem) => problem.severity === 'error')) process.exit(1)
  return output.contracts
}

function main () {
  const { out } = parseArguments(process.argv.slice(2))
  const compiler = { name: 'solc', version: solc.version(), evmVersion: EVM_VERSION, optimizer: OPTIMIZER }
  const written = new Map()
  for (const [sourceName, contracts] of Object.entries(compile()).sort(([a], [b]) => a.localeCompare(b))) {
    for (const [contractName, artefact] of Object.entries(contracts).sort(([a], [b]) => a.localeCompare(b))) {
      if (written.has(contractName)) {
        throw new Error(`${contractName} is defined in both ${written.get(contractName)} and ${sourceName}`)
      }
      written.set(contractName, sourceName)
      const document = {
        contractName,
        sourceName,
        abi: artefact.abi,
        bytecode: '0x' + artefact.evm.bytecode.object,
        compiler
      }
      mkdirSync(out, { recursive: true })
      writeFileSync(join(out, `${contractName}.json`), JSON.stringify(document, null, 2) + '\n')
    }
  }
  // A contract that was removed or renamed must not linger in build/.
  for (const name of readdirSync(out)) {
    if (name.endsWith('.json') && !written.has(name.slice(0, -'.json'.length))) unlinkSync(join(out, name))
  }
  for (const [contractName, sourceName] of written) console.log(`${sourceName} -> ${join(out, contractName + '.json')}`)
}

main()
