// Reads a Dockerfile into stages of instructions, and a .dockerignore into a filter, so that test/image.test.ts
// can assemble what the image would contain without a container engine. Only what this project's Dockerfile
// uses is understood; anything else is an error, so the test cannot silently drift from the file.
import { matchesGlob } from 'node:path';

export interface Instruction {
  /** upper-cased keyword: FROM, COPY, RUN, … */
  keyword: string;
  /** --name=value flags in front of the arguments */
  flags: Record<string, string>;
  /** the rest of the line, continuation lines joined, variables substituted */
  args: string;
  line: number;
}

export interface Stage {
  name: string;
  from: string;
  instructions: Instruction[];
}

export interface Dockerfile {
  /** ARGs declared before the first FROM, with their defaults */
  globalArgs: Record<string, string>;
  stages: Stage[];
}

/** $NAME and ${NAME} from `vars`; unknown names are an error (a build would substitute the empty string). */
function substitute(text: string, vars: Record<string, string>, line: number): string {
  return text.replace(/\$\{(\w+)\}|\$(\w+)/g, (_m, a: string | undefined, b: string | undefined) => {
    const name = (a ?? b)!;
    if (!(name in vars)) throw new Error(`Dockerfile line ${line}: $${name} is not declared`);
    return vars[name];
  });
}

export function parseDockerfile(text: string): Dockerfile {
  const logical: { text: string; line: number }[] = [];
  let current: { text: string; line: number } | undefined;
  text.split('\n').forEach((raw, i) => {
    const trimmed = raw.trim();
    if (!current && (trimmed === '' || trimmed.startsWith('#'))) return; // comments, parser directives
    if (current && trimmed.startsWith('#')) return; // a comment inside a continued instruction
    const continued = trimmed.endsWith('\\');
    const part = continued ? trimmed.slice(0, -1) : trimmed;
    if (current) current.text += ` ${part}`;
    else current = { text: part, line: i + 1 };
    if (!continued) {
      logical.push(current);
      current = undefined;
    }
  });
  if (current) logical.push(current);

  const globalArgs: Record<string, string> = {};
  const stages: Stage[] = [];
  let stageVars: Record<string, string> = {};
  for (const { text: l, line } of logical) {
    const m = /^(\w+)\s+(.*)$/s.exec(l);
    if (!m) throw new Error(`Dockerfile line ${line}: cannot read "${l}"`);
    const keyword = m[1].toUpperCase();
    let rest = m[2].trim();
    const flags: Record<string, string> = {};
    if (keyword !== 'RUN' && keyword !== 'CMD' && keyword !== 'HEALTHCHECK') {
      for (let f = /^--([\w-]+)=(\S+)\s+/.exec(rest); f; f = /^--([\w-]+)=(\S+)\s+/.exec(rest)) {
        flags[f[1]] = f[2];
        rest = rest.slice(f[0].length);
      }
    }
    if (keyword === 'ARG') {
      const [name, value = ''] = rest.split('=', 2) as [string, string?];
      if (!stages.length) globalArgs[name] = value;
      else stageVars[name] = rest.includes('=') ? value : (globalArgs[name] ?? '');
      if (stages.length) stages.at(-1)!.instructions.push({ keyword, flags, args: rest, line });
      continue;
    }
    if (keyword === 'FROM') {
      const fm = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(substitute(rest, globalArgs, line));
      if (!fm) throw new Error(`Dockerfile line ${line}: cannot read FROM ${rest}`);
      stages.push({ from: fm[1], name: fm[2] ?? String(stages.length), instructions: [] });
      stageVars = {};
      continue;
    }
    if (!stages.length) throw new Error(`Dockerfile line ${line}: ${keyword} before FROM`);
    // RUN and CMD keep their text for the shell; the others see build arguments substituted
    const args = keyword === 'RUN' || keyword === 'CMD' || keyword === 'HEALTHCHECK' ? rest : substitute(rest, stageVars, line);
    if (keyword === 'ENV') {
      for (const [k, v] of Object.entries(parseAssignments(args, line))) stageVars[k] = v;
    }
    stages.at(-1)!.instructions.push({ keyword, flags, args, line });
  }
  return { globalArgs, stages };
}

/** `A=1 B="two words"` (ENV, LABEL) as an object. */
export function parseAssignments(text: string, line: number): Record<string, string> {
  const out: Record<string, string> = {};
  const re = /\s*([\w.-]+)=("(?:[^"\\]|\\.)*"|\S*)/gy;
  let m: RegExpExecArray | null;
  let end = 0;
  while ((m = re.exec(text))) {
    out[m[1]] = m[2].startsWith('"') ? (JSON.parse(m[2]) as string) : m[2];
    end = re.lastIndex;
  }
  if (text.slice(end).trim()) throw new Error(`Dockerfile line ${line}: cannot read "${text.slice(end).trim()}" (use NAME=value)`);
  return out;
}

/** The exec form ["a", "b"] of CMD or COPY as a list; a shell form is an error here. */
export function execForm(args: string, line: number): string[] {
  try {
    const v = JSON.parse(args) as unknown;
    if (Array.isArray(v) && v.every((s) => typeof s === 'string')) return v as string[];
  } catch {
    // fall through
  }
  throw new Error(`Dockerfile line ${line}: expected the exec form ["…", …], got ${args}`);
}

/**
 * A filter with .dockerignore's meaning: patterns relative to the context root, `**` for any depth, a match on a
 * directory excludes what is inside it, `!` takes a path back in, and the last matching line decides.
 */
export function dockerignore(text: string): (relativePath: string) => boolean {
  const rules = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => ({ include: l.startsWith('!'), pattern: l.replace(/^!/, '').replace(/^\/+/, '').replace(/\/+$/, '') }));
  return (relativePath) => {
    const segments = relativePath.split('/');
    let included = true;
    for (const { include, pattern } of rules) {
      // the path itself or any directory above it
      const hit = segments.some((_, i) => matchesGlob(segments.slice(0, i + 1).join('/'), pattern));
      if (hit) included = include;
    }
    return included;
  };
}
