/**
 * A start command read the way `sh -c` would read it (npm, pnpm and Yarn run package scripts
 * with `sh -c`), for the part of the shell's language a start command needs: words, quotes,
 * backslashes, `NAME=value` before the command, and `$NAME`, `${NAME}`, `${NAME:-default}`.
 * Whatever else the shell would do (pipes, `&&`, redirections, globs, command substitution…) is
 * refused by name: nexus runs the command without a shell, so that PM2's signals reach the app.
 * Pure: no I/O.
 */

/** A piece of a word: literal text, or a variable the shell would expand. */
export type WordPart =
  | { text: string }
  | {
      variable: string;
      /** `${NAME:-x}` (`empty`: also when set but empty) or `${NAME-x}`: the text used instead. */
      fallback?: { text: string; empty: boolean };
      /** Outside double quotes: its value is split into several words at blanks, as sh does. */
      split: boolean;
    };

export type Word = WordPart[];

export interface Assignment {
  name: string;
  value: Word;
}

export interface CommandLine {
  /** `NAME=value` words before the command: the command's own environment. */
  assignments: Assignment[];
  words: Word[];
}

/** A command nexus cannot run without a shell: the message ("uses a pipe …") says what the shell would do. */
export class CommandLineError extends Error {}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*/;
const BLANK = /[ \t]/;

/** What each character the shell treats specially (outside quotes) would do. */
const SHELL_FEATURES: Record<string, string> = {
  "|": "a pipe or `||`",
  "&": "`&&` or a background job",
  ";": "a second command (`;`)",
  "\n": "a second line (a second command)",
  "<": "a redirection",
  ">": "a redirection",
  "(": "a subshell",
  ")": "a subshell",
  "`": "a command substitution",
  "*": "a glob pattern (`*`)",
  "?": "a glob pattern (`?`)",
  "[": "a glob pattern (`[`)",
};

/** What the shell does with these at the start of a word. */
const WORD_START_FEATURES: Record<string, string> = {
  "~": "a home directory (`~`)",
  "#": "a comment (`#`)",
  "!": "a negation (`!`)",
};

export function parseCommandLine(text: string): CommandLine {
  const words = splitWords(text.trim());
  if (words.length === 0) throw new CommandLineError("is empty");
  const assignments: Assignment[] = [];
  while (words[0]?.assignment !== undefined) {
    const { assignment: name, parts } = words.shift() as Token;
    const [first, ...rest] = parts as [{ text: string }, ...WordPart[]];
    const value = first.text.slice(`${name}=`.length);
    assignments.push({
      name: name as string,
      // No field splitting in an assignment's value.
      value: [...(value ? [{ text: value }] : []), ...rest].map((p) =>
        "text" in p ? p : { ...p, split: false },
      ),
    });
  }
  return { assignments, words: words.map((w) => w.parts) };
}

/** The text of a word with no variable in it, or undefined. */
export function literal(word: Word): string | undefined {
  let out = "";
  for (const part of word) {
    if (!("text" in part)) return undefined;
    out += part.text;
  }
  return out;
}

/**
 * The words a word becomes once its variables are expanded from `env`, as sh does: an unquoted
 * variable's value is split at blanks, and a word made only of unquoted variables that are empty
 * is no word at all. Undefined variables expand to "" (or their fallback).
 */
export function expandWord(word: Word, env: Readonly<Record<string, string>>): string[] {
  const fields: string[] = [];
  let current = "";
  let started = false;
  for (const part of word) {
    if ("text" in part) {
      current += part.text;
      started = true;
      continue;
    }
    const set = Object.hasOwn(env, part.variable) ? env[part.variable] : undefined;
    let value = set ?? "";
    if (part.fallback && (set === undefined || (part.fallback.empty && set === "")))
      value = part.fallback.text;
    if (!part.split) {
      current += value;
      started = true;
      continue;
    }
    const pieces = value.split(/[ \t\n]+/);
    pieces.forEach((piece, i) => {
      if (i > 0 && (started || current !== "")) {
        fields.push(current);
        current = "";
        started = false;
      }
      if (piece !== "") {
        current += piece;
        started = true;
      }
    });
  }
  if (started || current !== "") fields.push(current);
  return fields;
}

/** The variables a word reads. */
export function variablesOf(word: Word): string[] {
  return word.flatMap((p) => ("variable" in p ? [p.variable] : []));
}

/** Shows a word as it was written, near enough for messages: `$PORT`, `'a b'`. */
export function showWord(word: Word): string {
  const text = word
    .map((p) =>
      "text" in p
        ? p.text
        : p.fallback
          ? `\${${p.variable}${p.fallback.empty ? ":-" : "-"}${p.fallback.text}}`
          : `$${p.variable}`,
    )
    .join("");
  return /^[A-Za-z0-9_@%+=:,./${}-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}

/** A word as the tokenizer reads it: `assignment` when it starts with an unquoted `NAME=`. */
interface Token {
  parts: WordPart[];
  assignment?: string;
}

function splitWords(text: string): Token[] {
  const words: Token[] = [];
  let word: Token | undefined;
  const push = (part: WordPart): Token => {
    word ??= { parts: [] };
    const last = word.parts.at(-1);
    if (last && "text" in last && "text" in part)
      word.parts[word.parts.length - 1] = { text: last.text + part.text };
    else word.parts.push(part);
    return word;
  };
  const end = () => {
    if (word) words.push(word);
    word = undefined;
  };
  let i = 0;
  while (i < text.length) {
    const c = text[i] as string;
    if (BLANK.test(c)) {
      end();
      i++;
      continue;
    }
    if (word === undefined && WORD_START_FEATURES[c]) refuse(WORD_START_FEATURES[c], c);
    const feature = SHELL_FEATURES[c];
    if (feature) refuse(feature, c);
    if (c === "\\") {
      if (i + 1 >= text.length) throw new CommandLineError("ends with a lone backslash");
      const next = text[i + 1] as string;
      // A backslash-newline joins two lines: it is nothing.
      if (next !== "\n") push({ text: next });
      i += 2;
      continue;
    }
    if (c === "'") {
      const close = text.indexOf("'", i + 1);
      if (close < 0) throw new CommandLineError("leaves a single quote open");
      push({ text: text.slice(i + 1, close) });
      i = close + 1;
      continue;
    }
    if (c === '"') {
      i = doubleQuoted(text, i + 1, push);
      continue;
    }
    if (c === "$") {
      i = dollar(text, i, true, push);
      continue;
    }
    let j = i;
    while (j < text.length && !/[ \t\\'"$|&;\n<>()`*?[]/.test(text[j] as string)) j++;
    const run = text.slice(i, j);
    // Only an unquoted `NAME=` at the very start of a word makes an assignment (`"A=1" node`
    // runs a command named `A=1`).
    const assignment = word === undefined ? /^([A-Za-z_][A-Za-z0-9_]*)=/.exec(run)?.[1] : undefined;
    const token = push({ text: run });
    if (assignment !== undefined) token.assignment = assignment;
    i = j;
  }
  end();
  return words;
}

/** Reads a double-quoted string from `i` (after the quote); returns the index after the closing quote. */
function doubleQuoted(text: string, start: number, push: (part: WordPart) => void): number {
  let i = start;
  let buffer = "";
  const flush = () => {
    push({ text: buffer });
    buffer = "";
  };
  while (i < text.length) {
    const c = text[i] as string;
    if (c === '"') {
      flush();
      return i + 1;
    }
    if (c === "\\" && i + 1 < text.length && '$`"\\\n'.includes(text[i + 1] as string)) {
      if (text[i + 1] !== "\n") buffer += text[i + 1];
      i += 2;
      continue;
    }
    if (c === "`") refuse(SHELL_FEATURES["`"] as string, c);
    if (c === "$") {
      flush();
      i = dollar(text, i, false, push);
      continue;
    }
    buffer += c;
    i++;
  }
  throw new CommandLineError("leaves a double quote open");
}

/** Reads `$NAME`, `${NAME}`, `${NAME:-x}` or `${NAME-x}` at `i`; refuses every other `$` form. */
function dollar(text: string, i: number, split: boolean, push: (part: WordPart) => void): number {
  const rest = text.slice(i + 1);
  if (rest.startsWith("("))
    refuse(rest.startsWith("((") ? "arithmetic (`$((`)" : "a command substitution (`$(`)", "$(");
  const plain = NAME.exec(rest);
  if (plain) {
    push({ variable: plain[0], split });
    return i + 1 + plain[0].length;
  }
  if (rest.startsWith("{")) {
    const braced = /^\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?)-([^}$`\\"']*))?\}/.exec(rest);
    if (!braced)
      throw new CommandLineError(
        `uses \`$${rest.slice(0, rest.indexOf("}") + 1 || 12)}\`: nexus expands only $NAME, \${NAME} and \${NAME:-default}`,
      );
    const [all, name, colon, fallback] = braced as unknown as [
      string,
      string,
      string | undefined,
      string | undefined,
    ];
    push({
      variable: name,
      split,
      ...(fallback !== undefined ? { fallback: { text: fallback, empty: colon === ":" } } : {}),
    });
    return i + 1 + all.length;
  }
  if (/^[0-9@*#?$!-]/.test(rest))
    throw new CommandLineError(
      `uses \`$${rest[0]}\`, a shell parameter (the script's arguments, a pid, an exit status) nexus has no value for`,
    );
  // A lone `$` (at the end, before a blank or a quote) is literal, as in sh.
  push({ text: "$" });
  return i + 1;
}

function refuse(feature: string, char: string): never {
  throw new CommandLineError(
    `uses ${feature}${feature.includes(`\`${char}\``) || char === "\n" ? "" : ` (\`${char}\`)`}, which needs a shell`,
  );
}
