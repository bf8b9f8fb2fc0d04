export class SandboxError extends Error {
  override name = "SandboxError";
}
