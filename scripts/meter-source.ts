/**
 * The metering of a strategy's source (src/domain/strategy/meter.ts says
 * why): a call of `__fxrtMeter()` at the head of every loop body and every
 * function body, and the meter imported on the first line. Text is inserted
 * into the user's own lines and nothing else moves, so a fault's stack trace
 * names the line the user wrote. Relative imports that leave the source's
 * folder are rewritten for the folder the metered copy is written to.
 */
import { createRequire } from "node:module";
import path from "node:path";
import type * as TS from "typescript";

/** The name the inserted calls use; a strategy may not use it itself. */
export const METER_NAME = "__fxrtMeter";

interface Edit {
  pos: number;
  /** Set when the edit replaces source[pos, end) instead of inserting at pos. */
  end?: number;
  text: string;
  /** Of two insertions at one place, an opening goes shallow-first, a closing deep-first. */
  depth: number;
  closing: boolean;
}

let ts: typeof TS | undefined;
/** typescript is loaded only when a file has changed (a third of a second). */
function typescript(): typeof TS {
  ts ??= createRequire(import.meta.url)("typescript") as typeof TS;
  return ts;
}

export interface MeterSourceOptions {
  /** Where the source is (to resolve its relative imports) and where its metered copy goes. */
  sourceFile: string;
  outFile: string;
  /** The folder whose files are copied together: imports inside it stay as they are. */
  sourceRoot: string;
  /** The meter module (src/domain/strategy/meter.ts). */
  meterModule: string;
}

export function meterSource(source: string, options: MeterSourceOptions): string {
  const t = typescript();
  if (source.includes(METER_NAME)) throw new Error(`${options.sourceFile}: ${METER_NAME} is reserved for the runtime's metering`);
  const file = t.createSourceFile(options.sourceFile, source, t.ScriptTarget.ES2022, true, t.ScriptKind.TS);
  const edits: Edit[] = [];
  const call = `${METER_NAME}();`;

  const meterBody = (body: TS.Node, depth: number, expression: boolean): void => {
    if (t.isBlock(body)) {
      edits.push({ pos: body.getStart(file) + 1, text: call, depth, closing: false });
    } else {
      edits.push({ pos: body.getStart(file), text: expression ? `{${call}return (` : `{${call}`, depth, closing: false });
      edits.push({ pos: body.end, text: expression ? ");}" : "}", depth, closing: true });
    }
  };

  const visit = (node: TS.Node, depth: number): void => {
    if (t.isForStatement(node) || t.isForInStatement(node) || t.isForOfStatement(node) || t.isWhileStatement(node) || t.isDoStatement(node)) {
      meterBody(node.statement, depth, false);
    } else if (
      (t.isFunctionDeclaration(node) || t.isFunctionExpression(node) || t.isArrowFunction(node) || t.isMethodDeclaration(node) || t.isGetAccessorDeclaration(node) || t.isSetAccessorDeclaration(node)) &&
      node.body
    ) {
      // Not constructors: a call before super() is an error in a derived class with fields.
      meterBody(node.body, depth, !t.isBlock(node.body));
    } else if ((t.isImportDeclaration(node) || t.isExportDeclaration(node)) && node.moduleSpecifier && t.isStringLiteral(node.moduleSpecifier)) {
      const rewritten = relocate(node.moduleSpecifier.text, options);
      if (rewritten !== node.moduleSpecifier.text) {
        edits.push({ pos: node.moduleSpecifier.getStart(file), end: node.moduleSpecifier.end, text: JSON.stringify(rewritten), depth, closing: false });
      }
    }
    t.forEachChild(node, (child) => visit(child, depth + 1));
  };
  visit(file, 0);

  edits.sort((a, b) => a.pos - b.pos || Number(b.closing) - Number(a.closing) || (a.closing ? b.depth - a.depth : a.depth - b.depth));
  let out = "";
  let at = 0;
  for (const edit of edits) {
    out += source.slice(at, edit.pos) + edit.text;
    at = edit.end ?? edit.pos;
  }
  out += source.slice(at);
  const meterImport = importPath(path.dirname(options.outFile), options.meterModule);
  // On the first line, before the user's own: every line keeps its number.
  return `import { meter as ${METER_NAME} } from ${JSON.stringify(meterImport)}; ${out}`;
}

/** A relative import of the source as the metered copy must write it. */
function relocate(specifier: string, options: MeterSourceOptions): string {
  if (!specifier.startsWith(".")) return specifier;
  const target = path.resolve(path.dirname(options.sourceFile), specifier);
  const inside = !path.relative(options.sourceRoot, target).startsWith("..");
  return inside ? specifier : importPath(path.dirname(options.outFile), target);
}

function importPath(fromDir: string, target: string): string {
  const rel = path.relative(fromDir, target).split(path.sep).join("/");
  return rel.startsWith(".") ? rel : `./${rel}`;
}
