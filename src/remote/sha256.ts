import { script } from "./op.js";
import { scriptFile, withFunctions } from "./script-file.js";

/** A shell function printing a file's sha256: sha256sum, else shasum, else node. */
export const SHA256_FUNCTION = scriptFile(import.meta.url, "sha256.sh");

/** $1 a file: prints its sha256. */
export const SHA256_SCRIPT = withFunctions(scriptFile(import.meta.url, "sha256-of.sh"), SHA256_FUNCTION);

/** Prints the sha256 of a file on the server. */
export function sha256Of(file: string): string {
  return script(SHA256_SCRIPT, file);
}
