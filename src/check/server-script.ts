import { script } from "../remote/op.js";
import { scriptFile, withFunctions } from "../remote/script-file.js";
import { SAY_FUNCTION } from "./facts.js";

/**
 * $1 the deploy path, absolute (resolved against $HOME). Read-only facts about an app server, in
 * one round trip, as the login user sees them in a non-interactive SSH command (the PATH nexus
 * itself gets): Node and npm, the deploy path (or the directory it would be created under) and
 * its free space.
 */
export const SERVER_CHECK_SCRIPT = withFunctions(scriptFile(import.meta.url, "server.sh"), SAY_FUNCTION);

export function serverScript(deployPath: string): string {
  return script(SERVER_CHECK_SCRIPT, deployPath);
}
