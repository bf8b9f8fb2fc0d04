import {
  findNodeAtLocation,
  getNodeValue,
  type Node,
  type ParseError,
  type ParseOptions,
  parseTree,
  printParseErrorCode,
} from "jsonc-parser";
import { ConfigError, type ConfigLocation } from "./errors.js";
import { ownerOf } from "./layers.js";

/**
 * The config file as JSON with comments (`//`, `/* *\/`) and trailing commas, as editors treat
 * `deploy.config.json` with a `$schema`. jsonc-parser (VS Code's) keeps each value's offset, so a
 * problem found by path (`servers[1].port`) points at its line and column.
 */
const OPTIONS: ParseOptions = { disallowComments: false, allowTrailingComma: true, allowEmptyContent: false };

export interface ParsedText {
  data: unknown;
  tree: Node | undefined;
  text: string;
}

/** One file of a config read in layers (the base, then a destination's overlay), as parsed. */
export interface ParsedLayer extends ParsedText {
  label: string;
}

/** 1-based line and column of an offset. */
export function lineColumn(text: string, offset: number): ConfigLocation {
  const before = text.slice(0, offset);
  const line = before.split("\n").length;
  return { line, column: offset - before.lastIndexOf("\n") };
}

const SYNTAX: Record<string, string> = {
  InvalidSymbol: "unexpected character",
  InvalidNumberFormat: "invalid number",
  PropertyNameExpected: "expected a property name in double quotes",
  ValueExpected: "expected a value",
  ColonExpected: 'expected ":"',
  CommaExpected: 'expected ","',
  CloseBraceExpected: 'expected "}"',
  CloseBracketExpected: 'expected "]"',
  EndOfFileExpected: "expected the end of the file",
  InvalidCommentToken: "invalid comment",
  UnexpectedEndOfComment: "a comment is not closed",
  UnexpectedEndOfString: "a string is not closed",
  UnexpectedEndOfNumber: "a number is cut short",
  InvalidUnicode: "invalid unicode escape",
  InvalidEscapeCharacter: "invalid escape character",
  InvalidCharacter: "invalid character in a string (a line break?)",
};

/** Parses the text; a syntax error is a ConfigError at the line and column of the first mistake. */
export function parseConfigText(text: string, label: string): ParsedText {
  const errors: ParseError[] = [];
  const tree = parseTree(text, errors, OPTIONS);
  const first = errors[0];
  if (first) {
    const code = printParseErrorCode(first.error);
    const at = lineColumn(text, first.offset);
    throw new ConfigError(label, [`invalid JSON: ${SYNTAX[code] ?? code}`], [at]);
  }
  return { data: tree ? getNodeValue(tree) : undefined, tree, text };
}

/**
 * Where the field at `path` is written: its key (an array item: the item itself); a missing field
 * points at the nearest thing that is there (the key of the object that lacks it).
 */
export function locate(parsed: ParsedText, path: readonly (string | number)[]): ConfigLocation | undefined {
  if (!parsed.tree) return undefined;
  for (let length = path.length; length >= 0; length--) {
    const node = findNodeAtLocation(parsed.tree, path.slice(0, length) as (string | number)[]);
    if (!node) continue;
    const key = node.parent?.type === "property" ? node.parent.children?.[0] : undefined;
    return lineColumn(parsed.text, (key ?? node).offset);
  }
  return undefined;
}

/**
 * The path a problem line starts with, as `formatPath` writes it (`servers[1].port: ...`,
 * `pm2.env["A-B"]: ...`, `(top level): ...`); undefined when the line starts otherwise. Every
 * problem is written this way, so its position is found without each check carrying it.
 */
export function problemPath(problem: string): (string | number)[] | undefined {
  if (problem.startsWith("(top level): ")) return [];
  const first = /^(?:([A-Za-z_$][\w$]*)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\])/;
  const next = /^(?:\.([A-Za-z_$][\w$]*)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\])/;
  const path: (string | number)[] = [];
  let rest = problem;
  for (;;) {
    const match = (path.length === 0 ? first : next).exec(rest);
    if (!match) return path.length > 0 && rest.startsWith(": ") ? path : undefined;
    if (match[2] !== undefined) path.push(Number(match[2]));
    else if (match[3] !== undefined) path.push(JSON.parse(match[3]) as string);
    else path.push(match[1] as string);
    rest = rest.slice(match[0].length);
  }
}

/** Reads the config file again to place each problem of an error found after loading (or while). */
export function locateConfigError(
  error: ConfigError,
  readText: (file: string) => string,
  layers?: readonly ParsedLayer[],
): ConfigError {
  if (error.locations.some(Boolean)) return error;
  // The layers the config was read from (kept: stdin cannot be read twice), when the error is theirs.
  if (layers && layers.length > 0 && layers[0]?.label === error.file) return withPositions(error, layers);
  let parsed: ParsedText;
  try {
    parsed = parseConfigText(readText(error.file), error.file);
  } catch {
    return error;
  }
  return withPositions(error, parsed);
}

/**
 * The same error, each problem with the line and column of the field it names (when found). Given
 * layers (base first), each problem is placed in the file its value came from.
 */
export function withPositions(error: ConfigError, parsed: ParsedText | readonly ParsedLayer[]): ConfigError {
  if (error.locations.some(Boolean)) return error;
  const layers: readonly ParsedText[] = Array.isArray(parsed) ? parsed : [parsed as ParsedText];
  const locations = error.problems.map((problem) => {
    const path = problemPath(problem);
    if (!path) return undefined;
    const layer = layers[
      ownerOf(
        layers.map((l) => l.data),
        path,
      )
    ] as ParsedText | ParsedLayer;
    const at = locate(layer, path);
    const label = "label" in layer && layer.label !== error.file ? layer.label : undefined;
    return at && label ? { ...at, file: label } : at;
  });
  return new ConfigError(error.file, error.problems, locations);
}
